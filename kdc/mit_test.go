package kdc_test

import (
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

// mitClient runs MIT Kerberos client programs (kinit, klist, kvno) against
// a test realm, each case in its own credential cache.
type mitClient struct {
	kinit, klist, kvno string
	dir                string
	env                []string
	stdin              string
}

// requireMITClient finds kinit, klist, kvno and the PKINIT plugin,
// skipping the test (failing it under CI=true) when one is missing.
func requireMITClient(t *testing.T, s *kdctest.Server, libdefaults ...string) *mitClient {
	t.Helper()
	p := testpeer.Require(t, "kinit", "klist", "kvno")
	kdctest.RequireMITPKINIT(t)
	dir := t.TempDir()
	conf := s.WriteKrb5Conf(t, dir, libdefaults...)
	return &mitClient{kinit: p[0], klist: p[1], kvno: p[2], dir: dir,
		env: append(os.Environ(), "KRB5_CONFIG="+conf, "KRB5RCACHEDIR="+dir, "KRB5_KDC_PROFILE=/dev/null")}
}

// identity writes a certificate and key for kinit's FILE: identity.
func (m *mitClient) identity(t *testing.T, name string, cert *x509.Certificate, key crypto.Signer) string {
	t.Helper()
	c := pkitest.WritePEM(t, m.dir, name+".pem", cert)
	k := pkitest.WritePEM(t, m.dir, name+".key", key)
	return "FILE:" + c + "," + k
}

type mitResult struct {
	err   error
	out   string
	trace string
	cache string
}

// run runs an MIT program with a case's ccache and trace file.
func (m *mitClient) run(t *testing.T, name, prog string, args ...string) mitResult {
	t.Helper()
	name = strings.NewReplacer("/", "-", " ", "-").Replace(name)
	cache := filepath.Join(m.dir, "ccache-"+name)
	trace := filepath.Join(m.dir, "trace-"+name)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(m.env[:len(m.env):len(m.env)], "KRB5CCNAME=FILE:"+cache, "KRB5_TRACE="+trace)
	if m.stdin != "" {
		cmd.Stdin = strings.NewReader(m.stdin)
	}
	out, err := cmd.CombinedOutput()
	tr, _ := os.ReadFile(trace)
	os.Remove(trace)
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out: %w", prog, err)
	}
	return mitResult{err: err, out: strings.TrimSpace(string(out)), trace: string(tr), cache: cache}
}

// runStdin is run with standard input.
func (m *mitClient) runStdin(t *testing.T, name, stdin, prog string, args ...string) mitResult {
	t.Helper()
	m.stdin = stdin
	defer func() { m.stdin = "" }()
	return m.run(t, name, prog, args...)
}

// kinitPKINIT runs kinit with a FILE: identity.
func (m *mitClient) kinitPKINIT(t *testing.T, name, identity, principal string, extra ...string) mitResult {
	t.Helper()
	args := append([]string{"-X", "X509_user_identity=" + identity}, extra...)
	return m.run(t, name, m.kinit, append(args, principal)...)
}

// TestMITKinit runs MIT kinit, klist and kvno against our KDC with
// certificates from the test CA, and checks each refusal's error.
func TestMITKinit(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{})
	m := requireMITClient(t, s)
	s.AddUser("alice")
	s.AddUser("bob")
	keytab := filepath.Join(m.dir, "host.keytab")
	kt, err := s.Store.Keytab(kdctest.Service)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keytab, kt, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, alg := range []pki.KeyAlgorithm{pki.P256, pki.RSA2048} {
		name := "pkinit-san-" + string(alg)
		t.Run(name, func(t *testing.T) {
			cert, key := s.Issue(t, "smartcard-logon", "alice", alg)
			r := m.kinitPKINIT(t, name, m.identity(t, name, cert, key), "alice@"+kdctest.Realm)
			if r.err != nil {
				t.Fatalf("kinit: %v: %s\n%s", r.err, r.out, r.trace)
			}
			if !strings.Contains(r.trace, "PKINIT client used KDF") {
				t.Errorf("kinit did not use an RFC 8636 KDF:\n%s", r.trace)
			}
			kl := m.run(t, name, m.klist)
			if kl.err != nil || !strings.Contains(kl.out, "krbtgt/"+kdctest.Realm+"@"+kdctest.Realm) {
				t.Fatalf("klist: %v\n%s", kl.err, kl.out)
			}
			// kvno -k decrypts the service ticket with the keytab we export.
			kv := m.run(t, name, m.kvno, "-k", keytab, kdctest.Service+"@"+kdctest.Realm)
			if kv.err != nil || !strings.Contains(kv.out, "kvno = 1") || !strings.Contains(kv.out, "keytab entry valid") {
				t.Fatalf("kvno: %v\n%s\n%s", kv.err, kv.out, kv.trace)
			}
		})
	}
}

