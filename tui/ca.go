package tui

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
)

// caMode is what the CA screen shows.
type caMode int

const (
	caList caMode = iota
	caDetail
	caTemplates
	caChain
	caRevokeForm
	caPassForm
)

// listLimit caps one listing; the filters narrow it down.
const listLimit = 1000

var (
	statusFilters   = []pki.Status{"", pki.StatusValid, pki.StatusRevoked, pki.StatusOnHold}
	expiringFilters = []time.Duration{0, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 90 * 24 * time.Hour}
	// revokeReasons are the reasons an operator picks for an end-entity
	// certificate (the CA and AA compromise reasons are for CA certificates).
	revokeReasons = []pki.RevocationReason{
		pki.ReasonKeyCompromise, pki.ReasonAffiliationChanged, pki.ReasonSuperseded,
		pki.ReasonCessationOfOperation, pki.ReasonCertificateHold, pki.ReasonPrivilegeWithdrawn,
		pki.ReasonUnspecified,
	}
)

// caScreen lists issued certificates with filters, shows one, revokes with
// a reason, publishes the CRL, and shows the templates and the CA chain.
type caScreen struct {
	b      *backend
	s      *Styles
	keys   caKeys
	width  int
	height int
	mode   caMode
	back   caMode // where a form returns to

	user      textinput.Model
	statusIdx int
	tmplIdx   int
	expIdx    int
	templates []*pki.Template
	tmplErr   error
	chain     []*x509.Certificate
	chainErr  error

	seq     int
	table   table.Model
	recs    []*pki.Record
	loaded  bool
	listErr error

	detail *pki.Record

	form   *huh.Form
	reason pki.RevocationReason
	// shownReason is reason for the confirmation's title, which huh
	// computes in a command, outside Update.
	shownReason atomic.Int32
	confirm     bool
	passphrase  string
	officer     bool // an officer is signed in

	busy   string
	status string
	err    error
}

type caKeys struct {
	Filter, Status, Template, Expiring, Open, Revoke, Release, Publish, Templates, Chain, Back, Up, Down key.Binding
}

func newCAKeys() caKeys {
	return caKeys{
		Filter:    key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "user filter")),
		Status:    key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "status")),
		Template:  key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "template")),
		Expiring:  key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "expiring")),
		Open:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details")),
		Revoke:    key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "revoke")),
		Release:   key.NewBinding(key.WithKeys("u"), key.WithHelp("u", "release a hold")),
		Publish:   key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "publish CRL")),
		Templates: key.NewBinding(key.WithKeys("T"), key.WithHelp("T", "templates")),
		Chain:     key.NewBinding(key.WithKeys("C"), key.WithHelp("C", "CA chain")),
		Back:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Up:        key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:      key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
	}
}

func newCAScreen(b *backend, s *Styles) *caScreen {
	c := &caScreen{b: b, s: s, keys: newCAKeys()}
	c.user = textinput.New()
	c.user.Prompt = ""
	c.user.Placeholder = "any user"
	c.user.CharLimit = 64
	c.user.SetWidth(16)
	c.user.SetStyles(s.Input)
	c.table = table.New(table.WithStyles(s.Table), table.WithFocused(true))
	c.setColumns()
	return c
}

func (c *caScreen) Init() tea.Cmd { return tea.Batch(c.query(), c.loadTemplates()) }

// Messages of the CA screen.
type (
	certsMsg struct {
		seq  int
		recs []*pki.Record
		err  error
	}
	templatesMsg struct {
		ts  []*pki.Template
		err error
	}
	chainMsg struct {
		chain []*x509.Certificate
		err   error
	}
	revokedMsg struct {
		rec *pki.Record
		err error
	}
	releasedMsg struct {
		rec *pki.Record
		err error
	}
	crlPublishedMsg struct {
		crl *x509.RevocationList
	}
	crlFailedMsg struct{ err error }
)

