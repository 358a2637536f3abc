package kdc_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
)

// TestClientAgainstMITKDC logs on with our PKINIT client to MIT krb5kdc
// (with a KDC certificate from our CA), in DH mode and public-key mode,
// gets a service ticket, decrypts it with the keytab MIT exported, and
// writes a ccache MIT klist reads. A certificate naming another user is
// refused with KDC_ERR_CLIENT_NAME_MISMATCH.
func TestClientAgainstMITKDC(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{KeyAlgorithm: pki.RSA2048, NoServe: true})
	requireMITClient(t, s) // skips without kinit, klist or the PKINIT plugin
	klist := testpeer.Path(t, "klist")
	s.AddUser("alice")
	k := s.StartMITKDC(t, kdctest.MITKDCConfig{EKUChecking: "scLogin", AllowUPN: true,
		PKINITUsers: []string{"alice", "bob"}, Services: []string{kdctest.Service}})
	ktData, err := os.ReadFile(k.Keytab(t, kdctest.Service))
	if err != nil {
		t.Fatal(err)
	}
	serviceKeys := keytabKeys(t, ktData)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		alg  pki.KeyAlgorithm
		opts kdc.PKINITOptions
	}{
		{"dh-p256", pki.P256, kdc.PKINITOptions{}},
		{"dh-rsa", pki.RSA2048, kdc.PKINITOptions{}},
		{"rsa-mode", pki.RSA2048, kdc.PKINITOptions{PublicKeyMode: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, key := s.Issue(t, "smartcard-logon", "alice", tc.alg)
			c := s.Client(cert, key)
			c.KDC = k.Addr
			tgt, err := c.PKINIT(ctx, "alice", tc.opts)
			if err != nil {
				t.Fatalf("PKINIT against MIT: %v", err)
			}
			st, err := c.ServiceTicket(ctx, tgt, kdctest.Service)
			if err != nil {
				t.Fatalf("TGS against MIT: %v", err)
			}
			part, err := kdc.DecryptTicket(st.Ticket, serviceKeys)
			if err != nil || part.CName.PrincipalNameString() != "alice" {
				t.Fatalf("service ticket: %v, client %v", err, part.CName)
			}
			cache := filepath.Join(k.Dir, "ours-"+tc.name)
			if err := kdc.WriteCCache(cache, tgt, st); err != nil {
				t.Fatal(err)
			}
			kl := exec.Command(klist, "-c", "FILE:"+cache)
			kl.Env = k.Env()
			out, err := kl.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "krbtgt/"+kdctest.Realm+"@"+kdctest.Realm) || !strings.Contains(string(out), kdctest.Service) {
				t.Fatalf("klist: %v\n%s", err, out)
			}
		})
	}
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	c := s.Client(cert, key)
	c.KDC = k.Addr
	_, err = c.PKINIT(ctx, "bob", kdc.PKINITOptions{})
	var re *kdc.RemoteError
	if !errors.As(err, &re) || re.Code != kdc.ErrClientNameMismatch {
		t.Errorf("alice's certificate for bob: %v, want KDC_ERR_CLIENT_NAME_MISMATCH", err)
	}
}

// keytabKeys reads every key of an MIT keytab.
func keytabKeys(t *testing.T, data []byte) []kdc.Key {
	t.Helper()
	var kt keytab.Keytab
	if err := kt.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	var keys []kdc.Key
	for _, e := range kt.Entries {
		keys = append(keys, kdc.Key{KVNO: int(e.KVNO), EType: e.Key.KeyType, Value: e.Key.KeyValue})
	}
	return keys
}
