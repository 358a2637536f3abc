package pki_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testpeer.Path(t, "openssl"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func hasOID(list []asn1.ObjectIdentifier, oid asn1.ObjectIdentifier) bool {
	return slices.ContainsFunc(list, oid.Equal)
}

// TestProfiles issues every built-in template from RSA and EC CAs and checks
// the profile with Go and with openssl.
func TestProfiles(t *testing.T) {
	for _, caAlg := range []pki.KeyAlgorithm{pki.P256, pki.RSA2048, pki.P384} {
		env := pkitest.New(t, pkitest.Options{KeyAlgorithm: caAlg})
		alice := env.Users.Add("alice")
		for _, tc := range []struct {
			template  string
			subject   string
			eku       []x509.ExtKeyUsage
			ekuOID    []asn1.ObjectIdentifier
			upn       string
			principal string
			email     string
			dns       string
			sid       bool
			textWants []string
		}{
			{template: "smartcard-logon", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
				ekuOID: []asn1.ObjectIdentifier{pki.OIDSmartCardLogon, pki.OIDPKINITClientAuth},
				upn:    alice.UPN, principal: "alice@EXAMPLE.TEST", sid: true,
				textWants: []string{"UPN::alice@example.test", "Microsoft Smartcard Login", "TLS Web Client Authentication", "PKINIT Client Auth", "URI:http://127.0.0.1:1080/ca.crl", "CA Issuers - URI:http://127.0.0.1:1080/ca.crt"}},
			{template: "smartcard-user", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection},
				ekuOID: []asn1.ObjectIdentifier{pki.OIDSmartCardLogon, pki.OIDPKINITClientAuth},
				upn:    alice.UPN, principal: "alice@EXAMPLE.TEST", email: alice.Mail, sid: true,
				textWants: []string{"UPN::alice@example.test", "email:alice@example.test", "E-mail Protection"}},
			{template: "smime-signing", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, email: alice.Mail, sid: true,
				textWants: []string{"Digital Signature, Non Repudiation", "email:alice@example.test"}},
			{template: "smime-encryption", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, email: alice.Mail, sid: true},
			{template: "enrollment-agent", ekuOID: []asn1.ObjectIdentifier{pki.OIDCertificateRequestAgent}, upn: alice.UPN, sid: true,
				textWants: []string{"1.3.6.1.4.1.311.20.2.1", "UPN::alice@example.test"}},
			{template: "server", subject: "Subject: CN = ldap.example.test", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
				dns: "ldap.example.test", textWants: []string{"DNS:ldap.example.test", "TLS Web Server Authentication"}},
			{template: "kdc", subject: "Subject: CN = kdc.example.test", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
				ekuOID: []asn1.ObjectIdentifier{pki.OIDPKINITKDC}, principal: "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST", dns: "kdc.example.test",
				textWants: []string{"DNS:kdc.example.test", "Signing KDC Response"}},
		} {
			t.Run(string(caAlg)+"/"+tc.template, func(t *testing.T) {
				user := "alice"
				switch tc.template {
				case "kdc":
					user = "kdc.example.test"
				case "server":
					user = "ldap.example.test"
				}
				issued, _ := env.Issue(t, tc.template, user, pki.P256)
				c := issued.Certificate
				wantSubject := tc.subject
				if wantSubject == "" {
					wantSubject = "Subject: DC = test, DC = example, CN = Alice"
				}
				if c.Subject.CommonName == "Mallory" || len(c.Subject.Organization) > 0 {
					t.Errorf("subject %q came from the request", c.Subject)
				}
				if slices.Contains(c.EmailAddresses, "mallory@evil.test") {
					t.Error("a SAN from the request reached the certificate")
				}
				for _, e := range tc.eku {
					if !slices.Contains(c.ExtKeyUsage, e) {
						t.Errorf("EKU %v missing from %v", e, c.ExtKeyUsage)
					}
				}
				for _, o := range tc.ekuOID {
					if !hasOID(c.UnknownExtKeyUsage, o) {
						t.Errorf("EKU %v missing from %v", o, c.UnknownExtKeyUsage)
					}
				}
				san, ok, err := pki.SubjectAltNamesOf(c)
				if !ok || err != nil {
					t.Fatalf("SAN: ok=%v err=%v", ok, err)
				}
				if san.UPN != tc.upn {
					t.Errorf("UPN %q, want %q", san.UPN, tc.upn)
				}
				var principals []string
				for _, p := range san.Principals {
					principals = append(principals, p.String())
				}
				if tc.principal != "" && !slices.Equal(principals, []string{tc.principal}) || tc.principal == "" && len(principals) > 0 {
					t.Errorf("principals %v, want %q", principals, tc.principal)
				}
				if tc.email != "" && !slices.Equal(san.Emails, []string{tc.email}) {
					t.Errorf("emails %v, want %q", san.Emails, tc.email)
				}
				if tc.dns != "" && !slices.Equal(c.DNSNames, []string{tc.dns}) {
					t.Errorf("DNS names %v, want %q", c.DNSNames, tc.dns)
				}
				sid, hasSID, err := pki.SIDOf(c)
				if err != nil || hasSID != tc.sid || tc.sid && sid != alice.SID {
					t.Errorf("SID %q (present %v, err %v), want %v %q", sid, hasSID, err, tc.sid, alice.SID)
				}
				if c.SerialNumber.BitLen() < 64 {
					t.Errorf("serial %x has fewer than 64 bits", c.SerialNumber)
				}
				rec, err := env.DB.Get(c.SerialNumber)
				if err != nil || !bytes.Equal(rec.DER, c.Raw) || rec.Template != tc.template {
					t.Fatalf("record: %+v, %v", rec, err)
				}
				if rec.Subject != c.Subject.String() {
					t.Errorf("recorded subject %q, the certificate's is %q", rec.Subject, c.Subject.String())
				}
				// The real peer: openssl builds and checks the chain, and
				// reads the profile.
				dir := t.TempDir()
				root := pkitest.WritePEM(t, dir, "root.pem", env.CA.Root())
				leaf := pkitest.WritePEM(t, dir, "leaf.pem", c)
				if out := openssl(t, "verify", "-CAfile", root, leaf); !strings.Contains(out, ": OK") {
					t.Errorf("openssl verify: %s", out)
				}
				text := openssl(t, "x509", "-in", leaf, "-noout", "-text")
				for _, w := range append(tc.textWants, wantSubject) {
					if !strings.Contains(text, w) {
						t.Errorf("openssl x509 -text lacks %q:\n%s", w, text)
					}
				}
			})
		}
	}
}