func (c *caScreen) currentQuery() pki.Query {
	q := pki.Query{User: strings.TrimSpace(c.user.Value()), Status: statusFilters[c.statusIdx], Limit: listLimit}
	if c.tmplIdx > 0 && c.tmplIdx <= len(c.templates) {
		q.Template = c.templates[c.tmplIdx-1].Name
	}
	if d := expiringFilters[c.expIdx]; d > 0 {
		q.ExpiringBefore = c.b.st.Now().Add(d)
	}
	return q
}

// query lists the certificates for the current filters; results of an
// older query are dropped when they arrive late.
func (c *caScreen) query() tea.Cmd {
	c.seq++
	seq, q, b := c.seq, c.currentQuery(), c.b
	return func() tea.Msg {
		if b.dbErr != nil {
			return certsMsg{seq: seq, err: b.dbErr}
		}
		recs, err := b.db.List(q)
		return certsMsg{seq: seq, recs: recs, err: err}
	}
}

func (c *caScreen) loadTemplates() tea.Cmd {
	b := c.b
	return func() tea.Msg {
		ts, err := b.st.Templates()
		return templatesMsg{ts, err}
	}
}

func (c *caScreen) loadChain() tea.Cmd {
	b := c.b
	return func() tea.Msg {
		chain, err := b.st.CAChain()
		return chainMsg{chain, err}
	}
}

func (c *caScreen) Capturing() bool {
	return c.user.Focused() || c.mode == caRevokeForm || c.mode == caPassForm
}

func (c *caScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case certsMsg:
		if msg.seq != c.seq {
			return nil
		}
		c.loaded, c.listErr = true, msg.err
		c.recs = msg.recs
		c.setRows()
		return nil
	case templatesMsg:
		c.templates, c.tmplErr = msg.ts, msg.err
		return nil
	case chainMsg:
		c.chain, c.chainErr = msg.chain, msg.err
		return nil
	case revokedMsg:
		c.busy = ""
		if msg.err != nil {
			c.err = msg.err
			return nil
		}
		c.replace(msg.rec)
		if msg.rec.Status == pki.StatusOnHold {
			c.status = fmt.Sprintf("certificate %s put on hold (u releases it); publish the CRL (p) so that relying parties see it", shortSerial(msg.rec.Serial))
			return c.query()
		}
		c.status = fmt.Sprintf("certificate %s revoked (%s); publish the CRL (p) so that relying parties see it", shortSerial(msg.rec.Serial), msg.rec.Reason)
		return c.query()
	case releasedMsg:
		c.busy = ""
		if msg.err != nil {
			c.err = msg.err
			return nil
		}
		c.replace(msg.rec)
		c.status = fmt.Sprintf("certificate %s released from hold; publish the CRL (p) so that relying parties see it", shortSerial(msg.rec.Serial))
		return c.query()
	case crlPublishedMsg:
		c.busy = ""
		c.status = fmt.Sprintf("CRL #%s published: %d revoked, next update %s", msg.crl.Number, len(msg.crl.RevokedCertificateEntries), day(msg.crl.NextUpdate))
		return nil
	case officerMsg:
		c.officer = msg.user != ""
		return nil
	case crlFailedMsg:
		c.busy = ""
		c.err = msg.err
		return nil
	case tea.KeyPressMsg:
		return c.key(msg)
	}
	if c.form != nil {
		return c.updateForm(msg)
	}
	if c.user.Focused() {
		var cmd tea.Cmd
		c.user, cmd = c.user.Update(msg)
		return cmd
	}
	return nil
}

