package pki_test

import (
	"crypto/sha1"
	"crypto/x509/pkix"
	"encoding/asn1"
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

func TestNameString(t *testing.T) {
	// As encoded: most significant RDN first.
	dc := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	name := pkix.RDNSequence{
		{{Type: dc, Value: "test"}},
		{{Type: dc, Value: "example"}},
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: "People"}},
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "Alice"}},
	}
	raw, err := asn1.Marshal(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		raw  []byte
		want string
	}{
		{raw, "CN=Alice,OU=People,DC=example,DC=test"},
		{[]byte{0x30, 0x00}, ""},
		{[]byte("not DER"), ""},
		{append(slices.Clone(raw), 0), ""},
	} {
		if got := pki.NameString(tc.raw); got != tc.want {
			t.Errorf("NameString(%x) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