// TestMITKinitPublicKeyMode runs kinit in public-key encryption mode
// (-X flag_RSA_PROTOCOL=yes): the reply key comes in a ReplyKeyPack
// signed by the KDC and encrypted to the user's RSA certificate.
func TestMITKinitPublicKeyMode(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{KeyAlgorithm: pki.RSA2048})
	m := requireMITClient(t, s)
	s.AddUser("alice")
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.RSA2048)
	r := m.kinitPKINIT(t, "rsa-mode", m.identity(t, "rsa-mode", cert, key), "alice@"+kdctest.Realm, "-X", "flag_RSA_PROTOCOL=yes")
	if r.err != nil {
		t.Fatalf("kinit: %v: %s\n%s", r.err, r.out, r.trace)
	}
	if !strings.Contains(r.trace, "PKINIT client verified RSA reply") || !strings.Contains(r.trace, "retrieved reply key") {
		t.Errorf("kinit did not use public-key mode:\n%s", r.trace)
	}
	kv := m.run(t, "rsa-mode", m.kvno, kdctest.Service+"@"+kdctest.Realm)
	if kv.err != nil {
		t.Fatalf("kvno: %v: %s", kv.err, kv.out)
	}
	if !strings.Contains(s.Log.String(), "pkinit-rsa") {
		t.Errorf("the KDC did not log a public-key mode logon")
	}
}

// TestMITKinitAESSHA2 asks for aes256-cts-hmac-sha384-192 only: the reply
// key (from the RFC 8636 KDF) and the session keys are of that enctype.
func TestMITKinitAESSHA2(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{})
	m := requireMITClient(t, s, "default_tkt_enctypes = aes256-sha2", "default_tgs_enctypes = aes256-sha2")
	s.AddUser("alice")
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	r := m.kinitPKINIT(t, "sha2", m.identity(t, "sha2", cert, key), "alice@"+kdctest.Realm)
	if r.err != nil {
		t.Fatalf("kinit: %v: %s\n%s", r.err, r.out, r.trace)
	}
	if !strings.Contains(r.trace, "to compute reply key aes256-sha2") {
		t.Errorf("reply key is not aes256-sha2:\n%s", r.trace)
	}
	kv := m.run(t, "sha2", m.kvno, kdctest.Service+"@"+kdctest.Realm)
	if kv.err != nil {
		t.Fatalf("kvno: %v: %s", kv.err, kv.out)
	}
	kl := m.run(t, "sha2", m.klist, "-e")
	if kl.err != nil || strings.Count(kl.out, "aes256-cts-hmac-sha384-192") < 2 {
		t.Fatalf("klist -e: %v\n%s", kl.err, kl.out)
	}
}

// TestMITKinitWindowsForm logs on with the certificate form AD CS issues:
// only a UPN SAN (alice@example.test, the directory's userPrincipalName)
// and the smart card logon EKU. MIT's own KDC cannot map it to
// alice@EXAMPLE.TEST; ours does through the directory, as Windows does.
func TestMITKinitWindowsForm(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{})
	m := requireMITClient(t, s)
	s.AddUser("alice")
	cert, key := s.Issue(t, kdctest.WindowsLogon, "alice", pki.P256)
	id := m.identity(t, "alice-upn", cert, key)
	for _, c := range []struct {
		name      string
		principal string
		extra     []string
	}{
		{"principal", "alice@" + kdctest.Realm, nil},
		{"principal-other-case", "Alice@" + kdctest.Realm, nil},
		{"enterprise-upn", "alice@example.test", []string{"-E"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := m.kinitPKINIT(t, "win-"+c.name, id, c.principal, c.extra...)
			if r.err != nil {
				t.Fatalf("kinit %s: %v: %s\n%s", c.principal, r.err, r.out, r.trace)
			}
			kl := m.run(t, "win-"+c.name, m.klist)
			if kl.err != nil || !strings.Contains(kl.out, "krbtgt/"+kdctest.Realm+"@"+kdctest.Realm) {
				t.Fatalf("klist: %v\n%s", kl.err, kl.out)
			}
			t.Logf("klist:\n%s", kl.out)
		})
	}
	if !strings.Contains(s.Log.String(), "weak certificate mapping accepted") {
		t.Errorf("the KDC did not log the weak (UPN-only) mapping")
	}
}