func (c *caScreen) key(msg tea.KeyPressMsg) tea.Cmd {
	if c.form != nil {
		if key.Matches(msg, c.keys.Back) {
			c.closeForm()
			c.status = "cancelled"
			return nil
		}
		return c.updateForm(msg)
	}
	if c.user.Focused() {
		switch msg.String() {
		case "enter", "esc", "tab":
			c.user.Blur()
			return nil
		}
		before := c.user.Value()
		var cmd tea.Cmd
		c.user, cmd = c.user.Update(msg)
		if c.user.Value() != before {
			return tea.Batch(cmd, c.query())
		}
		return cmd
	}
	if c.busy != "" {
		return nil
	}
	c.err = nil
	switch c.mode {
	case caDetail, caTemplates, caChain:
		switch {
		case key.Matches(msg, c.keys.Back):
			c.mode = caList
			c.status = ""
		case c.mode == caDetail && key.Matches(msg, c.keys.Revoke):
			return c.startRevoke(c.detail)
		case c.mode == caDetail && key.Matches(msg, c.keys.Release):
			return c.release(c.detail)
		case key.Matches(msg, c.keys.Publish):
			return c.startPublish()
		}
		return nil
	}
	switch {
	case key.Matches(msg, c.keys.Filter):
		c.status = ""
		return c.user.Focus()
	case key.Matches(msg, c.keys.Status):
		c.statusIdx = (c.statusIdx + 1) % len(statusFilters)
		return c.query()
	case key.Matches(msg, c.keys.Template):
		c.tmplIdx = (c.tmplIdx + 1) % (len(c.templates) + 1)
		return c.query()
	case key.Matches(msg, c.keys.Expiring):
		c.expIdx = (c.expIdx + 1) % len(expiringFilters)
		return c.query()
	case key.Matches(msg, c.keys.Back):
		c.user.SetValue("")
		c.statusIdx, c.tmplIdx, c.expIdx = 0, 0, 0
		c.status = ""
		return c.query()
	case key.Matches(msg, c.keys.Open):
		if r := c.selected(); r != nil {
			c.detail, c.mode, c.status = r, caDetail, ""
		}
	case key.Matches(msg, c.keys.Revoke):
		return c.startRevoke(c.selected())
	case key.Matches(msg, c.keys.Release):
		return c.release(c.selected())
	case key.Matches(msg, c.keys.Publish):
		return c.startPublish()
	case key.Matches(msg, c.keys.Templates):
		c.mode, c.status = caTemplates, ""
		return c.loadTemplates()
	case key.Matches(msg, c.keys.Chain):
		c.mode, c.status = caChain, ""
		return c.loadChain()
	default:
		var cmd tea.Cmd
		c.table, cmd = c.table.Update(msg)
		return cmd
	}
	return nil
}

// replace shows a changed record at once (details and list); the list is
// read again after it.
func (c *caScreen) replace(rec *pki.Record) {
	if c.detail != nil && c.detail.Serial.Cmp(rec.Serial) == 0 {
		c.detail = rec
	}
	for i, r := range c.recs {
		if r.Serial.Cmp(rec.Serial) == 0 {
			c.recs[i] = rec
		}
	}
	c.setRows()
}

func (c *caScreen) selected() *pki.Record {
	i := c.table.Cursor()
	if i < 0 || i >= len(c.recs) {
		return nil
	}
	return c.recs[i]
}

// startRevoke asks for the reason and a confirmation.
func (c *caScreen) startRevoke(r *pki.Record) tea.Cmd {
	if r == nil {
		return nil
	}
	if c.b.st.RequireOfficer && !c.officer {
		c.err = needOfficer("revoking a certificate")
		return nil
	}
	if r.Status == pki.StatusRevoked {
		c.err = fmt.Errorf("certificate %s is already revoked (%s, %s)", shortSerial(r.Serial), r.Reason, day(r.RevokedAt))
		return nil
	}
	c.detail = r
	c.reason = pki.ReasonKeyCompromise
	c.shownReason.Store(int32(c.reason))
	c.confirm = false
	var opts []huh.Option[pki.RevocationReason]
	for _, reason := range revokeReasons {
		if r.Status == pki.StatusOnHold && reason == pki.ReasonCertificateHold {
			continue
		}
		opts = append(opts, huh.NewOption(reasonLabel(reason), reason))
	}
	who := r.User
	if who == "" {
		who = r.Subject
	}
	c.form = huh.NewForm(huh.NewGroup(
		huh.NewSelect[pki.RevocationReason]().Title("Revoke certificate "+shortSerial(r.Serial)+" of "+who).
			Description("Why?").Options(opts...).Value(&c.reason),
		huh.NewConfirm().TitleFunc(func() string {
			// huh runs this in a command: read the copy Update keeps.
			reason := pki.RevocationReason(c.shownReason.Load())
			if reason == pki.ReasonCertificateHold {
				return "Put it on hold? It can be released later."
			}
			return fmt.Sprintf("Revoke it (%s)? This cannot be undone.", reason)
		}, &c.reason).Affirmative("Revoke").Negative("Keep").Value(&c.confirm),
	)).WithTheme(c.s.Form).WithShowHelp(false)
	c.back = c.mode
	c.mode = caRevokeForm
	c.sizeForm()
	return c.form.Init()
}

