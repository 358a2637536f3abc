package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/audit"
)

// newStation makes a data directory with users and issued certificates.
// pass, when not empty, encrypts the CA key.
func newStation(tb testing.TB, pass string) *station.Station {
	tb.Helper()
	opts := station.InitOptions{Domain: "example.test", CA: station.CAOptions{KeyAlgorithm: pki.P256}}
	if pass != "" {
		opts.CA.Passphrase = func(bool) ([]byte, error) { return []byte(pass), nil }
	}
	st, err := station.Init(filepath.Join(tb.TempDir(), "station"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	d, err := st.Directory()
	if err != nil {
		tb.Fatal(err)
	}
	for _, u := range station.DemoUsers {
		if _, err := d.AddUser(u); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := d.AddGroup("enrollment-officers", "may enroll cards"); err != nil {
		tb.Fatal(err)
	}
	if err := d.AddMember("enrollment-officers", "officer"); err != nil {
		tb.Fatal(err)
	}
	var p station.PassphraseFunc
	if pass != "" {
		p = func(bool) ([]byte, error) { return []byte(pass), nil }
	}
	for _, is := range []struct{ tmpl, user string }{
		{"smartcard-logon", "alice"}, {"smime-signing", "alice"}, {"smartcard-logon", "bob"},
	} {
		_, csr := pkitest.NewCSR(tb, pki.P256)
		if _, err := st.Issue(context.Background(), p, is.tmpl, csr, is.user, ""); err != nil {
			tb.Fatal(err)
		}
	}
	// Forget the unlocked CA key, as a fresh process would.
	dir := st.Dir
	st.Close()
	st, err = station.Open(dir, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// fakeWatch reports the readers and cards a test sends on it.
type fakeWatch chan card.Event

func (f fakeWatch) watch(ctx context.Context, events chan<- card.Event) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-f:
			select {
			case events <- ev:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// probe wraps the root model and keeps the last frame as plain text, so
// that a test can wait for what the screen shows.
type probe struct {
	m    *Model
	mu   sync.Mutex
	view string
	raw  string
}

func (p *probe) rawScreen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw
}

func (p *probe) Init() tea.Cmd { return p.m.Init() }

func (p *probe) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := p.m.Update(msg)
	v := ansi.Strip(p.m.View().Content)
	raw := p.m.View().Content
	p.mu.Lock()
	p.view, p.raw = v, raw
	p.mu.Unlock()
	return p, cmd
}

func (p *probe) View() tea.View { return p.m.View() }

func (p *probe) screen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.view
}

// harness runs the station in teatest at 80×24 with a fixed colour profile.
type harness struct {
	t     *testing.T
	tm    *teatest.TestModel
	p     *probe
	cards fakeWatch
}

func start(t *testing.T, st *station.Station, noColor bool) *harness {
	t.Helper()
	return startWith(t, Options{Station: st, NoColor: noColor})
}

// startWith is start with more options; Watch is the harness's.
func startWith(t *testing.T, opts Options) *harness {
	t.Helper()
	return startSized(t, opts, 80, 24)
}

// startSized is startWith in a w×h window.
func startSized(t *testing.T, opts Options, w, h int) *harness {
	t.Helper()
	cards := make(fakeWatch)
	opts.Watch = cards.watch
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := &probe{m: m}
	tm := teatest.NewTestModel(t, p, teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.TrueColor)))
	hs := &harness{t: t, tm: tm, p: p, cards: cards}
	t.Cleanup(func() {
		tm.Quit()
		tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
		m.Close()
	})
	return hs
}

// waitFor waits until the screen shows all of want (no timing is asserted:
// the deadline only stops a test that would hang).
func (h *harness) waitFor(want ...string) string {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := h.p.screen()
		ok := true
		for _, w := range want {
			if !strings.Contains(s, w) {
				ok = false
				break
			}
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the screen never showed %q; it shows:\n%s", want, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) key(k rune) { h.tm.Send(tea.KeyPressMsg{Code: k}) }
func (h *harness) typ(s string) {
	h.tm.Type(s)
}

var (
	dateRE      = regexp.MustCompile(`\d{4}-\d{2}-\d{2}`)
	timeRE      = regexp.MustCompile(`\b\d{2}:\d{2}\b`)
	hexRE       = regexp.MustCompile(`\b[0-9a-f]{15}…|\b[0-9a-f]{24,64}\b`)
	sidRE       = regexp.MustCompile(`S-1-5-21-\d+-\d+-\d+-\d+`)
	tookRE      = regexp.MustCompile(`took \d+ ms`)
	pinRE       = regexp.MustCompile(`PIN \d{6,8}\b`)
	guidRE      = regexp.MustCompile(`guid:[0-9a-f]+…?`)
	cliRE       = regexp.MustCompile(`cli:\S+ *`)
	bytesRE     = regexp.MustCompile(`\b\d+ b(ytes|…)`)
	serialRE    = regexp.MustCompile(`^ [0-9a-f]{15}… `)
	serverRowRE = regexp.MustCompile(`^ [0-9a-f]{15}… +\S+ +server +valid +\d{4}-\d{2}-\d{2}`)
)

// normalize replaces what differs from run to run (dates, serials, SIDs,
// the host name in the services certificate's row) and sorts table rows,
// which come in random serial order.
func normalize(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		// Trailing blanks depend on the width of what was replaced below.
		lines[i] = strings.TrimRight(l, " ")
		// The services certificate is issued to this machine's name.
		if serverRowRE.MatchString(l) {
			lines[i] = " SERIAL…   (this host)   server   valid   YYYY-MM-DD"
		}
	}
	var rows []int
	for i, l := range lines {
		if serialRE.MatchString(l) {
			rows = append(rows, i)
		}
	}
	var sorted []string
	for _, i := range rows {
		sorted = append(sorted, hexRE.ReplaceAllString(lines[i], "SERIAL…"))
	}
	slices.Sort(sorted)
	for n, i := range rows {
		lines[i] = sorted[n]
	}
	s = strings.Join(lines, "\n")
	s = guidRE.ReplaceAllString(s, "guid:GUID")
	s = bytesRE.ReplaceAllString(s, "NNNN b$1")
	// The audit names the OS user who runs the test.
	s = cliRE.ReplaceAllStringFunc(s, func(c string) string { return fmt.Sprintf("%-*s", len(c), "cli:USER") })
	s = dateRE.ReplaceAllString(s, "YYYY-MM-DD")
	s = timeRE.ReplaceAllString(s, "hh:mm")
	s = hexRE.ReplaceAllStringFunc(s, func(h string) string {
		if strings.HasSuffix(h, "…") {
			return "SERIAL…"
		}
		return strings.Repeat("x", len(h))
	})
	s = sidRE.ReplaceAllString(s, "S-1-5-21-SID")
	s = tookRE.ReplaceAllString(s, "took N ms")
	s = pinRE.ReplaceAllString(s, "PIN NNNNNNNN")
	return s
}

func (h *harness) golden(want ...string) {
	h.t.Helper()
	s := h.waitFor(want...)
	if n := len(strings.Split(s, "\n")); n != 24 {
		h.t.Errorf("the frame has %d lines, want 24", n)
	}
	for i, l := range strings.Split(s, "\n") {
		if w := ansi.StringWidth(l); w > 80 {
			h.t.Errorf("line %d is %d cells wide: %q", i, w, l)
		}
	}
	golden.RequireEqual(h.t, normalize(s))
}

func TestHomeGolden(t *testing.T) {
	st := newStation(t, "")
	h := start(t, st, false)
	h.waitFor("looking for readers")
	h.cards <- card.Event{Kind: card.ServiceUp}
	h.cards <- card.Event{Kind: card.ReaderAdded, Reader: "Virtual PCD 00 00"}
	h.cards <- card.Event{Kind: card.ReaderAdded, Reader: "Virtual PCD 00 01"}
	h.cards <- card.Event{Kind: card.CardInserted, Reader: "Virtual PCD 00 01"}
	h.golden("card present", "not published yet", "not signed in")

	h.cards <- card.Event{Kind: card.CardRemoved, Reader: "Virtual PCD 00 01"}
	s := h.waitFor("Virtual PCD 00 01")
	for strings.Contains(s, "card present") {
		time.Sleep(10 * time.Millisecond)
		s = h.p.screen()
	}
	h.cards <- card.Event{Kind: card.ServiceDown, Err: card.ErrNoService}
	h.waitFor("pcscd) is not running")
}

func TestCAListGolden(t *testing.T) {
	h := start(t, newStation(t, ""), false)
	h.key('2')
	h.golden("4 certificates", "smime-signing")
}

func TestCAFilters(t *testing.T) {
	h := start(t, newStation(t, ""), false)
	h.key('2')
	h.waitFor("4 certificates")
	h.key('/')
	h.typ("alice")
	h.waitFor("2 certificates")
	h.key(tea.KeyEnter)
	h.key('t') // first template: enrollment-agent
	h.waitFor("template enrollment-agent", "no certificate matches")
	h.key(tea.KeyEscape) // clear the filters
	h.waitFor("4 certificates")
	h.key('e') // expiring within 7 days: none
	h.waitFor("expiring ≤ 7 days", "no certificate matches")
	h.key(tea.KeyEscape)
	h.waitFor("4 certificates")
	h.key('s')
	h.waitFor("status valid", "4 certificates")
	h.key('s')
	h.waitFor("status revoked", "no certificate matches")
}

func TestCADetailGolden(t *testing.T) {
	h := start(t, newStation(t, ""), false)
	h.key('2')
	h.waitFor("4 certificates")
	h.key('/')
	h.typ("bob")
	h.waitFor("1 certificate")
	h.key(tea.KeyEnter)
	h.key(tea.KeyEnter)
	h.golden("UPN bob@example.test", "smartcardLogon", "status       valid")
}

func TestCATemplatesAndChainGolden(t *testing.T) {
	h := start(t, newStation(t, ""), false)
	h.key('2')
	h.waitFor("4 certificates")
	h.key('T')
	t.Run("templates", func(t *testing.T) {
		h.t = t
		h.golden("Certificate templates", "smime-signing")
	})
	h.key(tea.KeyEscape)
	h.key('C')
	t.Run("chain", func(t *testing.T) {
		h.t = t
		h.golden("CA chain", "issuing CA (root)", "SHA-256")
	})
}

// TestRevoke revokes a certificate through the screen, with a reason and a
// confirmation, publishes the CRL with the CA key's passphrase, and checks
// the result with the CA database and with openssl.
func TestRevoke(t *testing.T) {
	openssl := testpeer.Path(t, "openssl")
	st := newStation(t, "correct horse battery")
	db, _ := st.CADB()
	recs, err := db.List(pki.Query{User: "bob"})
	if err != nil || len(recs) != 1 {
		t.Fatalf("bob's certificates: %v %v", recs, err)
	}
	serial := recs[0].Serial

	h := start(t, st, false)
	h.key('2')
	h.waitFor("4 certificates")
	h.key('/')
	h.typ("bob")
	h.waitFor("1 certificate")
	h.key(tea.KeyEnter)
	h.key('r')
	h.waitFor("┃ Revoke certificate", "key compromise")
	t.Run("form", func(t *testing.T) {
		h.t = t
		h.golden("Revoke certificate", "unspecified")
	})
	h.t = t
	// Cancelling changes nothing.
	h.key(tea.KeyEscape)
	h.waitFor("cancelled")
	if r, _ := db.Get(serial); r.Status != pki.StatusValid {
		t.Fatalf("cancelled revocation changed the status to %s", r.Status)
	}
	// revokeSuperseded chooses the reason superseded and answers the
	// confirmation: Keep (the default) or Revoke.
	revokeSuperseded := func(confirm bool) {
		h.key('r')
		h.waitFor("┃ Revoke certificate")
		h.key(tea.KeyDown)
		h.key(tea.KeyDown)
		h.key(tea.KeyEnter)
		// huh moves the focus in a command of its own: wait until the
		// confirmation has it (its border mark) before answering.
		h.waitFor("┃ Revoke it (superseded)?")
		if confirm {
			h.key(tea.KeyLeft)
		}
		h.key(tea.KeyEnter)
	}
	// Superseded, then "Keep": nothing changes either.
	revokeSuperseded(false)
	h.waitFor("not revoked")
	if r, _ := db.Get(serial); r.Status != pki.StatusValid {
		t.Fatalf("kept certificate has status %s", r.Status)
	}
	// Superseded, confirmed.
	revokeSuperseded(true)
	h.waitFor("revoked (superseded)")
	r, err := db.Get(serial)
	if err != nil || r.Status != pki.StatusRevoked || r.Reason != pki.ReasonSuperseded {
		t.Fatalf("after revocation: %+v %v", r, err)
	}
	// Revoking it again is refused in place.
	h.key('r')
	h.waitFor("already revoked")

	// Publish the CRL: the key is encrypted, so the passphrase is asked
	// for, masked. A wrong one is refused and publishes nothing.
	h.key('p')
	h.waitFor("┃ CA key passphrase")
	h.typ("wrong")
	// Once the five characters are in, the screen shows five mask
	// characters and not the passphrase.
	if s := h.waitFor("*****"); strings.Contains(s, "wrong") {
		t.Fatalf("the passphrase is shown on the screen:\n%s", s)
	}
	h.key(tea.KeyEnter)
	h.waitFor("wrong passphrase")
	if _, err := os.Stat(st.CRLPath()); err == nil {
		t.Fatal("a CRL was published with a wrong passphrase")
	}
	h.key('p')
	h.waitFor("┃ CA key passphrase")
	h.typ("correct horse battery")
	h.key(tea.KeyEnter)
	h.waitFor("CRL #1 published: 1 revoked")

	chain, _ := st.CAChain()
	caFile := pkitest.WritePEM(t, t.TempDir(), "ca.pem", chain[0])
	out, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", st.CRLPath(), "-CAfile", caFile, "-noout", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "verify OK") {
		t.Errorf("openssl did not verify the CRL's signature:\n%s", text)
	}
	want := strings.ToUpper(serial.Text(16))
	if len(want)%2 == 1 {
		want = "0" + want
	}
	if !strings.Contains(text, "Serial Number: "+want) || !strings.Contains(text, "Superseded") {
		t.Errorf("the CRL does not list %s as superseded:\n%s", want, text)
	}
	// Home shows the new CRL.
	h.key('1')
	h.waitFor("#1, 1 revoked, next update")
	// The audit log has the revocation and the CRL.
	log, err := st.Audit()
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := log.List(audit.Query{Action: "cert.revoke"}); err != nil || len(rs) != 1 || rs[0].Outcome != "ok" {
		t.Errorf("audit cert.revoke: %+v %v", rs, err)
	}
	rs, err := log.List(audit.Query{Action: "crl.publish"})
	if err != nil || len(rs) == 0 || rs[len(rs)-1].Outcome != "ok" {
		t.Errorf("audit crl.publish: %+v %v", rs, err)
	}
	for _, r := range rs {
		if strings.Contains(r.Detail, "correct horse") {
			t.Errorf("the passphrase is in the audit log: %+v", r)
		}
	}
}

func TestDirectorySearchGolden(t *testing.T) {
	h := start(t, newStation(t, ""), false)
	h.key('3')
	h.waitFor("4 users")
	h.typ("a")
	h.golden("search: a", "alice", "carol")
	h.typ("li")
	h.waitFor("1 user")
	h.typ("x")
	h.waitFor(`no user matches "alix"`)
}

func TestDirectoryUserGolden(t *testing.T) {
	st := newStation(t, "")
	db, _ := st.CADB()
	recs, _ := db.List(pki.Query{User: "alice", Template: "smime-signing"})
	if _, err := st.Revoke(recs[0].Serial, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	h := start(t, st, false)
	h.key('3')
	h.waitFor("4 users")
	h.typ("alice")
	h.waitFor("1 user")
	h.key(tea.KeyEnter)
	// A revoked certificate is withdrawn from the directory (station
	// withdraws it when it is revoked for good): only the logon one is left.
	h.golden("Published certificates", "smartcard-logon")
	if s := h.p.screen(); strings.Contains(s, "smime-signing") {
		t.Errorf("the revoked certificate is still published:\n%s", s)
	}
	h.key(tea.KeyEscape)
	h.key('g')
	t.Run("groups", func(t *testing.T) {
		h.t = t
		h.golden("Groups", "enrollment-officers", "1 member")
	})
}

func TestHelp(t *testing.T) {
	h := start(t, newStation(t, ""), false)
	h.key('2')
	h.waitFor("4 certificates")
	h.key('?')
	h.golden("templates", "expiring", "next screen")
}

// TestNoColor checks that the NO_COLOR styles draw no colour at all, on
// every screen, and that the colour styles do (so the check can fail).
func TestNoColor(t *testing.T) {
	st := newStation(t, "")
	for _, noColor := range []bool{true, false} {
		h := start(t, st, noColor)
		var seen []string
		check := func(name string, want ...string) {
			h.waitFor(want...)
			v := h.p.rawScreen()
			if colourSGR.MatchString(v) != !noColor {
				seen = append(seen, name)
			}
		}
		check("home", "Certificate authority", "not published yet")
		h.key('2')
		check("CA", "4 certificates")
		h.key(tea.KeyEnter)
		check("details", "SHA-256")
		h.key('r')
		check("revoke form", "Revoke certificate")
		h.key(tea.KeyEscape)
		h.key('3')
		check("directory", "4 users")
		h.key(tea.KeyEscape)
		h.key('?')
		check("full help", "next screen")
		if noColor && len(seen) > 0 {
			t.Errorf("colour codes with NO_COLOR on %v", seen)
		}
		if !noColor && len(seen) > 0 {
			t.Errorf("no colour without NO_COLOR on %v: the check proves nothing", seen)
		}
		h.tm.Quit()
		h.tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
		st.Close()
	}
}

// colourSGR matches an SGR sequence that sets a colour: 30–37, 39, 40–47,
// 49, 90–97, 100–107, or 38;…/48;… extended colours.
var colourSGR = regexp.MustCompile(`\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:[;m])`)

func TestErrorsInPlace(t *testing.T) {
	st := newStation(t, "")
	// Another process holds the databases: open them elsewhere first.
	other, err := station.Open(st.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := other.CADB(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Directory(); err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	st2, err := station.Open(st.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	h := start(t, st2, false)
	h.key('2')
	h.waitFor("in use by another scstation process")
	h.key('3')
	h.waitFor("in use by another scstation process")
}

func TestWatchErrorShown(t *testing.T) {
	st := newStation(t, "")
	m, err := New(Options{Station: st, Watch: func(context.Context, chan<- card.Event) error { return card.ErrMonitorBusy }})
	if err != nil {
		t.Fatal(err)
	}
	p := &probe{m: m}
	tm := teatest.NewTestModel(t, p, teatest.WithInitialTermSize(80, 24))
	h := &harness{t: t, tm: tm, p: p}
	defer func() { tm.Quit(); tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second)); m.Close() }()
	h.waitFor("another reader monitor is running")
}

// TestResize draws every screen at other sizes: the frame always fills the
// window exactly and no line is wider than it.
func TestResize(t *testing.T) {
	h := start(t, newStation(t, ""), false)
	h.waitFor("Certificate authority", "not published yet")
	for _, size := range [][2]int{{100, 30}, {60, 16}, {80, 24}} {
		h.tm.Send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		for _, scr := range []rune{'1', '2', '3'} {
			h.key(tea.KeyEscape) // leave the search box
			h.key(scr)
			want := map[rune]string{'1': "Officer", '2': "4 certificates", '3': "4 users"}[scr]
			deadline := time.Now().Add(15 * time.Second)
			for {
				s := h.p.screen()
				lines := strings.Split(s, "\n")
				ok := strings.Contains(s, want) && len(lines) == size[1] && ansi.StringWidth(lines[0]) <= size[0]
				wide := false
				for _, l := range lines {
					if ansi.StringWidth(l) > size[0] {
						wide = true
					}
				}
				if ok && !wide {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%dx%d, screen %c: %d lines (wide: %v):\n%s", size[0], size[1], scr, len(lines), wide, s)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// TestMouseTabs switches screens by clicking their tabs.
func TestMouseTabs(t *testing.T) {
	h := start(t, newStation(t, ""), false)
	h.waitFor("Certificate authority")
	s := h.p.screen()
	x := strings.Index(strings.Split(s, "\n")[0], "3 Directory")
	h.tm.Send(tea.MouseClickMsg{X: x + 2, Y: 0, Button: tea.MouseLeft})
	h.waitFor("search:")
	x = strings.Index(strings.Split(h.p.screen(), "\n")[0], "2 CA")
	h.tm.Send(tea.MouseClickMsg{X: x + 1, Y: 0, Button: tea.MouseLeft})
	h.waitFor("4 certificates")
}

// TestHoldAndRelease puts a certificate on hold from the screen and
// releases it; the CA database and the audit log show both.
func TestHoldAndRelease(t *testing.T) {
	st := newStation(t, "")
	db, _ := st.CADB()
	recs, _ := db.List(pki.Query{User: "bob"})
	serial := recs[0].Serial
	h := start(t, st, false)
	h.key('2')
	h.waitFor("4 certificates")
	h.key('/')
	h.typ("bob")
	h.waitFor("1 certificate")
	h.key(tea.KeyEnter)
	h.key(tea.KeyEnter)
	h.waitFor("status       valid")
	h.key('u')
	h.waitFor("is not on hold")
	h.holdSelected()
	h.waitFor("put on hold", "status       on hold since")
	if r, _ := db.Get(serial); r.Status != pki.StatusOnHold {
		t.Fatalf("status %s, want hold", r.Status)
	}
	h.key('u')
	h.waitFor("released from hold", "status       valid")
	if r, _ := db.Get(serial); r.Status != pki.StatusValid {
		t.Fatalf("status %s after release, want valid", r.Status)
	}
	log, err := st.Audit()
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"cert.hold", "cert.release"} {
		rs, err := log.List(audit.Query{Action: action})
		if err != nil || len(rs) != 1 || rs[0].Outcome != "ok" {
			t.Errorf("audit %s: %+v %v", action, rs, err)
		}
	}
}

// TestHomeOfficer shows the signed-in officer, and the session ending
// when the monitor sees the officer's card leave its reader.
func TestHomeOfficer(t *testing.T) {
	st := newStation(t, "")
	ctx := context.Background()
	if _, err := st.BootstrapOfficer(ctx, station.OfficerOptions{User: "olga", PIN: "97531864"}); err != nil {
		t.Fatal(err)
	}
	o, err := st.SignInVirtual(ctx, "olga", "97531864")
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, st, false)
	h.waitFor("signed in           olga")
	h.cards <- card.Event{Kind: card.ServiceUp}
	h.cards <- card.Event{Kind: card.CardRemoved, Reader: o.Reader}
	// The station locks: the sign-in screen comes up and says why.
	h.waitFor("locked: the officer card was removed")
	if _, err := st.Officer(); !errors.Is(err, station.ErrNotSignedIn) {
		t.Errorf("the officer is still signed in after the card left: %v", err)
	}
}