// TestMITKinitRefusals checks that our KDC refuses bad certificates and
// requests with the RFC 4556 error MIT kinit reports.
func TestMITKinitRefusals(t *testing.T) {
	t.Parallel()
	foreign := pkitest.New(t, pkitest.Options{})
	s := kdctest.New(t, kdctest.Options{})
	m := requireMITClient(t, s)
	alice := s.AddUser("alice")
	s.AddUser("bob")
	carol := s.AddUser("carol")
	foreign.Users.Put(&pki.User{Name: "alice", UPN: alice.UPN, SID: alice.SID, Mail: alice.UPN})

	id := func(name string, cert *x509.Certificate, key crypto.Signer) string {
		return m.identity(t, name, cert, key)
	}
	bobCert, bobKey := s.Issue(t, "smartcard-logon", "bob", pki.P256)
	carolCert, carolKey := s.Issue(t, "smartcard-logon", "carol", pki.P256)
	// carol's objectSid changes after her certificate was issued (the
	// account was re-created): the certificate's SID names another account.
	carol.SID = "S-1-5-21-1004336348-1177238915-682003330-9999"
	s.Users.Put(carol)
	revCert, revKey := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	if _, err := s.CA.CA.Revoke(revCert.SerialNumber, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	ekuCert, ekuKey := s.Issue(t, kdctest.NoLogonEKU, "alice", pki.P256)
	forIssued, forKey := foreign.Issue(t, "smartcard-logon", "alice", pki.P256)
	foreignRoot := pkitest.WritePEM(t, m.dir, "foreign-root.pem", foreign.CA.Root())

	for _, c := range []struct {
		name     string
		identity string
		extra    []string
		code     int32
		words    string
	}{
		{"untrusted-ca", id("foreign", forIssued.Certificate, forKey), []string{"-X", "X509_anchors=FILE:" + foreignRoot}, 70, "Can't verify certificate"},
		{"revoked", id("revoked", revCert, revKey), nil, 72, "Revoked certificate"},
		{"upn-mismatch", id("bob", bobCert, bobKey), nil, 75, "Client name mismatch"},
		{"wrong-eku", id("no-eku", ekuCert, ekuKey), nil, 77, "Inconsistent key purpose"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := m.kinitPKINIT(t, c.name, c.identity, "alice@"+kdctest.Realm, c.extra...)
			checkRefusal(t, s, r, c.code, c.words)
		})
	}
	t.Run("sid-mismatch", func(t *testing.T) {
		r := m.kinitPKINIT(t, "sid-mismatch", id("carol", carolCert, carolKey), "carol@"+kdctest.Realm)
		checkRefusal(t, s, r, 75, "Client name mismatch")
	})
}

// TestMITKinitExpired: MIT kinit refuses to use an expired certificate
// itself ("Failed to verify own certificate"), so the certificate here
// expires 40 s from now and the KDC's clock is 3 minutes ahead (within the
// clock skew): the client still sees it valid, the KDC does not.
func TestMITKinitExpired(t *testing.T) {
	t.Parallel()
	soon := pkitest.New(t, pkitest.Options{Now: func() time.Time { return time.Now().Add(-365*24*time.Hour + 40*time.Second) }})
	s := kdctest.New(t, kdctest.Options{
		ExtraRoots: []*x509.Certificate{soon.CA.Root()},
		Now:        func() time.Time { return time.Now().Add(3 * time.Minute) },
	})
	m := requireMITClient(t, s)
	alice := s.AddUser("alice")
	soon.Users.Put(&pki.User{Name: "alice", UPN: alice.UPN, SID: alice.SID, Mail: alice.UPN})
	issued, key := soon.Issue(t, "smartcard-logon", "alice", pki.P256)
	anchors := pkitest.WritePEM(t, m.dir, "soon-root.pem", soon.CA.Root())
	r := m.kinitPKINIT(t, "expired", m.identity(t, "expired", issued.Certificate, key), "alice@"+kdctest.Realm,
		"-X", "X509_anchors=FILE:"+anchors)
	checkRefusal(t, s, r, 71, "Invalid certificate")
}

// TestMITKinitClockSkew runs the KDC with its clock an hour ahead. MIT
// kinit normally adopts the KDC's time from the PREAUTH_REQUIRED error
// (kdc_timesync), so it logs on; with kdc_timesync = 0 it signs its own
// time and the KDC refuses the PKAuthenticator with KRB_AP_ERR_SKEW.
func TestMITKinitClockSkew(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	s.AddUser("alice")
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	t.Run("refused", func(t *testing.T) {
		m := requireMITClient(t, s, "kdc_timesync = 0")
		r := m.kinitPKINIT(t, "skew", m.identity(t, "skew", cert, key), "alice@"+kdctest.Realm)
		checkRefusal(t, s, r, 37, "Clock skew too great")
	})
	t.Run("timesync", func(t *testing.T) {
		m := requireMITClient(t, s)
		r := m.kinitPKINIT(t, "timesync", m.identity(t, "timesync", cert, key), "alice@"+kdctest.Realm)
		if r.err != nil {
			t.Fatalf("kinit with kdc_timesync: %v: %s\n%s", r.err, r.out, r.trace)
		}
	})
}

