package pki_test

import (
	"crypto/sha1"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

func TestMatchAltSecurityIdentity(t *testing.T) {
	env := pkitest.New(t, pkitest.Options{})
	env.Users.Add("alice")
	issued, _ := env.Issue(t, "smartcard-logon", "alice", pki.P256)
	// Leaf certificates carry no subject key identifier; give this one
	// one, to match <SKI> against.
	c := *issued.Certificate
	c.SubjectKeyId = []byte{0xde, 0xad, 0xbe, 0xef}
	cert := &c
	serial := cert.SerialNumber.Bytes()
	rev := slices.Clone(serial)
	slices.Reverse(rev)
	sum := sha1.Sum(cert.Raw)
	// The issuer is O=EXAMPLE.TEST, CN=EXAMPLE.TEST Test CA.
	for _, tc := range []struct {
		id, want string
	}{
		{"X509:<I>O=EXAMPLE.TEST,CN=EXAMPLE.TEST Test CA<SR>" + hex.EncodeToString(rev), "issuer-serial"},
		{"x509:<i>cn=example.test test ca, o=example.test<sr>" + hex.EncodeToString(serial), "issuer-serial"},
		{"X509:<SKI>" + hex.EncodeToString(cert.SubjectKeyId), "ski"},
		{"X509:<SHA1-PUKEY>" + hex.EncodeToString(sum[:]), "sha1"},
		{"X509:<I>O=EXAMPLE.TEST,CN=Another CA<SR>" + hex.EncodeToString(rev), ""},
		{"X509:<I>O=EXAMPLE.TEST,CN=EXAMPLE.TEST Test CA<SR>01", ""},
		{"X509:<I>O=EXAMPLE.TEST,CN=EXAMPLE.TEST Test CA<S>CN=Alice", ""},
		{"X509:<S>DC=test,DC=example,CN=Alice", ""},
		{"X509:<RFC822>alice@example.test", ""},
		{"X509:<SKI>00", ""},
		{"X509:<SHA1-PUKEY>zz", ""},
		{"Kerberos:alice@EXAMPLE.TEST", ""},
		{"", ""},
	} {
		if got := pki.MatchAltSecurityIdentity(cert, []string{tc.id}); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.id, got, tc.want)
		}
	}
}