// TestSubjectKeyID checks that issued end-entity certificates carry an RFC
// 5280 method-1 subject key identifier (SHA-1 of the subjectPublicKey BIT
// STRING), for RSA and EC subject keys, and that openssl reads it.
func TestSubjectKeyID(t *testing.T) {
	env := pkitest.New(t, pkitest.Options{})
	env.Users.Add("alice")
	for _, alg := range []pki.KeyAlgorithm{pki.RSA2048, pki.P256, pki.P384} {
		t.Run(string(alg), func(t *testing.T) {
			issued, _ := env.Issue(t, "smime-signing", "alice", alg)
			c := issued.Certificate
			var spki struct {
				Algorithm asn1.RawValue
				Key       asn1.BitString
			}
			if rest, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil || len(rest) > 0 {
				t.Fatalf("SubjectPublicKeyInfo: %v", err)
			}
			want := sha1.Sum(spki.Key.Bytes)
			if !bytes.Equal(c.SubjectKeyId, want[:]) {
				t.Fatalf("SubjectKeyId %x, want %x", c.SubjectKeyId, want)
			}
			if m := pki.MatchAltSecurityIdentity(c, []string{"X509:<SKI>" + hex.EncodeToString(want[:])}); m != "ski" {
				t.Errorf("an X509:<SKI> mapping does not name the certificate (%q)", m)
			}
			leaf := pkitest.WritePEM(t, t.TempDir(), "leaf.pem", c)
			text := openssl(t, "x509", "-in", leaf, "-noout", "-text")
			hexWant := strings.ToUpper(hex.EncodeToString(want[:]))
			var colons []string
			for i := 0; i < len(hexWant); i += 2 {
				colons = append(colons, hexWant[i:i+2])
			}
			_, after, ok := strings.Cut(text, "X509v3 Subject Key Identifier:")
			if !ok || !strings.HasPrefix(strings.TrimSpace(after), strings.Join(colons, ":")) {
				t.Errorf("openssl x509 -text does not show Subject Key Identifier %s:\n%s", strings.Join(colons, ":"), text)
			}
		})
	}
}

