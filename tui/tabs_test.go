package tui

import (
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
)

// TestWideGolden draws the CA screen in a 120×40 window: the brand goes
// back onto the tab line and the table takes the width.
func TestWideGolden(t *testing.T) {
	h := startSized(t, Options{Station: newStation(t, ""), NoColor: true}, 120, 40)
	h.waitFor("Certificate authority")
	h.key('2')
	s := h.waitFor("4 certificates", "scstation EXAMPLE.TEST\n")
	lines := strings.Split(s, "\n")
	if len(lines) != 40 {
		t.Errorf("the frame has %d lines, want 40", len(lines))
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > 120 {
			t.Errorf("line %d is %d cells wide", i, w)
		}
	}
	golden.RequireEqual(t, normalize(s))
}

// TestTabBar lays the header out with the 8 screens of today and a 9th
// (a Mail tab is coming) at several widths: it never overflows, the
// active tab is always there, and at 80 columns every tab and the realm
// show.
func TestTabBar(t *testing.T) {
	st := newStation(t, "")
	for _, extra := range []bool{false, true} {
		m, err := New(Options{Station: st, NoColor: true})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if extra {
			m.screens = append(m.screens, screen{"Mail", newAudit(m.b, m.styles)})
		}
		n := len(m.screens)
		for _, w := range []int{120, 80, 60, 40, 24, 12} {
			m.Update(tea.WindowSizeMsg{Width: w, Height: 24})
			for active := range n {
				m.switchTo(active)
				lines := strings.Split(ansi.Strip(m.header()), "\n")
				name := fmt.Sprintf("%d tabs, %d columns, tab %d", n, w, active+1)
				if len(lines) != headerHeight {
					t.Fatalf("%s: %d header lines", name, len(lines))
				}
				for _, l := range lines {
					if ansi.StringWidth(l) > w {
						t.Errorf("%s: %q is %d cells wide", name, l, ansi.StringWidth(l))
					}
				}
				want := fmt.Sprintf("%d %s", active+1, shortTitle(m.screens[active].title))
				if !strings.Contains(lines[0], want) {
					t.Errorf("%s: the active tab %q is not shown: %q", name, want, lines[0])
				}
				if w >= 80 {
					for i, s := range m.screens {
						if tab := fmt.Sprintf("%d %s", i+1, shortTitle(s.title)); !strings.Contains(lines[0], tab) {
							t.Errorf("%s: tab %q missing: %q", name, tab, lines[0])
						}
					}
					if !strings.Contains(strings.Join(lines, "\n"), "scstation "+st.Config.Realm) {
						t.Errorf("%s: no realm in the header:\n%s", name, strings.Join(lines, "\n"))
					}
				}
				if w == 80 && active == n-1 {
					// What 80 columns show with the last tab active.
					t.Run(fmt.Sprintf("%d_tabs_80", n), func(t *testing.T) {
						golden.RequireEqual(t, strings.Join(lines, "\n"))
					})
				}
				// A click on each cell of the tab line goes to a screen.
				if i := m.tabAt(strings.Index(lines[0], want)); i != active {
					t.Errorf("%s: a click on the active tab goes to %d", name, i)
				}
			}
		}
	}
}
