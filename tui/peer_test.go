package tui

import (
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/directory/ldaptest"
	"github.com/scstation/scstation/station"
)

// startOpts runs the station with opts at 80×24.
func startOpts(t *testing.T, opts Options) *harness {
	t.Helper()
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := &probe{m: m}
	tm := teatest.NewTestModel(t, p, teatest.WithInitialTermSize(80, 24),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.TrueColor)))
	t.Cleanup(func() {
		tm.Quit()
		tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
		m.Close()
	})
	return &harness{t: t, tm: tm, p: p}
}

// TestHomeReadersPCSCD watches the real pcscd: a virtual card put into a
// vpcd reader shows on Home as present, and as gone when it is pulled.
func TestHomeReadersPCSCD(t *testing.T) {
	cardtest.PCSCD(t)
	st := newStation(t, "")
	h := startOpts(t, Options{Station: st})
	h.waitFor("Readers and cards")
	vs, err := virtual.NewState(4242)
	if err != nil {
		t.Fatal(err)
	}
	vc := virtual.New(vs, "")
	reader := cardtest.Attach(t, vc)
	readerLine := regexp.MustCompile(regexp.QuoteMeta(truncate(reader, labelWidth-3)) + ` +(card present|empty)`)
	state := func() string {
		if m := readerLine.FindStringSubmatch(h.p.screen()); m != nil {
			return m[1]
		}
		return ""
	}
	waitState := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for state() != want {
			if time.Now().After(deadline) {
				t.Fatalf("reader %q never showed %q:\n%s", reader, want, h.p.screen())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitState("card present")
	vc.Close()
	waitState("empty")
}

// TestHomeServices runs the embedded services in-process on free ports:
// Home shows where they listen, and they answer (the CA certificate over
// HTTP is the station's).
func TestHomeServices(t *testing.T) {
	st := newStation(t, "")
	h := startOpts(t, Options{Station: st, Watch: make(fakeWatch).watch,
		Serve: &station.ServeOptions{HTTP: "127.0.0.1:0", LDAP: "127.0.0.1:0", KDC: "127.0.0.1:0"}})
	s := h.waitFor("http", "ldap", "kdc")
	m := regexp.MustCompile(`http +listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no HTTP address on Home:\n%s", s)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/ca.crt", m[1]))
	if err != nil {
		t.Fatal(err)
	}
	der, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cert, err := x509.ParseCertificate(der)
	chain, _ := st.CAChain()
	if err != nil || !cert.Equal(chain[0]) {
		t.Fatalf("GET /ca.crt: %v", err)
	}
	for _, svc := range []string{"ldap", "kdc"} {
		if !regexp.MustCompile(svc + ` +listening on 127\.0\.0\.1:\d+`).MatchString(s) {
			t.Errorf("%s not listening:\n%s", svc, s)
		}
	}
}

// TestHomeServiceError shows a service that cannot start (its port is
// taken) in place, and the station goes on.
func TestHomeServiceError(t *testing.T) {
	st := newStation(t, "")
	h1 := startOpts(t, Options{Station: st, Watch: make(fakeWatch).watch, Serve: &station.ServeOptions{HTTP: "127.0.0.1:0"}})
	s := h1.waitFor("http")
	addr := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(s)
	if addr == nil {
		t.Fatalf("no address:\n%s", s)
	}
	st2 := newStation(t, "")
	h := startOpts(t, Options{Station: st2, Watch: make(fakeWatch).watch, Serve: &station.ServeOptions{HTTP: addr[1]}})
	s = h.waitFor("http on "+addr[1], "address already in")
	if !strings.Contains(s, "Certificate authority") {
		t.Errorf("Home is not drawn:\n%s", s)
	}
}

// TestDirectorySlapd searches an external directory, a real OpenLDAP
// slapd, from the Directory screen: the station's [directory] points at it.
func TestDirectorySlapd(t *testing.T) {
	suffix := "dc=example,dc=test"
	var users strings.Builder
	for _, u := range []struct{ uid, name string }{{"erin", "Erin Example"}, {"erik", "Erik Other"}, {"frank", "Frank Third"}} {
		fmt.Fprintf(&users, "dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nobjectClass: upnPrincipal\nuid: %s\ncn: %s\nsn: %s\ndisplayName: %s\nmail: %s@example.test\nuserPrincipalName: %s@example.test\n\n",
			u.uid, suffix, u.uid, u.name, strings.Fields(u.name)[1], u.name, u.uid, u.uid)
	}
	slapd := ldaptest.NewSlapd(t, ldaptest.SlapdOptions{LDIF: "dn: " + suffix + "\nobjectClass: top\nobjectClass: domain\ndc: example\n\n" +
		"dn: ou=people," + suffix + "\nobjectClass: organizationalUnit\nou: people\n\n" + users.String()})
	st := newStation(t, "")
	st.Config.Directory = station.DirectoryConfig{Mode: station.DirectoryLDAP, URL: slapd.URL, BindDN: slapd.RootDN, PasswordFile: slapd.PasswordFile,
		BaseDN: suffix, UserBase: "ou=people," + suffix, Flavor: directory.ProfileOpenLDAP}
	if err := st.Config.Validate(); err != nil {
		t.Fatal(err)
	}
	h := startOpts(t, Options{Station: st, Watch: make(fakeWatch).watch})
	h.key('3')
	h.typ("er")
	s := h.waitFor("2 users", "Erin Example", "Erik Other")
	if strings.Contains(s, "alice") || strings.Contains(s, "Frank") {
		t.Errorf("the search shows users it should not (the embedded ones, or no match):\n%s", s)
	}
	h.typ("in")
	h.waitFor("1 user")
	h.key(tea.KeyEnter)
	h.waitFor("erin@example.test", "uid=erin,ou=people,dc=example,dc=test", "Published certificates")
}
