package tui

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/pki"
)

// searchLimit caps the users one search shows: it keeps each keystroke
// cheap however big the directory is.
const searchLimit = 50

// searchDebounce lets a fast typist finish a burst of keys before the
// directory is asked.
var searchDebounce = 60 * time.Millisecond

type dirMode int

const (
	dirSearch dirMode = iota
	dirUser
	dirGroups
)

// dirScreen searches users as you type and shows a user's groups and
// published certificates, and the groups.
type dirScreen struct {
	b      *backend
	s      *Styles
	keys   dirKeys
	width  int
	height int
	mode   dirMode

	input    textinput.Model
	seq      int
	searched string
	users    []*directory.User
	table    table.Model
	err      error
	took     time.Duration

	user     *userDetail
	userErr  error
	groups   []*directory.Group
	groupErr error
}

type dirKeys struct {
	Search, Open, Groups, Back, Up, Down key.Binding
}

// userDetail is what the user view shows, read in one command.
type userDetail struct {
	u      *directory.User
	groups []string
	certs  []certInfo
}

type certInfo struct {
	serial, subject, template string
	notAfter                  time.Time
	status                    string
	err                       error
}

type (
	searchTickMsg struct{ seq int }
	usersMsg      struct {
		seq   int
		query string
		users []*directory.User
		took  time.Duration
		err   error
	}
	userMsg struct {
		d   *userDetail
		err error
	}
	groupsMsg struct {
		gs  []*directory.Group
		err error
	}
)

func newDirScreen(b *backend, s *Styles) *dirScreen {
	d := &dirScreen{b: b, s: s, keys: dirKeys{
		Search: key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "search")),
		Open:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details")),
		Groups: key.NewBinding(key.WithKeys("g"), key.WithHelp("g", "groups")),
		Back:   key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Up:     key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:   key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
	}}
	d.input = textinput.New()
	d.input.Prompt = "search: "
	d.input.Placeholder = "name, login, mail or UPN"
	d.input.CharLimit = 128
	d.input.SetWidth(40)
	d.input.SetStyles(s.Input)
	d.table = table.New(table.WithStyles(s.Table))
	d.setColumns()
	return d
}

func (d *dirScreen) Init() tea.Cmd {
	return tea.Batch(d.input.Focus(), d.search(""))
}

func (d *dirScreen) Capturing() bool { return d.mode == dirSearch && d.input.Focused() }

// search asks the directory for the users matching prefix. It runs as a
// command, never in Update, and results of older searches are dropped.
func (d *dirScreen) search(prefix string) tea.Cmd {
	seq, b := d.seq, d.b
	return func() tea.Msg {
		start := time.Now()
		dir, err := b.directory()
		if err != nil {
			return usersMsg{seq: seq, query: prefix, err: err}
		}
		users, err := dir.FindUsers(context.Background(), prefix, searchLimit)
		slices.SortFunc(users, func(a, c *directory.User) int { return strings.Compare(a.Name, c.Name) })
		return usersMsg{seq: seq, query: prefix, users: users, took: time.Since(start), err: err}
	}
}

func (d *dirScreen) loadUser(name string) tea.Cmd {
	b := d.b
	return func() tea.Msg {
		dir, err := b.directory()
		if err != nil {
			return userMsg{err: err}
		}
		u, err := dir.LookupUser(context.Background(), name)
		if err != nil {
			return userMsg{err: err}
		}
		det := &userDetail{u: u}
		for _, g := range u.Groups {
			det.groups = append(det.groups, rdnValue(g))
		}
		for _, der := range u.Certificates {
			det.certs = append(det.certs, describeCert(b, der))
		}
		return userMsg{d: det}
	}
}

// describeCert reads a published certificate and what the CA database
// says about it.
func describeCert(b *backend, der []byte) certInfo {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return certInfo{err: err}
	}
	ci := certInfo{serial: shortSerial(cert.SerialNumber), subject: cert.Subject.CommonName, notAfter: cert.NotAfter}
	if b.dbErr != nil {
		ci.status = "unknown (" + errText(b.dbErr) + ")"
		return ci
	}
	rec, err := b.db.Get(cert.SerialNumber)
	switch {
	case errors.Is(err, pki.ErrNotFound):
		ci.status = "not issued by this CA"
	case err != nil:
		ci.status = "unknown (" + errText(err) + ")"
	default:
		ci.template = rec.Template
		ci.status = string(rec.Status)
		if rec.Status != pki.StatusValid {
			ci.status += " " + day(rec.RevokedAt)
		}
	}
	return ci
}

