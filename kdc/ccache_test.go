package kdc_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/credentials"

	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
)

// TestWriteCCache writes our client's TGT and service ticket to a
// credential cache and reads it back with gokrb5 and with MIT klist; MIT
// kvno then uses the cached service ticket with the service's keytab.
func TestWriteCCache(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{})
	m := requireMITClient(t, s)
	s.AddUser("alice")
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	c := s.Client(cert, key)
	ctx := context.Background()
	tgt, err := c.PKINIT(ctx, "alice", kdc.PKINITOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.ServiceTicket(ctx, tgt, kdctest.Service)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(m.dir, "ccache-ours")
	if err := kdc.WriteCCache(path, tgt, st); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("ccache mode %v, want 0600", fi.Mode().Perm())
	}
	cc, err := credentials.LoadCCache(path)
	if err != nil {
		t.Fatalf("gokrb5 cannot read the cache: %v", err)
	}
	if got := cc.GetClientPrincipalName().PrincipalNameString(); got != "alice" {
		t.Errorf("default principal %q", got)
	}
	if n := len(cc.GetEntries()); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}

	r := m.run(t, "ours", m.klist, "-e", "-f", "-c", "FILE:"+path)
	t.Logf("klist:\n%s", r.out)
	if r.err != nil {
		t.Fatalf("klist: %v\n%s", r.err, r.out)
	}
	for _, want := range []string{"Default principal: alice@" + kdctest.Realm, "krbtgt/" + kdctest.Realm + "@" + kdctest.Realm,
		kdctest.Service + "@" + kdctest.Realm, "aes256-cts-hmac-sha1-96", "Flags: F"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("klist does not show %q:\n%s", want, r.out)
		}
	}
	// kvno finds the service ticket in the cache (or gets one with the
	// TGT) and decrypts it with the keytab.
	keytab := filepath.Join(m.dir, "host.keytab")
	kt, err := s.Store.Keytab(kdctest.Service)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keytab, kt, 0o600); err != nil {
		t.Fatal(err)
	}
	kv := m.run(t, "ours", m.kvno, "-c", "FILE:"+path, "-k", keytab, kdctest.Service+"@"+kdctest.Realm)
	if kv.err != nil || !strings.Contains(kv.out, "keytab entry valid") {
		t.Fatalf("kvno: %v\n%s\n%s", kv.err, kv.out, kv.trace)
	}
}
