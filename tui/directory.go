package tui

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/pki"
)

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

	find *userSearch

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
	d.find = newUserSearch(b, s, "search: ")
	return d
}

func (d *dirScreen) Init() tea.Cmd { return d.find.Init() }

func (d *dirScreen) Capturing() bool { return d.mode == dirSearch && d.find.input.Focused() }

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
	if cmd, ok := d.find.Update(msg); ok {
		return cmd
	}
	switch msg := msg.(type) {
	case userMsg:
		d.user, d.userErr = msg.d, msg.err
		return nil
	case groupsMsg:
		d.groups, d.groupErr = msg.gs, msg.err
		return nil
	case tea.KeyPressMsg:
		return d.key(msg)
	}
	if d.find.input.Focused() {
		return d.find.Type(msg)
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
	f := d.find
	if f.input.Focused() {
		switch msg.String() {
		case "esc":
			f.input.Blur()
			f.table.Focus()
			return nil
		case "down", "up":
			f.input.Blur()
			f.table.Focus()
			return f.Move(msg)
		case "enter":
			return d.open()
		}
		return f.Type(msg)
	}
	switch {
	case key.Matches(msg, d.keys.Search), key.Matches(msg, d.keys.Back):
		f.table.Blur()
		return f.input.Focus()
	case key.Matches(msg, d.keys.Open):
		return d.open()
	case key.Matches(msg, d.keys.Groups):
		d.mode = dirGroups
		d.groups, d.groupErr = nil, nil
		return d.loadGroups()
	}
	return f.Move(msg)
}

func (d *dirScreen) open() tea.Cmd {
	u := d.find.Selected()
	if u == nil {
		return nil
	}
	d.mode = dirUser
	d.find.input.Blur()
	d.find.table.Focus()
	d.user, d.userErr = nil, nil
	return d.loadUser(u.Name)
}

func (d *dirScreen) SetSize(w, h int) {
	d.width, d.height = w, h
	d.find.SetSize(w, h-3)
}

func (d *dirScreen) ShortHelp() []key.Binding {
	k := d.keys
	switch {
	case d.mode != dirSearch:
		return []key.Binding{k.Back}
	case d.find.input.Focused():
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
	return d.find.View()
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