func (d *dirScreen) loadGroups() tea.Cmd {
	b := d.b
	return func() tea.Msg {
		dir, err := b.directory()
		if err != nil {
			return groupsMsg{err: err}
		}
		gs, err := dir.ListGroups(context.Background())
		return groupsMsg{gs, err}
	}
}

func (d *dirScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case searchTickMsg:
		if msg.seq != d.seq {
			return nil // a newer keystroke came in the meantime
		}
		return d.search(strings.TrimSpace(d.input.Value()))
	case usersMsg:
		if msg.seq != d.seq {
			return nil
		}
		d.searched, d.users, d.err, d.took = msg.query, msg.users, msg.err, msg.took
		d.setRows()
		return nil
	case userMsg:
		d.user, d.userErr = msg.d, msg.err
		return nil
	case groupsMsg:
		d.groups, d.groupErr = msg.gs, msg.err
		return nil
	case tea.KeyPressMsg:
		return d.key(msg)
	}
	if d.input.Focused() {
		var cmd tea.Cmd
		d.input, cmd = d.input.Update(msg)
		return cmd
	}
	return nil
}

func (d *dirScreen) key(msg tea.KeyPressMsg) tea.Cmd {
	switch d.mode {
	case dirUser, dirGroups:
		if key.Matches(msg, d.keys.Back) {
			d.mode = dirSearch
		}
		return nil
	}
	if d.input.Focused() {
		switch msg.String() {
		case "esc":
			d.input.Blur()
			d.table.Focus()
			return nil
		case "down", "up":
			d.input.Blur()
			d.table.Focus()
			var cmd tea.Cmd
			d.table, cmd = d.table.Update(msg)
			return cmd
		case "enter":
			return d.open()
		}
		before := d.input.Value()
		var cmd tea.Cmd
		d.input, cmd = d.input.Update(msg)
		if d.input.Value() != before {
			d.seq++
			seq := d.seq
			return tea.Batch(cmd, tea.Tick(searchDebounce, func(time.Time) tea.Msg { return searchTickMsg{seq} }))
		}
		return cmd
	}
	switch {
	case key.Matches(msg, d.keys.Search), key.Matches(msg, d.keys.Back):
		d.table.Blur()
		return d.input.Focus()
	case key.Matches(msg, d.keys.Open):
		return d.open()
	case key.Matches(msg, d.keys.Groups):
		d.mode = dirGroups
		d.groups, d.groupErr = nil, nil
		return d.loadGroups()
	}
	var cmd tea.Cmd
	d.table, cmd = d.table.Update(msg)
	return cmd
}

func (d *dirScreen) open() tea.Cmd {
	i := d.table.Cursor()
	if i < 0 || i >= len(d.users) {
		return nil
	}
	d.mode = dirUser
	d.input.Blur()
	d.table.Focus()
	d.user, d.userErr = nil, nil
	return d.loadUser(d.users[i].Name)
}

func (d *dirScreen) SetSize(w, h int) {
	d.width, d.height = w, h
	d.setColumns()
	d.table.SetHeight(max(h-3, 3))
	d.input.SetWidth(max(min(w-10, 50), 10))
}

func (d *dirScreen) setColumns() {
	w := d.width
	if w == 0 {
		w = 80
	}
	// Login 12, Certs 5, the rest shared by name and mail.
	rest := max(w-12-5-8-1, 20)
	d.table.SetColumns([]table.Column{
		{Title: "Login", Width: 12}, {Title: "Name", Width: rest * 2 / 5}, {Title: "Mail", Width: rest - rest*2/5},
		{Title: "Certs", Width: 5},
	})
	d.table.SetWidth(w)
}

func (d *dirScreen) setRows() {
	rows := make([]table.Row, len(d.users))
	for i, u := range d.users {
		rows[i] = table.Row{u.Name, u.DisplayName, u.Mail, fmt.Sprint(len(u.Certificates))}
	}
	d.table.SetRows(rows)
	if d.table.Cursor() >= len(rows) || d.table.Cursor() < 0 {
		d.table.SetCursor(0)
	}
}

func (d *dirScreen) ShortHelp() []key.Binding {
	k := d.keys
	switch {
	case d.mode != dirSearch:
		return []key.Binding{k.Back}
	case d.input.Focused():
		return []key.Binding{
			key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details")),
			key.NewBinding(key.WithKeys("↓"), key.WithHelp("↓/esc", "to the list")),
		}
	}
	return []key.Binding{k.Open, k.Search, k.Groups}
}