// startPublish signs a CRL, asking for the CA key passphrase first when
// the key is encrypted and not unlocked (the station keeps it unlocked
// for the officer session it was unlocked in).
func (c *caScreen) startPublish() tea.Cmd {
	if !c.b.st.CAUnlocked() {
		c.passphrase = ""
		c.form = passphraseForm(c.s, &c.passphrase, "to sign the CRL; it is not kept")
		c.back = c.mode
		c.mode = caPassForm
		c.sizeForm()
		return c.form.Init()
	}
	return c.publish(nil)
}

func (c *caScreen) publish(pass []byte) tea.Cmd {
	c.busy = "publishing the CRL…"
	c.status = ""
	b := c.b
	return func() tea.Msg {
		var pf station.PassphraseFunc
		if pass != nil {
			pf = oncePassphrase(pass) // the station wipes it after use
		}
		b.mu.Lock()
		crl, err := b.st.PublishCRL(pf)
		b.mu.Unlock()
		clear(pass)
		if err != nil {
			return crlFailedMsg{err}
		}
		return crlPublishedMsg{crl}
	}
}

func (c *caScreen) revoke(r *pki.Record, reason pki.RevocationReason) tea.Cmd {
	c.busy = "revoking…"
	c.status = ""
	b := c.b
	serial := new(big.Int).Set(r.Serial)
	return func() tea.Msg {
		b.mu.Lock()
		rec, err := b.st.Revoke(serial, reason)
		b.mu.Unlock()
		return revokedMsg{rec, err}
	}
}

// release lifts a certificate hold; anything else is refused in place.
func (c *caScreen) release(r *pki.Record) tea.Cmd {
	if r == nil {
		return nil
	}
	if r.Status != pki.StatusOnHold {
		c.err = fmt.Errorf("certificate %s is not on hold", shortSerial(r.Serial))
		return nil
	}
	if c.b.st.RequireOfficer && !c.officer {
		c.err = needOfficer("releasing a hold")
		return nil
	}
	c.busy = "releasing the hold…"
	c.status = ""
	b := c.b
	serial := new(big.Int).Set(r.Serial)
	return func() tea.Msg {
		b.mu.Lock()
		rec, err := b.st.Release(serial)
		b.mu.Unlock()
		return releasedMsg{rec, err}
	}
}

func (c *caScreen) updateForm(msg tea.Msg) tea.Cmd {
	m, cmd := c.form.Update(msg)
	if f, ok := m.(*huh.Form); ok {
		c.form = f
	}
	c.shownReason.Store(int32(c.reason))
	switch c.form.State {
	case huh.StateCompleted:
		mode := c.mode
		// Take the passphrase out of the form before it is dropped.
		pass := []byte(c.passphrase)
		c.closeForm()
		switch mode {
		case caRevokeForm:
			if !c.confirm {
				c.status = "not revoked"
				return nil
			}
			return c.revoke(c.detail, c.reason)
		case caPassForm:
			return c.publish(pass)
		}
	case huh.StateAborted:
		c.closeForm()
		c.status = "cancelled"
		return nil
	}
	return cmd
}

func (c *caScreen) closeForm() {
	c.form = nil
	c.passphrase = ""
	c.mode = c.back
}

func (c *caScreen) sizeForm() {
	if c.form != nil {
		c.form.WithWidth(min(c.width-4, 70))
	}
}

func (c *caScreen) SetSize(w, h int) {
	c.width, c.height = w, h
	c.setColumns()
	c.table.SetHeight(max(h-3, 3))
	c.sizeForm()
}

