package kdc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"

	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
)

// TestDisabledAccount: an account with ACCOUNTDISABLE is refused with
// KDC_ERR_CLIENT_REVOKED, for PKINIT (DH and public-key mode) and
// encrypted timestamp, by our client, gokrb5's and MIT kinit; a TGT issued
// before the account was disabled gets no more service tickets (our
// client, MIT kvno), and
// enabling it again lets everything through.
func TestDisabledAccount(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{KeyAlgorithm: pki.RSA2048})
	m := requireMITClient(t, s)
	alice := s.AddUser("alice")
	if _, err := s.Store.AddPrincipal("admin", []byte("Secret-pw-1")); err != nil {
		t.Fatal(err)
	}
	admin := &kdc.Principal{Name: "admin", UPN: "admin@example.test"}
	s.Users.Put(admin)
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.RSA2048)
	c := s.Client(cert, key)
	id := m.identity(t, "alice", cert, key)
	ctx := context.Background()
	tgt, err := c.PKINIT(ctx, "alice", kdc.PKINITOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.NewFromString(fmt.Sprintf("[libdefaults]\n default_realm = %[1]s\n dns_lookup_kdc = false\n udp_preference_limit = 1\n"+
		" default_tkt_enctypes = aes256-cts-hmac-sha1-96\n default_tgs_enctypes = aes256-cts-hmac-sha1-96\n permitted_enctypes = aes256-cts-hmac-sha1-96\n"+
		"[realms]\n %[1]s = {\n  kdc = %[2]s\n }\n", kdctest.Realm, s.Addr))
	if err != nil {
		t.Fatal(err)
	}
	gokrb5Login := func() error {
		cl := client.NewWithPassword("admin", kdctest.Realm, "Secret-pw-1", cfg, client.DisablePAFXFAST(true))
		defer cl.Destroy()
		return cl.Login()
	}

	// MIT kinit's TGT from before the account is disabled.
	if r := m.kinitPKINIT(t, "before", id, "alice@"+kdctest.Realm); r.err != nil {
		t.Fatalf("kinit: %v: %s", r.err, r.out)
	}

	setDisabled := func(d bool) {
		alice.Disabled, admin.Disabled = d, d
		s.Users.Put(alice)
		s.Users.Put(admin)
	}
	setDisabled(true)
	t.Run("pkinit-dh", func(t *testing.T) {
		_, err := c.PKINIT(ctx, "alice", kdc.PKINITOptions{})
		wantCode(t, err, kdc.ErrClientRevoked)
	})
	t.Run("pkinit-rsa", func(t *testing.T) {
		_, err := c.PKINIT(ctx, "alice", kdc.PKINITOptions{PublicKeyMode: true})
		wantCode(t, err, kdc.ErrClientRevoked)
	})
	t.Run("pkinit-by-upn", func(t *testing.T) {
		_, err := c.PKINIT(ctx, "alice@example.test", kdc.PKINITOptions{Enterprise: true})
		wantCode(t, err, kdc.ErrClientRevoked)
	})
	t.Run("tgs-with-earlier-tgt", func(t *testing.T) {
		_, err := c.ServiceTicket(ctx, tgt, kdctest.Service)
		wantCode(t, err, kdc.ErrClientRevoked)
	})
	t.Run("mit-kvno-with-earlier-tgt", func(t *testing.T) {
		r := m.run(t, "before", m.kvno, kdctest.Service+"@"+kdctest.Realm)
		checkRefusal(t, s, r, kdc.ErrClientRevoked, "Client's credentials have been revoked")
	})
	t.Run("encrypted-timestamp-gokrb5", func(t *testing.T) {
		err := gokrb5Login()
		if err == nil || !strings.Contains(err.Error(), "KDC_ERR_CLIENT_REVOKED") {
			t.Fatalf("gokrb5 login of a disabled account: %v", err)
		}
	})
	t.Run("mit-kinit-pkinit", func(t *testing.T) {
		r := m.kinitPKINIT(t, "disabled-pkinit", id, "alice@"+kdctest.Realm)
		checkRefusal(t, s, r, kdc.ErrClientRevoked, "Client's credentials have been revoked")
	})
	t.Run("mit-kinit-rsa", func(t *testing.T) {
		r := m.kinitPKINIT(t, "disabled-rsa", id, "alice@"+kdctest.Realm, "-X", "flag_RSA_PROTOCOL=yes")
		checkRefusal(t, s, r, kdc.ErrClientRevoked, "Client's credentials have been revoked")
	})
	t.Run("mit-kinit-password", func(t *testing.T) {
		r := m.runStdin(t, "disabled-admin", "Secret-pw-1\n", m.kinit, "admin@"+kdctest.Realm)
		checkRefusal(t, s, r, kdc.ErrClientRevoked, "Client's credentials have been revoked")
	})

	setDisabled(false)
	if _, err := c.ServiceTicket(ctx, tgt, kdctest.Service); err != nil {
		t.Errorf("TGS after enabling the account again: %v", err)
	}
	if err := gokrb5Login(); err != nil {
		t.Errorf("password logon after enabling: %v", err)
	}
	if r := m.kinitPKINIT(t, "enabled", id, "alice@"+kdctest.Realm); r.err != nil {
		t.Errorf("kinit after enabling: %v: %s", r.err, r.out)
	}
	if r := m.run(t, "before", m.kvno, kdctest.Service+"@"+kdctest.Realm); r.err != nil {
		t.Errorf("kvno with the earlier TGT after enabling: %v: %s", r.err, r.out)
	}
	// A deleted account's TGT is refused too.
	s.Users.Delete("alice")
	_, err = c.ServiceTicket(ctx, tgt, kdctest.Service)
	wantCode(t, err, kdc.ErrCPrincipalUnknown)
}