func (d *dirScreen) FullHelp() [][]key.Binding {
	k := d.keys
	return [][]key.Binding{{k.Search, k.Up, k.Down, k.Open}, {k.Groups, k.Back}}
}

func (d *dirScreen) View() string {
	switch d.mode {
	case dirUser:
		return d.userView()
	case dirGroups:
		return d.groupsView()
	}
	var b strings.Builder
	b.WriteString(d.input.View() + "\n")
	switch {
	case d.err != nil:
		b.WriteString(d.s.Error.Render("✗ " + errText(d.err)))
	case len(d.users) == 0 && d.searched == "" && d.seq == 0:
		b.WriteString(d.s.Muted.Render("searching…"))
	case len(d.users) == 0:
		b.WriteString(d.s.Muted.Render(fmt.Sprintf("no user matches %q", d.searched)))
	default:
		n := fmt.Sprintf("%d users", len(d.users))
		if len(d.users) == 1 {
			n = "1 user"
		}
		if len(d.users) == searchLimit {
			n = fmt.Sprintf("the first %d users: type more to narrow", searchLimit)
		}
		b.WriteString(d.s.Muted.Render(n) + "\n")
		b.WriteString(d.table.View())
	}
	return b.String()
}

func (d *dirScreen) kv(label, value string) string {
	return d.s.Label.Render(fmt.Sprintf("%-13s", label)) + value
}

func (d *dirScreen) userView() string {
	if d.userErr != nil {
		return d.s.Error.Render("✗ " + errText(d.userErr))
	}
	if d.user == nil {
		return d.s.Muted.Render("reading…")
	}
	u := d.user.u
	lines := []string{d.s.Heading.Render(u.Name)}
	add := func(l, v string) {
		if v != "" {
			lines = append(lines, d.kv(l, v))
		}
	}
	add("name", u.DisplayName)
	add("UPN", u.UPN)
	add("mail", u.Mail)
	add("DN", truncate(u.DN, max(d.width-13, 20)))
	add("SID", u.SID)
	if !u.Created.IsZero() {
		add("created", day(u.Created))
	}
	if len(d.user.groups) == 0 {
		add("groups", d.s.Muted.Render("none"))
	} else {
		add("groups", strings.Join(d.user.groups, ", "))
	}
	lines = append(lines, "", d.s.Heading.Render("Published certificates"))
	if len(d.user.certs) == 0 {
		lines = append(lines, d.s.Muted.Render("none"))
	}
	for _, c := range d.user.certs {
		if c.err != nil {
			lines = append(lines, d.s.Error.Render("✗ unreadable certificate: "+errText(c.err)))
			continue
		}
		st := c.status
		switch {
		case strings.HasPrefix(st, string(pki.StatusValid)):
			st = d.s.OK.Render(st)
		case strings.HasPrefix(st, string(pki.StatusRevoked)):
			st = d.s.Error.Render(st)
		default:
			st = d.s.Warn.Render(st)
		}
		lines = append(lines, fmt.Sprintf("%-16s %-17s expires %s  %s", c.serial, truncate(c.template, 17), day(c.notAfter), st))
	}
	return strings.Join(lines, "\n")
}

func (d *dirScreen) groupsView() string {
	lines := []string{d.s.Heading.Render("Groups")}
	switch {
	case d.groupErr != nil:
		lines = append(lines, d.s.Error.Render("✗ "+errText(d.groupErr)))
	case d.groups == nil:
		lines = append(lines, d.s.Muted.Render("reading…"))
	case len(d.groups) == 0:
		lines = append(lines, d.s.Muted.Render("no groups"))
	}
	for _, g := range d.groups {
		members := fmt.Sprintf("%d members", len(g.Members))
		if len(g.Members) == 1 {
			members = "1 member"
		}
		lines = append(lines, fmt.Sprintf("%-20s %-11s %s", truncate(g.Name, 20), members, d.s.Muted.Render(truncate(g.Description, max(d.width-34, 10)))))
	}
	return strings.Join(lines, "\n")
}

// rdnValue is the value of a DN's first RDN: cn=admins,ou=groups,… → admins.
func rdnValue(dn string) string {
	if p, err := directory.ParseDN(dn); err == nil && len(p) > 0 && len(p[0]) > 0 {
		return p[0][0].Value
	}
	return dn
}