// checkRefusal checks that kinit failed with words in its message and that
// the KDC logged the refusal with code.
func checkRefusal(t *testing.T, s *kdctest.Server, r mitResult, code int32, words string) {
	t.Helper()
	if r.err == nil {
		t.Fatalf("kinit succeeded, want a refusal with %d (%s)", code, words)
	}
	if !strings.Contains(r.out, words) {
		t.Errorf("kinit said %q, want %q\ntrace:\n%s", r.out, words, r.trace)
	}
	if want := fmt.Sprintf("code=%d ", code); !strings.Contains(s.Log.String(), want) {
		t.Errorf("the KDC log has no refusal with %s", want)
	}
	t.Logf("refused: %s", r.out)
}

// TestMITKinitStrongMapping runs the KDC in full enforcement: a
// certificate with the SID extension logs on; the Windows-form certificate
// without one is refused (KDC_ERR_CERTIFICATE_MISMATCH) until the account
// names it in altSecurityIdentities.
func TestMITKinitStrongMapping(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{StrongMapping: kdc.MappingFull})
	m := requireMITClient(t, s)
	alice := s.AddUser("alice")
	sidCert, sidKey := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	upnCert, upnKey := s.Issue(t, kdctest.WindowsLogon, "alice", pki.P256)
	upnID := m.identity(t, "upn-only", upnCert, upnKey)

	r := m.kinitPKINIT(t, "sid", m.identity(t, "sid", sidCert, sidKey), "alice@"+kdctest.Realm)
	if r.err != nil {
		t.Fatalf("kinit with the SID extension: %v: %s\n%s", r.err, r.out, r.trace)
	}
	r = m.kinitPKINIT(t, "weak", upnID, "alice@"+kdctest.Realm)
	checkRefusal(t, s, r, 66, "Certificate mismatch")

	for _, mapping := range []string{
		"X509:<SHA1-PUKEY>" + thumbprint(upnCert),
		"X509:<I>" + reverseDN(upnCert.Issuer.String()) + "<SR>" + reversedSerial(upnCert),
	} {
		alice.AltSecurityIdentities = []string{"X509:<RFC822>alice@example.test", mapping}
		s.Users.Put(alice)
		r = m.kinitPKINIT(t, "alt", upnID, "alice@"+kdctest.Realm)
		if r.err != nil {
			t.Fatalf("kinit with altSecurityIdentities %s: %v: %s", mapping, r.err, r.out)
		}
	}
}

func thumbprint(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw)
	return hex.EncodeToString(sum[:])
}

// reverseDN writes a DN most-significant RDN first, as AD does.
func reverseDN(dn string) string {
	parts := strings.Split(dn, ",")
	slices.Reverse(parts)
	return strings.Join(parts, ",")
}

// reversedSerial is the serial number in hex, bytes reversed, as AD writes
// it in X509:<I>…<SR>….
func reversedSerial(c *x509.Certificate) string {
	b := c.SerialNumber.Bytes()
	slices.Reverse(b)
	return hex.EncodeToString(b)
}

// TestMITKinitPassword logs an administrator on with a password
// (encrypted timestamp), as MIT kinit does it, and gets a service ticket.
func TestMITKinitPassword(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{})
	m := requireMITClient(t, s)
	if _, err := s.Store.AddPrincipal("admin", []byte("Secret-pw-1")); err != nil {
		t.Fatal(err)
	}
	r := m.runStdin(t, "admin", "Secret-pw-1\n", m.kinit, "admin@"+kdctest.Realm)
	if r.err != nil {
		t.Fatalf("kinit admin: %v: %s\n%s", r.err, r.out, r.trace)
	}
	if !strings.Contains(r.trace, "PA-ENC-TIMESTAMP (2), PA-ETYPE-INFO2 (19)") || !strings.Contains(r.trace, `salt "EXAMPLE.TESTadmin"`) {
		t.Errorf("the KDC did not offer encrypted timestamp with ETYPE-INFO2:\n%s", r.trace)
	}
	kv := m.run(t, "admin", m.kvno, kdctest.Service+"@"+kdctest.Realm)
	if kv.err != nil {
		t.Fatalf("kvno: %v: %s", kv.err, kv.out)
	}
	r = m.runStdin(t, "admin-wrong", "wrong\n", m.kinit, "admin@"+kdctest.Realm)
	checkRefusal(t, s, r, 24, "Password incorrect")
	r = m.runStdin(t, "nobody", "x\n", m.kinit, "nobody@"+kdctest.Realm)
	checkRefusal(t, s, r, 6, "not found in Kerberos database")
}
