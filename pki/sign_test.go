package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type noUsers struct{}

func (noUsers) LookupUser(context.Context, string) (*User, error) { return nil, ErrUnknownUser }

// TestSignAndRecordUnparsable checks what happens to a certificate that was
// signed and recorded but does not parse (a CA fault; here an extension
// crypto/x509 writes but cannot read): it is not handed out, and its record
// is revoked, not left valid.
func TestSignAndRecordUnparsable(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	root, err := CreateRoot(key, CAName{CommonName: "Test Root"}, 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	db, err := OpenDB(filepath.Join(t.TempDir(), "certs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ca, err := New(Config{Signer: key, Chain: []*x509.Certificate{root}, DB: db, Users: noUsers{}, Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	subjectKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := func(extra []pkix.Extension) *x509.Certificate {
		return &x509.Certificate{
			Subject:         pkix.Name{CommonName: "x"},
			NotBefore:       now.Add(-time.Minute).UTC().Truncate(time.Second),
			NotAfter:        now.Add(time.Hour).UTC().Truncate(time.Second),
			ExtraExtensions: extra,
		}
	}
	spki, err := x509.MarshalPKIXPublicKey(&subjectKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// A well-formed one first: recorded valid, returned parsed.
	rec, cert, err := ca.signAndRecord(tmpl(nil), &subjectKey.PublicKey, spki, &Record{User: "x"})
	if err != nil || cert == nil || rec.Status != StatusValid {
		t.Fatalf("signAndRecord = %v, %v, %v", rec, cert, err)
	}
	if got, err := db.Get(cert.SerialNumber); err != nil || got.Status != StatusValid || !got.NotAfter.Equal(cert.NotAfter) || !got.NotBefore.Equal(cert.NotBefore) {
		t.Fatalf("record %+v, %v", got, err)
	}

	badBasicConstraints := pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Value: []byte{0xff}}
	rec, cert, err = ca.signAndRecord(tmpl([]pkix.Extension{badBasicConstraints}), &subjectKey.PublicKey, spki, &Record{User: "x"})
	if err == nil || cert != nil || rec != nil {
		t.Fatalf("signAndRecord of an unparsable certificate = %v, %v, %v", rec, cert, err)
	}
	if !strings.Contains(err.Error(), "cannot parse") {
		t.Errorf("error %q", err)
	}
	revoked, err := db.List(Query{User: "x", Status: StatusRevoked})
	if err != nil || len(revoked) != 1 {
		t.Fatalf("revoked records %v, %v", revoked, err)
	}
	if _, err := x509.ParseCertificate(revoked[0].DER); err == nil {
		t.Error("the revoked record is the parsable certificate")
	}
}

func TestCheckCertificateFrame(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	root, err := CreateRoot(key, CAName{CommonName: "Test Root"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := checkCertificateFrame(root.Raw); err != nil {
		t.Fatalf("a real certificate: %v", err)
	}
	for name, der := range map[string][]byte{
		"empty":      nil,
		"truncated":  root.Raw[:len(root.Raw)-1],
		"trailing":   append(append([]byte{}, root.Raw...), 0),
		"TBS only":   root.RawTBSCertificate,
		"not a cert": {0x30, 0x03, 0x02, 0x01, 0x01},
	} {
		if err := checkCertificateFrame(der); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
