package smime_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/smime"
)

// innerText is what a reader sees after decoding: the body of sample,
// quoted-printable encoded by Sign/Encrypt.
func checkEntity(t *testing.T, what string, got []byte) {
	t.Helper()
	g := string(got)
	if !strings.Contains(g, "Content-Type: text/plain; charset=utf-8\r\n") ||
		!strings.Contains(g, "Content-Transfer-Encoding: quoted-printable\r\n") ||
		!strings.Contains(g, "42 =E2=82=AC and climbing.\r\n") {
		t.Fatalf("%s: unexpected entity:\n%q", what, g)
	}
	if strings.Contains(g, "Subject:") || strings.Contains(g, "From:") {
		t.Fatalf("%s: mail header fields inside the entity:\n%q", what, g)
	}
}

// TestOpenSSLVerifiesOurs: openssl cms -verify accepts detached and opaque
// signatures by RSA and EC keys.
func TestOpenSSLVerifiesOurs(t *testing.T) {
	w := newWorld(t)
	for _, alg := range []pki.KeyAlgorithm{pki.RSA2048, pki.P256, pki.P384} {
		alice := w.user(t, "alice", "smime-signing", alg)
		for _, opaque := range []bool{false, true} {
			name := string(alg)
			if opaque {
				name += "/opaque"
			}
			t.Run(name, func(t *testing.T) {
				signed, err := smime.Sign([]byte(sample), alice.Key, alice.Cert, nil, &smime.SignOptions{Opaque: opaque})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(signed, []byte("From: Alice <alice@example.test>\r\nTo: Bob")) {
					t.Fatalf("mail header fields not kept outside:\n%s", signed)
				}
				if !opaque && !bytes.Contains(signed, []byte("micalg=sha-256")) {
					t.Fatalf("no micalg=sha-256:\n%s", signed)
				}
				f := writeFile(t, t.TempDir(), "signed.eml", signed)
				out := openssl(t, nil, "cms", "-verify", "-in", f, "-CAfile", w.CAFile, "-purpose", "smimesign")
				checkEntity(t, "openssl -verify output", out)

				// And we verify our own, reporting every check.
				v, err := smime.Verify(signed, smime.VerifyOptions{Roots: w.Roots})
				if err != nil {
					t.Fatal(err)
				}
				if !v.SignatureValid || !v.ChainValid || !v.AddressMatches || v.RevocationChecked || v.Detached == opaque {
					t.Fatalf("verification %+v", v)
				}
				checkEntity(t, "verified content", v.Content)
				if !bytes.HasPrefix(v.Message, []byte("From: Alice")) {
					t.Fatalf("verified message lost its header fields: %q", v.Message)
				}
			})
		}
	}
}

// TestOpenSSLDecryptsOurs: openssl cms -decrypt reads enveloped-data
// (AES-CBC) and authEnveloped-data (AES-GCM) for RSA (PKCS#1 v1.5 and
// OAEP) and EC recipients, each of several recipients reading it.
func TestOpenSSLDecryptsOurs(t *testing.T) {
	w := newWorld(t)
	alice := w.user(t, "alice", "smime-encryption", pki.RSA2048)
	bob := w.user(t, "bob", "smime-encryption", pki.P256)
	carol := w.user(t, "carol", "smime-encryption", pki.P384)
	ciphers := map[string]smime.Cipher{"aes256cbc": smime.AES256CBC, "aes128cbc": smime.AES128CBC, "aes256gcm": smime.AES256GCM, "aes128gcm": smime.AES128GCM}
	for cname, c := range ciphers {
		for _, oaep := range []bool{false, true} {
			name := cname
			if oaep {
				name += "/oaep"
			}
			t.Run(name, func(t *testing.T) {
				enc, err := smime.Encrypt([]byte(sample), []*x509.Certificate{alice.Cert, bob.Cert, carol.Cert}, &smime.EncryptOptions{Cipher: c, OAEP: oaep})
				if err != nil {
					t.Fatal(err)
				}
				wantType := "smime-type=enveloped-data"
				if c == smime.AES256GCM || c == smime.AES128GCM {
					wantType = "smime-type=authEnveloped-data"
				}
				if !bytes.Contains(enc, []byte(wantType)) || !bytes.HasPrefix(enc, []byte("From: Alice")) {
					t.Fatalf("want %s with the mail header outside:\n%.400s", wantType, enc)
				}
				f := writeFile(t, t.TempDir(), "enc.eml", enc)
				for _, r := range []*identity{alice, bob, carol} {
					out := openssl(t, nil, "cms", "-decrypt", "-in", f, "-recip", r.CertFile, "-inkey", r.KeyFile)
					checkEntity(t, "openssl -decrypt as "+r.Addr, out)
					dec, err := smime.Decrypt(enc, r.Key, r.Cert)
					if err != nil {
						t.Fatalf("our decrypt as %s: %v", r.Addr, err)
					}
					checkEntity(t, "our decrypt", dec[bytes.Index(dec, []byte("Content-Type")):])
				}
			})
		}
	}
}