func TestKeyUsageFollowsKeyType(t *testing.T) {
	env := pkitest.New(t, pkitest.Options{})
	env.Users.Add("alice")
	rsaCert, _ := env.Issue(t, "smime-encryption", "alice", pki.RSA2048)
	ecCert, _ := env.Issue(t, "smime-encryption", "alice", pki.P256)
	if ku := rsaCert.Certificate.KeyUsage; ku != x509.KeyUsageKeyEncipherment {
		t.Errorf("RSA encryption key usage %b, want keyEncipherment only", ku)
	}
	if ku := ecCert.Certificate.KeyUsage; ku != x509.KeyUsageKeyAgreement {
		t.Errorf("EC encryption key usage %b, want keyAgreement only", ku)
	}
}

func countRecords(t *testing.T, db *pki.DB) int {
	t.Helper()
	recs, err := db.List(pki.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func TestEnrollOnBehalfOf(t *testing.T) {
	env := pkitest.New(t, pkitest.Options{})
	env.Users.Add("bob")
	agentCert, agentKey := env.Agent(t, "officer")
	_, csr := pkitest.NewCSR(t, pki.P256)
	for _, target := range []string{`EXAMPLE\bob`, "bob", `example.test\bob`} {
		cms, err := pki.EnrollOnBehalfOf(csr, agentCert, agentKey, target)
		if err != nil {
			t.Fatal(err)
		}
		req, err := pki.ParseRequest(cms)
		if err != nil {
			t.Fatal(err)
		}
		if req.Agent == nil || req.OnBehalfOf != target {
			t.Fatalf("parsed %+v", req)
		}
		issued, err := env.CA.Issue(context.Background(), pki.IssueRequest{Template: "smartcard-logon", Request: req})
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if issued.Record.User != "bob" || issued.Record.Agent != "officer" {
			t.Errorf("record user %q agent %q", issued.Record.User, issued.Record.Agent)
		}
		if issued.Certificate.Subject.CommonName != "Bob" {
			t.Errorf("subject %s", issued.Certificate.Subject)
		}
	}
}

// TestRefusals: every bad request is refused with a clear error and
// nothing is written.
func TestRefusals(t *testing.T) {
	env := pkitest.New(t, pkitest.Options{})
	env.Users.Add("bob")
	agentCert, agentKey := env.Agent(t, "officer")
	otherCA := pkitest.New(t, pkitest.Options{})
	foreignAgent, foreignKey := otherCA.Agent(t, "officer")
	userCert, userKey := env.Issue(t, "smartcard-logon", "bob", pki.P256)
	revokedAgent, revokedKey := env.Agent(t, "revoked")
	if _, err := env.CA.Revoke(revokedAgent.SerialNumber, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	_, csr := pkitest.NewCSR(t, pki.P256)
	_, rsaCSR := pkitest.NewCSR(t, pki.RSA2048)
	tampered := bytes.Clone(csr)
	tampered[len(tampered)-5] ^= 1
	sign := func(cert *x509.Certificate, key pkiSigner, target string) []byte {
		cms, err := pki.EnrollOnBehalfOf(csr, cert, key, target)
		if err != nil {
			t.Fatal(err)
		}
		return cms
	}
	goodCMS := sign(agentCert, agentKey, `EXAMPLE\bob`)
	tamperedCMS := bytes.Clone(goodCMS)
	if i := bytes.Index(tamperedCMS, csr[20:40]); i >= 0 {
		tamperedCMS[i] ^= 1
	} else {
		t.Fatal("CSR not found in CMS")
	}
	for _, tc := range []struct {
		name     string
		template string
		request  []byte
		user     string
		want     string // in the error message
		parse    bool   // refused by ParseRequest already
	}{
		{name: "unknown template", template: "nope", request: csr, user: "bob", want: "unknown template"},
		{name: "unknown user", template: "smartcard-logon", request: csr, user: "nobody", want: "no such user"},
		{name: "no user", template: "smartcard-logon", request: csr, want: "needs a user"},
		{name: "bad CSR signature", template: "smartcard-logon", request: tampered, user: "bob", want: "bad request", parse: true},
		{name: "garbage", template: "smartcard-logon", request: []byte("hello"), user: "bob", want: "bad request", parse: true},
		{name: "tampered CMS content", template: "smartcard-logon", request: tamperedCMS, want: "bad request", parse: true},
		{name: "agent for agent template", template: "enrollment-agent", request: goodCMS, want: "may not be requested by an enrollment agent"},
		{name: "user cert as agent", template: "smartcard-logon", request: sign(userCert.Certificate, userKey, "bob"), want: "not an enrollment agent certificate"},
		{name: "foreign agent", template: "smartcard-logon", request: sign(foreignAgent, foreignKey, "bob"), want: "not trusted"},
		{name: "revoked agent", template: "smartcard-logon", request: sign(revokedAgent, revokedKey, "bob"), want: "revoked"},
		{name: "other domain", template: "smartcard-logon", request: sign(agentCert, agentKey, `OTHER\bob`), want: "domain"},
		{name: "agent named another user", template: "smartcard-logon", request: goodCMS, user: "alice", want: "not \"alice\""},
		{name: "unknown target", template: "smartcard-logon", request: sign(agentCert, agentKey, "ghost"), want: "no such user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := countRecords(t, env.DB)
			req, err := pki.ParseRequest(tc.request)
			if tc.parse {
				var re *pki.RequestError
				if !errors.As(err, &re) {
					t.Fatalf("ParseRequest: %v, want a RequestError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = env.CA.Issue(context.Background(), pki.IssueRequest{Template: tc.template, Request: req, Requester: pki.RequesterOperator, User: tc.user})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if after := countRecords(t, env.DB); after != before {
				t.Errorf("%d records before, %d after a refusal", before, after)
			}
		})
	}
	_ = rsaCSR
}

type pkiSigner = interface {
	Public() crypto.PublicKey
	Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error)
}

func TestTemplateRules(t *testing.T) {
	templates, err := pki.LoadTemplates(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	templates["smartcard-logon"].KeyAlgorithms = []pki.KeyAlgorithm{pki.P256}
	templates["smartcard-logon"].Agents = []string{"officer"}
	env := pkitest.New(t, pkitest.Options{Templates: templates})
	env.Users.Add("bob")
	_, rsaCSR := pkitest.NewCSR(t, pki.RSA2048)
	req, _ := pki.ParseRequest(rsaCSR)
	if _, err := env.CA.Issue(context.Background(), pki.IssueRequest{Template: "smartcard-logon", Request: req, Requester: pki.RequesterOperator, User: "bob"}); err == nil || !strings.Contains(err.Error(), "does not allow rsa2048") {
		t.Errorf("RSA key on a P-256-only template: %v", err)
	}
	other, otherKey := env.Agent(t, "temp")
	_, csr := pkitest.NewCSR(t, pki.P256)
	cms, err := pki.EnrollOnBehalfOf(csr, other, otherKey, "bob")
	if err != nil {
		t.Fatal(err)
	}
	req, _ = pki.ParseRequest(cms)
	if _, err := env.CA.Issue(context.Background(), pki.IssueRequest{Template: "smartcard-logon", Request: req}); err == nil || !strings.Contains(err.Error(), "may not use template") {
		t.Errorf("agent not in the template's list: %v", err)
	}
	officer, officerKey := env.Agent(t, "officer")
	cms, _ = pki.EnrollOnBehalfOf(csr, officer, officerKey, "bob")
	req, _ = pki.ParseRequest(cms)
	if _, err := env.CA.Issue(context.Background(), pki.IssueRequest{Template: "smartcard-logon", Request: req}); err != nil {
		t.Errorf("listed agent: %v", err)
	}
	// A self requester is refused where the template does not allow it.
	req, _ = pki.ParseRequest(csr)
	if _, err := env.CA.Issue(context.Background(), pki.IssueRequest{Template: "smartcard-logon", Request: req, Requester: pki.RequesterSelf, User: "bob"}); err == nil {
		t.Error("self request on an agent/operator template was accepted")
	}
}

func TestRevocationAndCRL(t *testing.T) {
	env := pkitest.New(t, pkitest.Options{})
	env.Users.Add("alice")
	a, _ := env.Issue(t, "smartcard-logon", "alice", pki.P256)
	b, _ := env.Issue(t, "smartcard-logon", "alice", pki.P256)
	c, _ := env.Issue(t, "smartcard-logon", "alice", pki.P256)
	if _, err := env.CA.Revoke(a.Certificate.SerialNumber, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if _, err := env.CA.Revoke(b.Certificate.SerialNumber, pki.ReasonCertificateHold); err != nil {
		t.Fatal(err)
	}
	if _, err := env.CA.Revoke(a.Certificate.SerialNumber, pki.ReasonSuperseded); !errors.Is(err, pki.ErrAlreadyRevoked) {
		t.Errorf("revoking twice: %v", err)
	}
	crl1, err := env.CA.CRL()
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, e := range crl1.RevokedCertificateEntries {
		reasons[e.SerialNumber.Text(16)] = e.ReasonCode
	}
	if len(reasons) != 2 || reasons[a.Certificate.SerialNumber.Text(16)] != int(pki.ReasonKeyCompromise) || reasons[b.Certificate.SerialNumber.Text(16)] != int(pki.ReasonCertificateHold) {
		t.Errorf("CRL entries %v", reasons)
	}
	if _, ok := reasons[c.Certificate.SerialNumber.Text(16)]; ok {
		t.Error("a valid certificate is on the CRL")
	}
	if _, err := env.CA.Release(b.Certificate.SerialNumber); err != nil {
		t.Fatal(err)
	}
	crl2, err := env.CA.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if crl2.Number.Cmp(new(big.Int).Add(crl1.Number, big.NewInt(1))) != 0 {
		t.Errorf("CRL numbers %v then %v", crl1.Number, crl2.Number)
	}
	if len(crl2.RevokedCertificateEntries) != 1 {
		t.Errorf("after release: %d entries", len(crl2.RevokedCertificateEntries))
	}
	// The real peer checks the CRL signature and sees the revocation.
	dir := t.TempDir()
	root := pkitest.WritePEM(t, dir, "root.pem", env.CA.Root())
	crlFile := pkitest.WritePEM(t, dir, "crl.pem", crl2)
	if out := openssl(t, "crl", "-in", crlFile, "-CAfile", root, "-noout", "-verify"); !strings.Contains(out, "verify OK") {
		t.Errorf("openssl crl -verify: %s", out)
	}
	leafA := pkitest.WritePEM(t, dir, "a.pem", a.Certificate)
	leafC := pkitest.WritePEM(t, dir, "c.pem", c.Certificate)
	cmd := exec.Command(testpeer.Path(t, "openssl"), "verify", "-crl_check", "-CAfile", root, "-CRLfile", crlFile, leafA)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "certificate revoked") {
		t.Errorf("openssl verify -crl_check of a revoked certificate: %v %s", err, out)
	}
	if out := openssl(t, "verify", "-crl_check", "-CAfile", root, "-CRLfile", crlFile, leafC); !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify -crl_check of a valid certificate: %s", out)
	}
}
