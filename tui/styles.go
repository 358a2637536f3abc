package tui

import (
	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/textinput"
	"charm.land/huh/v2"
	"charm.land/lipgloss/v2"
)

// Styles are every style the station draws with. There are two sets: one
// in colour, and one for NO_COLOR (https://no-color.org) that uses only
// bold, underline and reverse video.
type Styles struct {
	NoColor bool

	App         lipgloss.Style
	TabActive   lipgloss.Style
	TabInactive lipgloss.Style
	Brand       lipgloss.Style
	Rule        lipgloss.Style
	Heading     lipgloss.Style
	Label       lipgloss.Style
	Value       lipgloss.Style
	Muted       lipgloss.Style
	OK          lipgloss.Style
	Warn        lipgloss.Style
	Error       lipgloss.Style
	Status      lipgloss.Style
	Key         lipgloss.Style
	Dialog      lipgloss.Style

	Input textinput.Styles
	Table table.Styles
	Help  help.Styles
	Form  huh.Theme
}

// NewStyles returns the colour styles, or the plain ones when noColor is set.
func NewStyles(noColor bool) *Styles {
	if noColor {
		return plainStyles()
	}
	var (
		accent = lipgloss.Color("#5FAFFF")
		dim    = lipgloss.Color("#8A8A8A")
		green  = lipgloss.Color("#5FD75F")
		amber  = lipgloss.Color("#FFAF00")
		red    = lipgloss.Color("#FF5F5F")
		ink    = lipgloss.Color("#1C1C1C")
	)
	s := &Styles{}
	s.App = lipgloss.NewStyle()
	s.TabActive = lipgloss.NewStyle().Bold(true).Foreground(ink).Background(accent).Padding(0, 1)
	s.TabInactive = lipgloss.NewStyle().Foreground(dim).Padding(0, 1)
	s.Brand = lipgloss.NewStyle().Bold(true).Foreground(accent)
	s.Rule = lipgloss.NewStyle().Foreground(dim)
	s.Heading = lipgloss.NewStyle().Bold(true).Foreground(accent)
	s.Label = lipgloss.NewStyle().Foreground(dim)
	s.Value = lipgloss.NewStyle()
	s.Muted = lipgloss.NewStyle().Foreground(dim)
	s.OK = lipgloss.NewStyle().Foreground(green)
	s.Warn = lipgloss.NewStyle().Foreground(amber)
	s.Error = lipgloss.NewStyle().Bold(true).Foreground(red)
	s.Status = lipgloss.NewStyle().Foreground(green)
	s.Key = lipgloss.NewStyle().Bold(true).Foreground(accent)
	s.Dialog = lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(accent).Padding(0, 1)

	s.Table = table.Styles{
		Header:   lipgloss.NewStyle().Bold(true).Foreground(accent).Padding(0, 1),
		Cell:     lipgloss.NewStyle().Padding(0, 1),
		Selected: lipgloss.NewStyle().Bold(true).Foreground(ink).Background(accent),
	}
	s.Help = help.DefaultDarkStyles()
	s.Input = textinput.DefaultDarkStyles()
	s.Form = huh.ThemeFunc(huh.ThemeCharm)
	return s
}

func plainStyles() *Styles {
	p := lipgloss.NewStyle
	s := &Styles{NoColor: true}
	s.App = p()
	s.TabActive = p().Bold(true).Reverse(true).Padding(0, 1)
	s.TabInactive = p().Padding(0, 1)
	s.Brand = p().Bold(true)
	s.Rule = p()
	s.Heading = p().Bold(true).Underline(true)
	s.Label = p()
	s.Value = p()
	s.Muted = p()
	s.OK = p()
	s.Warn = p().Bold(true)
	s.Error = p().Bold(true)
	s.Status = p()
	s.Key = p().Bold(true)
	s.Dialog = p().Border(lipgloss.NormalBorder()).Padding(0, 1)
	s.Table = table.Styles{
		Header:   p().Bold(true).Padding(0, 1),
		Cell:     p().Padding(0, 1),
		Selected: p().Reverse(true),
	}
	s.Help = help.Styles{
		Ellipsis: p(), ShortKey: p().Bold(true), ShortDesc: p(), ShortSeparator: p(),
		FullKey: p().Bold(true), FullDesc: p(), FullSeparator: p(),
	}
	in := textinput.StyleState{Text: p(), Placeholder: p(), Suggestion: p(), Prompt: p()}
	s.Input = textinput.Styles{Focused: in, Blurred: in, Cursor: textinput.CursorStyle{Blink: true}}
	s.Form = huh.ThemeFunc(plainFormTheme)
	return s
}

// plainFormTheme is huh's base theme without its colours.
func plainFormTheme(isDark bool) *huh.Styles {
	t := huh.ThemeBase(isDark)
	p := lipgloss.NewStyle
	t.Focused.FocusedButton = p().Padding(0, 2).MarginRight(1).Reverse(true)
	t.Focused.BlurredButton = p().Padding(0, 2).MarginRight(1)
	t.Focused.TextInput.Placeholder = p()
	t.Blurred.FocusedButton = t.Focused.FocusedButton
	t.Blurred.BlurredButton = t.Focused.BlurredButton
	t.Blurred.TextInput.Placeholder = p()
	t.Help = help.Styles{
		Ellipsis: p(), ShortKey: p().Bold(true), ShortDesc: p(), ShortSeparator: p(),
		FullKey: p().Bold(true), FullDesc: p(), FullSeparator: p(),
	}
	return t
}
