package station

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
	"github.com/scstation/scstation/pki/smime"
)

func issueMail(t *testing.T, st *Station, template, user string, alg pki.KeyAlgorithm) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, csr := pkitest.NewCSR(t, alg)
	issued, err := st.Issue(context.Background(), nil, template, csr, user, "")
	if err != nil {
		t.Fatal(err)
	}
	return issued.Certificate, key
}

// TestMailTrust: recipients come from the directory and are checked;
// signers are verified against the station CA and its database.
func TestMailTrust(t *testing.T) {
	st, err := Init(t.TempDir(), InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, _ := st.Directory()
	for _, n := range []string{"alice", "bob", "carol"} {
		if _, err := d.AddUser(directory.User{Name: n, UPN: n + "@example.test", Mail: n + "@example.test"}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	aliceSig, aliceKey := issueMail(t, st, "smime-signing", "alice", pki.P256)
	aliceEnc, _ := issueMail(t, st, "smime-encryption", "alice", pki.RSA2048)
	bobOld, _ := issueMail(t, st, "smime-encryption", "bob", pki.P256)
	bobNew, _ := issueMail(t, st, "smime-encryption", "bob", pki.P256)
	issueMail(t, st, "smime-signing", "carol", pki.P256) // signing only

	mt, err := st.MailTrust()
	if err != nil {
		t.Fatal(err)
	}
	got, err := mt.Recipients(ctx, []string{"alice@example.test", "BOB@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Equal(aliceEnc) || !got[1].Equal(bobNew) {
		t.Fatalf("recipients %v", got)
	}

	// A revoked certificate is never used; with none left the error says why.
	if _, err := st.Revoke(bobNew.SerialNumber, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if c, err := mt.Recipient(ctx, "bob@example.test"); err != nil || !c.Equal(bobOld) {
		t.Fatalf("after revoking the newer: %v %v", c, err)
	}
	// Revoked for good, the newer one left the directory; on hold, the
	// older one stays there and is refused all the same.
	if certs, err := mt.Certificates(ctx, "bob@example.test"); err != nil || len(certs) != 1 || !certs[0].Equal(bobOld) {
		t.Fatalf("bob's certificates in the directory after the revocation: %v %v", certs, err)
	}
	st.Revoke(bobOld.SerialNumber, pki.ReasonCertificateHold)
	_, err = mt.Recipients(ctx, []string{"bob@example.test", "carol@example.test", "nobody@example.test"})
	var mce *MailCertError
	if !errors.As(err, &mce) {
		t.Fatalf("want MailCertError, got %v", err)
	}
	for _, want := range []string{"bob@example.test", "revoked at", "carol@example.test", "key usage does not allow mail encryption", "nobody@example.test: no user"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}

	// Verification: valid, then revoked.
	signed, err := smime.Sign([]byte("From: alice@example.test\r\nSubject: x\r\n\r\nhi\r\n"), aliceKey, aliceSig, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := smime.Verify(signed, mt.VerifyOptions(ctx))
	if err != nil || !v.NotRevoked || !v.RevocationChecked {
		t.Fatalf("verify: %v %+v", err, v)
	}
	st.Revoke(aliceSig.SerialNumber, pki.ReasonKeyCompromise)
	v, err = smime.Verify(signed, mt.VerifyOptions(ctx))
	var ve *smime.VerifyError
	if !errors.As(err, &ve) || v.NotRevoked || !v.SignatureValid || !v.ChainValid {
		t.Fatalf("revoked signer: %v %+v", err, v)
	}

	// A certificate from another CA fails the station's checks.
	other := pkitest.New(t, pkitest.Options{})
	other.Users.Add("alice")
	foreign, _ := other.Issue(t, "smime-encryption", "alice", pki.P256)
	if err := mt.Check(foreign.Certificate, MailEncryption); err == nil {
		t.Fatal("a foreign certificate passed")
	}
}

// TestMailTrustExternalDirectory: with a real slapd as the directory,
// recipients and signers are found there (userCertificate;binary on the
// entry whose mail matches).
func TestMailTrustExternalDirectory(t *testing.T) {
	st, _ := externalStation(t, erinLDIF+strings.ReplaceAll(erinLDIF, "erin", "frank"))
	templatesWithoutSID(t, st, "smime-signing", "smime-encryption")
	ctx := context.Background()
	frankEnc, frankKey := issueMail(t, st, "smime-encryption", "frank", pki.RSA2048)
	erinSig, erinKey := issueMail(t, st, "smime-signing", "erin", pki.P256)
	mt, err := st.MailTrust()
	if err != nil {
		t.Fatal(err)
	}
	got, err := mt.Recipients(ctx, []string{"frank@example.test"})
	if err != nil || len(got) != 1 || !got[0].Equal(frankEnc) {
		t.Fatalf("recipients from slapd: %v %v", got, err)
	}
	if _, err := mt.Recipient(ctx, "erin@example.test"); err == nil {
		t.Fatal("erin has no encryption certificate but got one")
	}

	// The signer lookup finds erin's certificates in slapd.
	found, err := mt.Certificates(ctx, "erin@example.test")
	if err != nil || len(found) != 1 || !found[0].Equal(erinSig) {
		t.Fatalf("erin's certificates from slapd: %v %v", found, err)
	}
	// Signed by erin, encrypted to frank, read and checked by frank.
	signed, err := smime.Sign([]byte("From: erin@example.test\r\n\r\nhi\r\n"), erinKey, erinSig, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := smime.Encrypt(signed, got, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := smime.Decrypt(enc, frankKey, frankEnc)
	if err != nil {
		t.Fatal(err)
	}
	v, err := smime.Verify(plain, mt.VerifyOptions(ctx))
	if err != nil || !v.NotRevoked || !v.Signer.Equal(erinSig) {
		t.Fatalf("verify: %v %+v", err, v)
	}
}
