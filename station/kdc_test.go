package station

import (
	"context"
	"errors"
	"testing"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

// TestEmbeddedKDC logs a directory user on with a certificate from the
// station CA through the KDC built on the station's data, then revokes the
// certificate.
func TestEmbeddedKDC(t *testing.T) {
	st, err := Init(t.TempDir(), InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	users, err := st.Directory()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.AddUser(directory.User{Name: "alice", UPN: "alice@example.test"}); err != nil {
		t.Fatal(err)
	}
	key, csr := pkitest.NewCSR(t, pki.P256)
	issued, err := st.Issue(context.Background(), nil, "smartcard-logon", csr, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	k, stop := serveKDC(t, st, KDCOptions{TCP: "127.0.0.1:0", UDP: "127.0.0.1:0"})
	defer stop()
	ctx := context.Background()

	roots := caRoots(t, st)
	c := &kdc.Client{Realm: "EXAMPLE.TEST", KDC: k.TCPAddr().String(), Certificate: issued.Certificate, Key: key, Roots: roots}
	if _, err := c.PKINIT(ctx, "alice", kdc.PKINITOptions{}); err != nil {
		t.Fatalf("logon: %v", err)
	}
	if _, err := c.PKINIT(ctx, "alice@example.test", kdc.PKINITOptions{Enterprise: true}); err != nil {
		t.Fatalf("logon by UPN: %v", err)
	}
	if _, err := st.Revoke(issued.Certificate.SerialNumber, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	_, err = c.PKINIT(ctx, "alice", kdc.PKINITOptions{})
	var re *kdc.RemoteError
	if !errors.As(err, &re) || re.Code != kdc.ErrRevokedCertificate {
		t.Fatalf("logon with a revoked certificate: %v", err)
	}
	// The KDC identity is kept and reused.
	before, _, err := st.KDCIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := st.KDCIdentity(nil)
	if err != nil || !before[0].Equal(again[0]) {
		t.Fatalf("KDC identity not reused: %v", err)
	}
	if _, err := (DirectoryPrincipals{Dir: users}).LookupUser(ctx, "uid=alice,ou=people,dc=example,dc=test"); !errors.Is(err, kdc.ErrUnknownPrincipal) {
		t.Fatalf("a DN was looked up as a Kerberos name: %v", err)
	}
}
