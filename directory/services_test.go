package directory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/directory/ldaptest"
	"github.com/scstation/scstation/internal/testpeer"
)

// TestServiceAccounts registers services on accounts, finds them by SPN
// (case-insensitively, as AD does), re-keys them, and refuses an SPN on
// two accounts.
func TestServiceAccounts(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{})
	st := s.Store
	ctx := context.Background()
	seal := func(want []byte, out string) func(string, []byte) ([]byte, error) {
		return func(name string, old []byte) ([]byte, error) {
			if name != "svc-web" && name != "svc-other" && name != "svc" {
				return nil, fmt.Errorf("sealing for %q", name)
			}
			if !bytes.Equal(old, want) {
				return nil, fmt.Errorf("old keys %q, want %q", old, want)
			}
			return []byte(out), nil
		}
	}
	a, err := st.SetServiceKeys("svc-web", "HTTP/web.example.test", seal(nil, "v1"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "svc-web" || string(a.Keys) != "v1" || a.Disabled || len(a.SPNs) != 1 {
		t.Fatalf("new service account: %+v", a)
	}
	if _, err := st.SetServiceKeys("SVC-Web", "http/www.example.test", func(name string, old []byte) ([]byte, error) {
		if name != "svc-web" || string(old) != "v1" {
			return nil, fmt.Errorf("sealing for %q with old keys %q", name, old)
		}
		return []byte("v2"), nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, spn := range []string{"HTTP/web.example.test", "http/WEB.example.test", "http/www.example.test"} {
		got, err := st.ServiceBySPN(ctx, spn)
		if err != nil || got.Name != "svc-web" || string(got.Keys) != "v2" || len(got.SPNs) != 2 {
			t.Errorf("ServiceBySPN(%s): %+v %v", spn, got, err)
		}
	}
	for _, spn := range []string{"HTTP/other.example.test", "HTTP", "krbtgt/EXAMPLE.TEST", "", "a/b@X"} {
		if _, err := st.ServiceBySPN(ctx, spn); !errors.Is(err, directory.ErrNoSuchService) {
			t.Errorf("ServiceBySPN(%q): %v, want ErrNoSuchService", spn, err)
		}
	}
	// An SPN names one account.
	if _, err := st.SetServiceKeys("svc-other", "HTTP/WEB.example.test", seal(nil, "x")); !errors.Is(err, directory.ErrAmbiguous) {
		t.Errorf("the same SPN on a second account: %v", err)
	}
	if _, err := st.User("svc-other"); !errors.Is(err, directory.ErrNoSuchUser) {
		t.Errorf("a refused registration left an account behind: %v", err)
	}
	// A failing seal changes nothing.
	if _, err := st.SetServiceKeys("svc-web", "HTTP/web.example.test", func(string, []byte) ([]byte, error) { return nil, errors.New("no") }); err == nil {
		t.Error("a failing seal was stored")
	}
	for _, bad := range []struct{ account, spn string }{
		{"svc", "nohost"}, {"svc", "krbtgt/EXAMPLE.TEST"}, {"svc", "host/a b"}, {"svc", "host//x"}, {"bad name!", "host/x"},
	} {
		if _, err := st.SetServiceKeys(bad.account, bad.spn, seal(nil, "x")); err == nil {
			t.Errorf("SetServiceKeys(%q, %q) accepted", bad.account, bad.spn)
		}
	}
	list, err := st.ServiceAccounts(ctx)
	if err != nil || len(list) != 1 || string(list[0].Keys) != "v2" {
		t.Fatalf("ServiceAccounts: %+v %v", list, err)
	}
	// Disabling keeps the other flags.
	if err := st.SetUserDisabled("svc-web", true); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ServiceBySPN(ctx, "HTTP/web.example.test"); !got.Disabled {
		t.Error("the disabled service account is not Disabled")
	}
	u, err := st.User("svc-web")
	if err != nil || !u.Disabled {
		t.Fatalf("User: %+v %v", u, err)
	}
	if err := st.SetUserDisabled("svc-web", false); err != nil {
		t.Fatal(err)
	}
	if u, _ := st.User("svc-web"); u.Disabled {
		t.Error("enabled again, still Disabled")
	}
	if err := st.SetUserDisabled("nobody", true); !errors.Is(err, directory.ErrNoSuchUser) {
		t.Errorf("disabling nobody: %v", err)
	}
}

// TestServiceKeysNeverOverLDAP checks with OpenLDAP's tools that the
// sealed keys are not returned (even to the administrator asking by
// name), match no filter, and cannot be written over LDAP.
func TestServiceKeysNeverOverLDAP(t *testing.T) {
	testpeer.Require(t, "ldapsearch", "ldapmodify")
	s := ldaptest.New(t, ldaptest.Options{})
	if _, err := s.Store.SetServiceKeys("svc-web", "HTTP/web.example.test", func(string, []byte) ([]byte, error) { return []byte("sealed-keys"), nil }); err != nil {
		t.Fatal(err)
	}
	admin := []string{"-H", s.URL, "-x", "-D", s.AdminDN, "-w", s.AdminPassword}
	for _, attrs := range [][]string{{"*", "+"}, {"scstationKerberosKeys"}, {directory.KerberosKeysOID}} {
		r := mustPeer(t, 0, peer(t, s, "", "ldapsearch", append(append(admin, "-LLL", "-b", s.BaseDN, "(servicePrincipalName=http/web.example.test)"), attrs...)...))
		if !strings.Contains(r.stdout, "dn: uid=svc-web,ou=people,"+s.BaseDN) {
			t.Errorf("ldapsearch %v did not find the account by SPN:\n%s", attrs, r.stdout)
		}
		if strings.Contains(strings.ToLower(r.stdout), "kerberoskeys") || strings.Contains(r.stdout, "c2VhbGVk") {
			t.Errorf("ldapsearch %v returned the keys:\n%s", attrs, r.stdout)
		}
	}
	var exported bytes.Buffer
	if _, err := s.Store.ExportLDIF(context.Background(), &exported, directory.ExportOptions{Passwords: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(exported.String(), "servicePrincipalName: HTTP/web.example.test") || strings.Contains(strings.ToLower(exported.String()), "kerberoskeys") {
		t.Errorf("LDIF export with passwords: the SPN missing or the keys there:\n%s", exported.String())
	}
	r := mustPeer(t, 0, peer(t, s, "", "ldapsearch", append(admin, "-LLL", "-b", s.BaseDN, "(scstationKerberosKeys=*)", "dn")...))
	if strings.TrimSpace(r.stdout) != "" {
		t.Errorf("a presence filter on the keys matched:\n%s", r.stdout)
	}
	mod := "dn: uid=svc-web,ou=people," + s.BaseDN + "\nchangetype: modify\nreplace: scstationKerberosKeys\nscstationKerberosKeys: mine\n"
	r = peer(t, s, mod, "ldapmodify", admin...)
	if r.code != 19 { // constraintViolation
		t.Errorf("ldapmodify of the keys: exit %d, want 19 (constraint violation)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if a, err := s.Store.ServiceBySPN(context.Background(), "HTTP/web.example.test"); err != nil || string(a.Keys) != "sealed-keys" {
		t.Errorf("keys after the refused modify: %q %v", a.Keys, err)
	}
}

// TestClientDisabled reads ACCOUNTDISABLE over LDAP: the embedded server
// through the Client (embedded profile), and slapd (OpenLDAP profile,
// which has no userAccountControl: never disabled).
func TestClientDisabled(t *testing.T) {
	s := embeddedServer(t)
	c := newClient(t, embeddedConfig(t, s))
	ctx := context.Background()
	if u, err := c.LookupUser(ctx, "alice"); err != nil || u.Disabled {
		t.Fatalf("alice before: %+v %v", u, err)
	}
	if err := s.Store.SetUserDisabled("alice", true); err != nil {
		t.Fatal(err)
	}
	if u, err := c.LookupUser(ctx, "alice"); err != nil || !u.Disabled {
		t.Fatalf("alice disabled, over LDAP: %+v %v", u, err)
	}
	if u, err := c.LookupUser(ctx, "bob"); err != nil || u.Disabled {
		t.Fatalf("bob: %+v %v", u, err)
	}
	sl := slapdPeer(t, ldaptest.SlapdOptions{})
	if u, err := newClient(t, slapdConfig(t, sl)).LookupUser(ctx, "alice"); err != nil || u.Disabled {
		t.Fatalf("alice on slapd: %+v %v", u, err)
	}
}