func (c *caScreen) setColumns() {
	w := c.width
	if w == 0 {
		w = 80
	}
	// Fixed columns and the user column takes the rest; each cell has one
	// space of padding on either side.
	fixed := 17 + 17 + 7 + 10
	user := max(w-fixed-10-1, 8)
	c.table.SetColumns([]table.Column{
		{Title: "Serial", Width: 17}, {Title: "User", Width: user}, {Title: "Template", Width: 17},
		{Title: "Status", Width: 7}, {Title: "Expires", Width: 10},
	})
	c.table.SetWidth(w)
}

func (c *caScreen) setRows() {
	rows := make([]table.Row, len(c.recs))
	for i, r := range c.recs {
		rows[i] = table.Row{shortSerial(r.Serial), r.User, r.Template, string(r.Status), day(r.NotAfter)}
	}
	c.table.SetRows(rows)
	// An empty list leaves the table's cursor at -1: put it back on a row.
	if cur := c.table.Cursor(); cur < 0 || cur >= len(rows) {
		c.table.SetCursor(max(min(cur, len(rows)-1), 0))
	}
}

func (c *caScreen) ShortHelp() []key.Binding {
	k := c.keys
	switch c.mode {
	case caDetail:
		if c.detail != nil && c.detail.Status == pki.StatusOnHold {
			return []key.Binding{k.Release, k.Revoke, k.Publish, k.Back}
		}
		return []key.Binding{k.Revoke, k.Publish, k.Back}
	case caTemplates, caChain:
		return []key.Binding{k.Publish, k.Back}
	case caRevokeForm, caPassForm:
		return []key.Binding{
			key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "next")),
			key.NewBinding(key.WithKeys("←/→"), key.WithHelp("←/→", "choose")),
			k.Back,
		}
	}
	if c.user.Focused() {
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter/esc", "done"))}
	}
	return []key.Binding{k.Open, k.Revoke, k.Publish, k.Filter}
}

func (c *caScreen) FullHelp() [][]key.Binding {
	k := c.keys
	return [][]key.Binding{
		{k.Up, k.Down, k.Open, k.Revoke, k.Release},
		{k.Publish, k.Templates, k.Chain, k.Back},
		{k.Filter, k.Status, k.Template, k.Expiring},
	}
}

func (c *caScreen) View() string {
	var body string
	switch c.mode {
	case caDetail:
		body = c.detailView()
	case caTemplates:
		body = c.templatesView()
	case caChain:
		body = c.chainView()
	case caRevokeForm, caPassForm:
		if c.form != nil {
			body = c.s.Dialog.Render(c.form.View())
		}
	default:
		body = c.listView()
	}
	return body + "\n" + c.footer()
}

func (c *caScreen) footer() string {
	switch {
	case c.busy != "":
		return c.s.Muted.Render(c.busy)
	case c.err != nil:
		return c.s.Error.Render("✗ " + errText(c.err))
	case c.status != "":
		return c.s.Status.Render(c.status)
	}
	return ""
}

func (c *caScreen) filterLine() string {
	lbl := c.s.Label.Render
	user := c.user.View()
	if !c.user.Focused() && c.user.Value() == "" {
		user = c.s.Muted.Render("any")
	}
	status := "any"
	if f := statusFilters[c.statusIdx]; f != "" {
		status = string(f)
	}
	tmpl := "any"
	if c.tmplIdx > 0 && c.tmplIdx <= len(c.templates) {
		tmpl = c.templates[c.tmplIdx-1].Name
	}
	exp := "any"
	if d := expiringFilters[c.expIdx]; d > 0 {
		exp = "≤ " + days(d)
	}
	return lbl("user ") + user + lbl("  status ") + status + lbl("  template ") + tmpl + lbl("  expiring ") + exp
}

func (c *caScreen) listView() string {
	var b strings.Builder
	b.WriteString(c.filterLine() + "\n")
	switch {
	case c.listErr != nil:
		b.WriteString(c.s.Error.Render("✗ "+errText(c.listErr)) + "\n")
	case !c.loaded:
		b.WriteString(c.s.Muted.Render("reading the certificate database…") + "\n")
	case len(c.recs) == 0:
		b.WriteString(c.s.Muted.Render("no certificate matches") + "\n")
	default:
		b.WriteString(c.s.Muted.Render(countText(len(c.recs), listLimit, "certificate", "filter to see others")) + "\n")
		b.WriteString(c.table.View())
	}
	return strings.TrimRight(b.String(), "\n")
}

