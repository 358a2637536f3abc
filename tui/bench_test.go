package tui

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
)

// BenchmarkFirstFrame is the time from opening the data directory to the
// first complete Home frame: station.Open, New (which opens the CA
// database and the directory), the window size, the CA status read, View.
func BenchmarkFirstFrame(b *testing.B) {
	st := newStation(b, "")
	dir := st.Dir
	st.Close()
	for b.Loop() {
		st, err := station.Open(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		m, err := New(Options{Station: st, Watch: make(fakeWatch).watch})
		if err != nil {
			b.Fatal(err)
		}
		m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
		h := m.screens[0].c.(*home)
		m.Update(h.loadCA()())
		if v := m.View(); len(v.Content) == 0 {
			b.Fatal("empty frame")
		}
		m.Close()
		st.Close()
	}
}

// bigStation is a data directory with 100,000 users (an LDIF import in
// batches, as scstation ldif import does).
func bigStation(b *testing.B) *station.Station {
	b.Helper()
	st, err := station.Init(filepath.Join(b.TempDir(), "big"), station.InitOptions{Domain: "example.test", CA: station.CAOptions{KeyAlgorithm: pki.P256}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	d, err := st.Directory()
	if err != nil {
		b.Fatal(err)
	}
	var ldif bytes.Buffer
	for i := range 100000 {
		fmt.Fprintf(&ldif, "dn: uid=user%06d,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nuid: user%06d\ncn: User %d\nsn: %d\ngivenName: User\nmail: user%06d@example.test\n\n", i, i, i, i, i)
	}
	if _, err := d.ImportLDIF(context.Background(), &ldif, directory.ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkSearchKeystroke is the work of one keystroke in the Directory
// search over 100,000 users, without the debounce wait: the key press,
// the directory search (limit 50), the results into the table, the frame.
// The queries are what a user types: a login growing one character at a
// time, and a name.
func BenchmarkSearchKeystroke(b *testing.B) {
	st := bigStation(b)
	b.Run("empty", func(b *testing.B) {
		// What the Directory screen shows first: the search for "".
		d, err := st.UserDirectory()
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := d.FindUsers(context.Background(), "", searchLimit); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, w := range []struct{ name, text string }{
		{"login", "user04217"}, {"name", "User 4217"}, {"mail", "user04217@example.test"}, {"nomatch", "zzzzzz"},
	} {
		b.Run(w.name, func(b *testing.B) {
			m, err := New(Options{Station: st, Watch: make(fakeWatch).watch})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
			m.switchTo(2)
			d := m.screens[2].c.(*dirScreen)
			d.find.input.Focus()
			text := []rune(w.text)
			var worst time.Duration
			i := 0
			for b.Loop() {
				n := i % len(text)
				if n == 0 {
					d.find.input.SetValue("")
				}
				start := time.Now()
				m.Update(tea.KeyPressMsg{Code: text[n], Text: string(text[n])})
				msg := d.find.search(d.find.input.Value())()
				if um := msg.(usersMsg); um.err != nil {
					b.Fatal(um.err)
				}
				m.Update(msg)
				_ = m.View()
				worst = max(worst, time.Since(start))
				i++
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
}

// BenchmarkSearchRender is the TUI's own share of a keystroke: the key
// into the search box, 50 results into the table, and the frame (the
// directory search itself left out).
func BenchmarkSearchRender(b *testing.B) {
	st := newStation(b, "")
	m, err := New(Options{Station: st, Watch: make(fakeWatch).watch})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	m.switchTo(2)
	d := m.screens[2].c.(*dirScreen)
	d.find.input.Focus()
	var users []*directory.User
	for i := range searchLimit {
		users = append(users, &directory.User{Name: fmt.Sprintf("user%06d", i), DisplayName: fmt.Sprintf("User %d", i), Mail: fmt.Sprintf("user%06d@example.test", i)})
	}
	for b.Loop() {
		m.Update(tea.KeyPressMsg{Code: 'u', Text: "u"})
		m.Update(usersMsg{to: d.find, seq: d.find.seq, query: d.find.input.Value(), users: users})
		_ = m.View()
		if len(d.find.input.Value()) > 20 {
			d.find.input.SetValue("")
		}
	}
}