// TestOpenSSLReadsSignedAndEncrypted: sign-then-encrypt, read by openssl
// decrypt then verify.
func TestOpenSSLReadsSignedAndEncrypted(t *testing.T) {
	w := newWorld(t)
	alice := w.user(t, "alice", "smime-signing", pki.P256)
	aliceEnc := w.user(t, "alice", "smime-encryption", pki.P256)
	bob := w.user(t, "bob", "smime-encryption", pki.RSA2048)
	for _, c := range []smime.Cipher{smime.AES256CBC, smime.AES256GCM} {
		signed, err := smime.Sign([]byte(sample), alice.Key, alice.Cert, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := smime.Encrypt(signed, []*x509.Certificate{bob.Cert, aliceEnc.Cert}, &smime.EncryptOptions{Cipher: c})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		f := writeFile(t, dir, "enc.eml", enc)
		inner := openssl(t, nil, "cms", "-decrypt", "-in", f, "-recip", bob.CertFile, "-inkey", bob.KeyFile)
		g := writeFile(t, dir, "inner.eml", inner)
		out := openssl(t, nil, "cms", "-verify", "-in", g, "-CAfile", w.CAFile)
		checkEntity(t, "openssl decrypt+verify", out)

		// The sender reads their sent mail, and the signature checks.
		dec, err := smime.Decrypt(enc, aliceEnc.Key, aliceEnc.Cert)
		if err != nil {
			t.Fatal(err)
		}
		v, err := smime.Verify(dec, smime.VerifyOptions{Roots: w.Roots})
		if err != nil {
			t.Fatal(err)
		}
		if v.From != alice.Addr {
			t.Fatalf("From %q", v.From)
		}
	}
}

// TestWeReadOpenSSL: we verify and decrypt what openssl cms -sign and
// -encrypt make, OAEP included.
func TestWeReadOpenSSL(t *testing.T) {
	w := newWorld(t)
	rsaSigner := w.user(t, "alice", "smime-signing", pki.RSA2048)
	ecSigner := w.user(t, "alice", "smime-signing", pki.P256)
	rsaRcpt := w.user(t, "bob", "smime-encryption", pki.RSA2048)
	ecRcpt := w.user(t, "carol", "smime-encryption", pki.P256)
	dir := t.TempDir()
	content := "Content-Type: text/plain\r\n\r\nHello from openssl\r\n"
	in := writeFile(t, dir, "in.txt", []byte(content))

	// Binary mode keeps LF line ends inside the signature.
	lfFile := writeFile(t, dir, "lf.txt", []byte("Content-Type: text/plain\n\nunix lines\n"))
	lf := openssl(t, nil, "cms", "-sign", "-nodetach", "-binary", "-in", lfFile, "-signer", ecSigner.CertFile, "-inkey", ecSigner.KeyFile, "-md", "sha256", "-from", ecSigner.Addr)
	if v, err := smime.Verify(lf, smime.VerifyOptions{Roots: w.Roots}); err != nil || string(v.Content) != "Content-Type: text/plain\r\n\r\nunix lines\r\n" {
		t.Fatalf("binary LF content: %v", err)
	}

	for _, s := range []*identity{rsaSigner, ecSigner} {
		for _, mode := range [][]string{nil, {"-nodetach"}, {"-nodetach", "-stream"}, {"-stream"}} {
			args := append([]string{"cms", "-sign", "-in", in, "-signer", s.CertFile, "-inkey", s.KeyFile, "-md", "sha256", "-from", s.Addr, "-subject", "hi"}, mode...)
			signed := openssl(t, nil, args...)
			v, err := smime.Verify(signed, smime.VerifyOptions{Roots: w.Roots})
			if err != nil {
				t.Fatalf("%v: %v\n%s", mode, err, signed)
			}
			if string(v.Content) != content || !v.SignatureValid || !v.AddressMatches {
				t.Fatalf("%v: content %q, %+v", mode, v.Content, v)
			}
		}
	}

	type tc struct {
		name string
		rcpt *identity
		args []string
	}
	cases := []tc{
		{"rsa-aes256", rsaRcpt, []string{"-aes256"}},
		{"rsa-aes128", rsaRcpt, []string{"-aes128"}},
		{"rsa-gcm", rsaRcpt, []string{"-aes-256-gcm"}},
		{"rsa-gcm128", rsaRcpt, []string{"-aes-128-gcm"}},
		{"rsa-oaep-sha1", rsaRcpt, []string{"-aes256", "-keyopt", "rsa_padding_mode:oaep"}},
		{"rsa-oaep-sha256", rsaRcpt, []string{"-aes256", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha256"}},
		{"ec-aes256", ecRcpt, []string{"-aes256"}},
		{"ec-gcm", ecRcpt, []string{"-aes-256-gcm"}},
		{"ec-sha256kdf", ecRcpt, []string{"-aes256", "-keyopt", "ecdh_kdf_md:sha256"}},
		{"ec-stream", ecRcpt, []string{"-aes256", "-stream"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"cms", "-encrypt", "-in", in}, c.args[:1]...)
			args = append(args, "-recip", c.rcpt.CertFile)
			args = append(args, c.args[1:]...)
			enc := openssl(t, nil, args...)
			dec, err := smime.Decrypt(enc, c.rcpt.Key, c.rcpt.Cert)
			if err != nil {
				t.Fatalf("%v\n%s", err, enc)
			}
			if !strings.HasSuffix(string(dec), content) {
				t.Fatalf("decrypted %q", dec)
			}
			// Someone else's key: not for them.
			other := rsaSigner
			if _, err := smime.Decrypt(enc, other.Key, other.Cert); !errors.Is(err, smime.ErrNotForRecipient) {
				t.Fatalf("another recipient: %v", err)
			}
		})
	}
}

// TestCertsOnly: openssl reads a certs-only message and finds the
// certificates in it.
func TestCertsOnly(t *testing.T) {
	w := newWorld(t)
	alice := w.user(t, "alice", "smime-encryption", pki.RSA2048)
	bob := w.user(t, "bob", "smime-encryption", pki.P256)
	msg, err := smime.CertsOnly(alice.Cert, bob.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(msg, []byte("smime-type=certs-only")) {
		t.Fatalf("%s", msg)
	}
	f := writeFile(t, t.TempDir(), "certs.p7c", msg)
	p7 := openssl(t, nil, "smime", "-pk7out", "-in", f)
	out := string(openssl(t, p7, "pkcs7", "-print_certs", "-noout"))
	for _, want := range []string{alice.Cert.Subject.CommonName, bob.Cert.Subject.CommonName} {
		if !strings.Contains(out, want) {
			t.Fatalf("openssl lists\n%s\nwithout %s", out, want)
		}
	}
	if strings.Count(out, "subject=") != 2 {
		t.Fatalf("openssl lists\n%s", out)
	}
	if _, err := smime.CertsOnly(); err == nil {
		t.Fatal("empty certs-only made")
	}
}

// TestBinaryBody: an 8-bit non-text body is signed as base64, and the
// bytes openssl recovers are the original ones.
func TestBinaryBody(t *testing.T) {
	w := newWorld(t)
	alice := w.user(t, "alice", "smime-signing", pki.RSA2048)
	payload := []byte{0x00, 0xff, 0x0a, 0x0d, 0x80, 'P', 'K', 0x03, 0x04, 0x0a, 0x0a, 0x00}
	msg := append([]byte("From: alice@example.test\nContent-Type: application/octet-stream\n\n"), payload...)
	signed, err := smime.Sign(msg, alice.Key, alice.Cert, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := openssl(t, nil, "cms", "-verify", "-in", writeFile(t, t.TempDir(), "bin.eml", signed), "-CAfile", w.CAFile)
	if !bytes.Contains(out, []byte("Content-Transfer-Encoding: base64\r\n\r\n")) {
		t.Fatalf("not base64: %q", out)
	}
	body := out[bytes.Index(out, []byte("\r\n\r\n"))+4:]
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(body)))
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("body % x (%v), want % x", got, err, payload)
	}
}