// TestSealKeys: keys sealed for one account open only for that account,
// with the same KDC store; damaged blobs are refused.
func TestSealKeys(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{NoServe: true})
	other := kdctest.New(t, kdctest.Options{NoServe: true})
	keys, kvno, err := kdc.RotateKeys(nil)
	if err != nil || kvno != 1 || len(keys) != 3 {
		t.Fatalf("RotateKeys(nil): %d keys, kvno %d, %v", len(keys), kvno, err)
	}
	sealed, err := s.Store.SealKeys("svc-web", keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(string(sealed), string(k.Value)) {
			t.Fatal("a key is in the sealed blob in the clear")
		}
	}
	got, err := s.Store.OpenKeys("SVC-web", sealed)
	if err != nil || len(got) != 3 || string(got[0].Value) != string(keys[0].Value) {
		t.Fatalf("OpenKeys: %v", err)
	}
	// The store reopened from its file opens it too (the master key is kept).
	again, err := kdc.OpenStore(s.Dir+"/kdc", kdctest.Realm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.OpenKeys("svc-web", sealed); err != nil {
		t.Fatalf("OpenKeys after reopening the store: %v", err)
	}
	flipped := []byte(string(sealed))
	flipped[len(flipped)-1] ^= 1
	for name, try := range map[string]func() ([]kdc.Key, error){
		"other-account": func() ([]kdc.Key, error) { return s.Store.OpenKeys("svc-mail", sealed) },
		"other-kdc":     func() ([]kdc.Key, error) { return other.Store.OpenKeys("svc-web", sealed) },
		"flipped-bit":   func() ([]kdc.Key, error) { return s.Store.OpenKeys("svc-web", flipped) },
		"truncated":     func() ([]kdc.Key, error) { return s.Store.OpenKeys("svc-web", sealed[:20]) },
		"empty":         func() ([]kdc.Key, error) { return s.Store.OpenKeys("svc-web", nil) },
	} {
		if _, err := try(); !errors.Is(err, kdc.ErrSealedKeys) {
			t.Errorf("%s: %v, want ErrSealedKeys", name, err)
		}
	}
	next, kvno, err := kdc.RotateKeys(keys)
	if err != nil || kvno != 2 || len(next) != 6 {
		t.Fatalf("RotateKeys: %d keys, kvno %d, %v", len(next), kvno, err)
	}
	third, kvno, _ := kdc.RotateKeys(next)
	for _, k := range third {
		if k.KVNO == 1 || kvno != 3 {
			t.Fatalf("RotateKeys keeps kvno %d at kvno %d", k.KVNO, kvno)
		}
	}
}