func (c *caScreen) kv(label, value string) string {
	return c.s.Label.Render(fmt.Sprintf("%-13s", label)) + value
}

func (c *caScreen) detailView() string {
	r := c.detail
	if r == nil {
		return ""
	}
	var lines []string
	add := func(l, v string) { lines = append(lines, c.kv(l, v)) }
	lines = append(lines, c.s.Heading.Render("Certificate "+shortSerial(r.Serial)))
	add("serial", hex.EncodeToString(r.Serial.Bytes()))
	cert, err := r.Certificate()
	if err == nil {
		add("subject", subjectString(cert))
	} else {
		add("subject", r.Subject)
	}
	if err != nil {
		lines = append(lines, c.s.Error.Render("✗ the stored certificate cannot be read: "+errText(err)))
	} else {
		for _, s := range sanLines(cert) {
			add("SAN", s)
		}
		if eku := ekuNames(cert); eku != "" {
			add("key usage", eku)
		}
	}
	add("user", r.User)
	add("template", r.Template)
	if r.Agent != "" {
		add("agent", r.Agent)
	}
	add("valid", r.NotBefore.UTC().Format("2006-01-02 15:04")+" to "+r.NotAfter.UTC().Format("2006-01-02 15:04")+" UTC")
	add("issued", r.IssuedAt.UTC().Format("2006-01-02 15:04")+" UTC")
	switch r.Status {
	case pki.StatusValid:
		if now := c.b.st.Now(); now.After(r.NotAfter) {
			add("status", c.s.Warn.Render("expired"))
		} else {
			add("status", c.s.OK.Render("valid"))
		}
	case pki.StatusOnHold:
		add("status", c.s.Warn.Render("on hold since "+r.RevokedAt.UTC().Format("2006-01-02 15:04")+" UTC"))
	default:
		add("status", c.s.Error.Render("revoked on "+r.RevokedAt.UTC().Format("2006-01-02 15:04")+" UTC"))
		add("reason", r.Reason.String())
	}
	if err == nil {
		sum := sha256.Sum256(cert.Raw)
		add("SHA-256", truncate(hex.EncodeToString(sum[:]), max(c.width-14, 16)))
	}
	return strings.Join(lines, "\n")
}

func (c *caScreen) templatesView() string {
	var lines []string
	lines = append(lines, c.s.Heading.Render("Certificate templates"))
	if c.tmplErr != nil {
		return strings.Join(append(lines, c.s.Error.Render("✗ "+errText(c.tmplErr))), "\n")
	}
	for _, t := range c.templates {
		v, _ := t.Validity.MarshalText()
		var req []string
		for _, r := range t.Requesters {
			req = append(req, string(r))
		}
		lines = append(lines, fmt.Sprintf("%-18s %5s  %s", t.Name, v, truncate(t.Description, max(c.width-27, 10))))
		detail := "EKU " + strings.Join(t.ExtKeyUsage, ",") + "  SAN " + strings.Join(t.SubjectAltNames, ",") + "  by " + strings.Join(req, ",")
		lines = append(lines, c.s.Muted.Render("  "+truncate(detail, max(c.width-2, 10))))
	}
	return strings.Join(lines, "\n")
}

func (c *caScreen) chainView() string {
	var lines []string
	lines = append(lines, c.s.Heading.Render("CA chain"))
	if c.chainErr != nil {
		return strings.Join(append(lines, c.s.Error.Render("✗ "+errText(c.chainErr))), "\n")
	}
	for i, cert := range c.chain {
		role := "issuing CA"
		if i > 0 {
			role = "parent CA"
		}
		if i == len(c.chain)-1 && i > 0 {
			role = "root"
		}
		if len(c.chain) == 1 {
			role = "issuing CA (root)"
		}
		sum := sha256.Sum256(cert.Raw)
		lines = append(lines, c.s.Label.Render(role),
			c.kv("  subject", cert.Subject.String()),
			c.kv("  issuer", cert.Issuer.String()),
			c.kv("  valid", day(cert.NotBefore)+" to "+day(cert.NotAfter)),
			c.kv("  SHA-256", truncate(hex.EncodeToString(sum[:]), max(c.width-14, 16))),
		)
	}
	return strings.Join(lines, "\n")
}

