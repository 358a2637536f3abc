package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/directory"
)

// searchLimit caps the users one search shows: it keeps each keystroke
// cheap however big the directory is.
const searchLimit = 50

// searchDebounce lets a fast typist finish a burst of keys before the
// directory is asked.
var searchDebounce = 60 * time.Millisecond

// userSearch is the search as you type over the directory that the
// Directory and Enroll screens share: a text box, a search run in a
// command after a short pause in typing (results of older searches are
// dropped), and the users found in a table.
type userSearch struct {
	b     *backend
	s     *Styles
	input textinput.Model
	table table.Model
	width int

	seq      int
	searched string
	users    []*directory.User
	err      error
	took     time.Duration
}

type (
	// The messages name their search: two screens search at once.
	searchTickMsg struct {
		to  *userSearch
		seq int
	}
	usersMsg struct {
		to    *userSearch
		seq   int
		query string
		users []*directory.User
		took  time.Duration
		err   error
	}
)

func newUserSearch(b *backend, s *Styles, prompt string) *userSearch {
	u := &userSearch{b: b, s: s}
	u.input = textinput.New()
	u.input.Prompt = prompt
	u.input.Placeholder = "name, login, mail or UPN"
	u.input.CharLimit = 128
	u.input.SetWidth(40)
	u.input.SetStyles(s.Input)
	u.table = table.New(table.WithStyles(s.Table))
	u.setColumns()
	return u
}

// Init focuses the box and lists the first users.
func (u *userSearch) Init() tea.Cmd { return tea.Batch(u.input.Focus(), u.search("")) }

// Update takes the search's own messages; it reports whether msg was one.
func (u *userSearch) Update(msg tea.Msg) (tea.Cmd, bool) {
	switch msg := msg.(type) {
	case searchTickMsg:
		if msg.to != u {
			return nil, false
		}
		if msg.seq != u.seq {
			return nil, true // a newer keystroke came in the meantime
		}
		return u.search(u.query()), true
	case usersMsg:
		if msg.to != u {
			return nil, false
		}
		if msg.seq == u.seq {
			u.searched, u.users, u.err, u.took = msg.query, msg.users, msg.err, msg.took
			u.setRows()
		}
		return nil, true
	}
	return nil, false
}

// Type gives a key to the text box; a changed text starts a search after
// the debounce.
func (u *userSearch) Type(msg tea.Msg) tea.Cmd {
	before := u.input.Value()
	var cmd tea.Cmd
	u.input, cmd = u.input.Update(msg)
	if u.input.Value() == before {
		return cmd
	}
	u.seq++
	seq := u.seq
	return tea.Batch(cmd, tea.Tick(searchDebounce, func(time.Time) tea.Msg { return searchTickMsg{u, seq} }))
}

// Move gives a key to the table (the cursor keys).
func (u *userSearch) Move(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	u.table, cmd = u.table.Update(msg)
	return cmd
}

// MoveCursor moves the table's cursor by n rows.
func (u *userSearch) MoveCursor(n int) {
	if n < 0 {
		u.table.MoveUp(-n)
	} else {
		u.table.MoveDown(n)
	}
}

func (u *userSearch) query() string { return strings.TrimSpace(u.input.Value()) }

// search asks the directory for the users matching prefix. It runs as a
// command, never in Update.
func (u *userSearch) search(prefix string) tea.Cmd {
	seq, b := u.seq, u.b
	return func() tea.Msg {
		start := time.Now()
		dir, err := b.directory()
		if err != nil {
			return usersMsg{to: u, seq: seq, query: prefix, err: err}
		}
		users, err := dir.FindUsers(context.Background(), prefix, searchLimit)
		slices.SortFunc(users, func(a, c *directory.User) int { return strings.Compare(a.Name, c.Name) })
		return usersMsg{to: u, seq: seq, query: prefix, users: users, took: time.Since(start), err: err}
	}
}

// Selected is the user under the cursor, or nil.
func (u *userSearch) Selected() *directory.User {
	i := u.table.Cursor()
	if i < 0 || i >= len(u.users) {
		return nil
	}
	return u.users[i]
}

// Reset empties the box and searches again.
func (u *userSearch) Reset() tea.Cmd {
	u.input.SetValue("")
	u.users, u.searched = nil, ""
	u.seq++
	u.setRows()
	return tea.Batch(u.input.Focus(), u.search(""))
}

// SetSize sizes the box and the table (h is the table's height).
func (u *userSearch) SetSize(w, h int) {
	u.width = w
	u.setColumns()
	u.table.SetHeight(max(h, 3))
	u.input.SetWidth(max(min(w-10, 50), 10))
}

func (u *userSearch) setColumns() {
	w := u.width
	if w == 0 {
		w = 80
	}
	// Login 12, Certs 5, the rest shared by name and mail.
	rest := max(w-12-5-8-1, 20)
	u.table.SetColumns([]table.Column{
		{Title: "Login", Width: 12}, {Title: "Name", Width: rest * 2 / 5}, {Title: "Mail", Width: rest - rest*2/5},
		{Title: "Certs", Width: 5},
	})
	u.table.SetWidth(w)
}

func (u *userSearch) setRows() {
	rows := make([]table.Row, len(u.users))
	for i, usr := range u.users {
		rows[i] = table.Row{usr.Name, usr.DisplayName, usr.Mail, fmt.Sprint(len(usr.Certificates))}
	}
	u.table.SetRows(rows)
	if u.table.Cursor() >= len(rows) || u.table.Cursor() < 0 {
		u.table.SetCursor(0)
	}
}

// View is the box, how many users were found, and the table.
func (u *userSearch) View() string {
	var b strings.Builder
	b.WriteString(u.input.View() + "\n")
	switch {
	case u.err != nil:
		b.WriteString(u.s.Error.Render("✗ " + errText(u.err)))
	case len(u.users) == 0 && u.searched == "" && u.seq == 0:
		b.WriteString(u.s.Muted.Render("searching…"))
	case len(u.users) == 0:
		b.WriteString(u.s.Muted.Render(fmt.Sprintf("no user matches %q", u.searched)))
	default:
		b.WriteString(u.s.Muted.Render(countText(len(u.users), searchLimit, "user", "type more to narrow")) + "\n")
		b.WriteString(u.table.View())
	}
	return b.String()
}