// shortSerial is a serial as the list shows it: hex, cut to 16 digits.
func shortSerial(n *big.Int) string {
	if n == nil {
		return ""
	}
	return truncate(hex.EncodeToString(n.Bytes()), 16)
}

func reasonLabel(r pki.RevocationReason) string {
	switch r {
	case pki.ReasonKeyCompromise:
		return "key compromise (card lost or stolen)"
	case pki.ReasonAffiliationChanged:
		return "affiliation changed"
	case pki.ReasonSuperseded:
		return "superseded (a new certificate replaces it)"
	case pki.ReasonCessationOfOperation:
		return "cessation of operation (no longer needed)"
	case pki.ReasonCertificateHold:
		return "certificate hold (suspend; can be released)"
	case pki.ReasonPrivilegeWithdrawn:
		return "privilege withdrawn"
	case pki.ReasonUnspecified:
		return "unspecified"
	}
	return r.String()
}

func sanLines(cert *x509.Certificate) []string {
	sans, ok, err := pki.SubjectAltNamesOf(cert)
	if err != nil {
		return []string{"(unreadable: " + errText(err) + ")"}
	}
	if !ok {
		return nil
	}
	var out []string
	if sans.UPN != "" {
		out = append(out, "UPN "+sans.UPN)
	}
	for _, p := range sans.Principals {
		out = append(out, "Kerberos "+p.String())
	}
	for _, e := range sans.Emails {
		out = append(out, "email "+e)
	}
	for _, d := range sans.DNSNames {
		out = append(out, "DNS "+d)
	}
	for _, u := range sans.URIs {
		out = append(out, "URI "+u)
	}
	for _, o := range sans.Other {
		out = append(out, "other "+o.TypeID.String())
	}
	return out
}

func ekuNames(cert *x509.Certificate) string {
	var out []string
	for _, u := range cert.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageClientAuth:
			out = append(out, "clientAuth")
		case x509.ExtKeyUsageServerAuth:
			out = append(out, "serverAuth")
		case x509.ExtKeyUsageEmailProtection:
			out = append(out, "emailProtection")
		default:
			out = append(out, fmt.Sprintf("eku(%d)", u))
		}
	}
	for _, o := range cert.UnknownExtKeyUsage {
		switch {
		case o.Equal(pki.OIDSmartCardLogon):
			out = append(out, "smartcardLogon")
		case o.Equal(pki.OIDPKINITClientAuth):
			out = append(out, "pkinitClientAuth")
		case o.Equal(pki.OIDPKINITKDC):
			out = append(out, "pkinitKDC")
		case o.Equal(pki.OIDCertificateRequestAgent):
			out = append(out, "enrollmentAgent")
		default:
			out = append(out, o.String())
		}
	}
	return strings.Join(out, ", ")
}

// shortNames are the attribute names a subject shows beyond the ones
// crypto/x509 knows (which it would print as dotted OIDs).
var shortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
	"2.5.4.5": "SERIALNUMBER", "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
	"1.2.840.113549.1.9.1": "emailAddress",
}

// subjectString is the subject in RFC 4514 order with short names for
// the usual attributes.
func subjectString(cert *x509.Certificate) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(cert.RawSubject, &seq); err != nil || len(rest) > 0 {
		return cert.Subject.String()
	}
	var parts []string
	for i := len(seq) - 1; i >= 0; i-- {
		var avas []string
		for _, a := range seq[i] {
			name, ok := shortNames[a.Type.String()]
			v, isStr := a.Value.(string)
			if !ok || !isStr {
				return cert.Subject.String()
			}
			avas = append(avas, name+"="+v)
		}
		parts = append(parts, strings.Join(avas, "+"))
	}
	return strings.Join(parts, ",")
}
