package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
)

// logonRealm is a station data directory with users alice and bob, the
// service host/station.example.test (its keytab in work), and, after
// serve, the station's KDC serving in this process (which holds the CA
// database: issue certificates before).
type logonRealm struct {
	dir, work, kdc, keytab string
}

func newLogonRealm(t *testing.T) *logonRealm {
	t.Helper()
	r := &logonRealm{dir: filepath.Join(t.TempDir(), "st"), work: t.TempDir()}
	d := "--dir=" + r.dir
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", d))
	must(t, 0, run(t, "", "user", "add", "alice", "--mail", "alice@example.test", d))
	must(t, 0, run(t, "", "user", "add", "bob", "--mail", "bob@example.test", d))
	must(t, 0, run(t, "", "kdc", "service", "host/station.example.test", d))
	r.keytab = filepath.Join(r.work, "host.keytab")
	must(t, 0, run(t, "", "kdc", "keytab", "--principal", "host/station.example.test", "--out", r.keytab, d))
	return r
}

func (r *logonRealm) serve(t *testing.T) {
	t.Helper()
	st, err := station.Open(r.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := st.NewKDC(station.KDCOptions{TCP: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	stop := kdctest.Serve(t, k)
	r.kdc = k.TCPAddr().String()
	t.Cleanup(func() {
		stop()
		st.Close()
	})
}

// issue has the station CA issue a smartcard-logon certificate for user
// to key, and returns the certificate file.
func (r *logonRealm) issue(t *testing.T, name, user string, key crypto.Signer) string {
	t.Helper()
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	csrFile := filepath.Join(r.work, name+".csr")
	if err := os.WriteFile(csrFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(r.work, name+".pem")
	must(t, 0, run(t, "", "ca", "issue", "--template", "smartcard-logon", "--csr", csrFile, "--user", user, "--out", out, "--dir="+r.dir))
	return out
}

func (r *logonRealm) keyFile(t *testing.T, name string, key crypto.Signer) string {
	t.Helper()
	b, err := pki.MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(r.work, name+".key")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// klist lists a credential cache with MIT klist.
func klist(t *testing.T, cache string) string {
	t.Helper()
	p := testpeer.Require(t, "klist")
	c := exec.Command(p[0], "-e", "-c", "FILE:"+cache)
	c.Env = append(os.Environ(), "KRB5_CONFIG=/dev/null")
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("klist: %v\n%s", err, out)
	}
	return string(out)
}

// TestLogonKeyFiles logs on with certificate and key files against the
// station's KDC, in DH and RSA mode, and checks the steps, the ccache
// (with MIT klist) and the refusals.
func TestLogonKeyFiles(t *testing.T) {
	r := newLogonRealm(t)
	d := "--dir=" + r.dir
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecCert, ecKey := r.issue(t, "alice-ec", "alice", ec), r.keyFile(t, "alice-ec", ec)
	rsaCert, rsaKey := r.issue(t, "alice-rsa", "alice", rk), r.keyFile(t, "alice-rsa", rk)
	r.serve(t)

	cache := filepath.Join(r.work, "cc-dh")
	res := must(t, 0, run(t, "", "logon", "--user", "alice", "--cert", ecCert, "--key", ecKey, "--kdc", r.kdc,
		"--service", "host/station.example.test", "--keytab", r.keytab, "--ccache", cache, d))
	contains(t, "logon dh", res.stdout, "PKINIT Diffie-Hellman", "KDC asked for pre-authentication", "AS-REQ signed",
		"AS-REQ sent", "reply verified: KDC certificate verified, DH reply key derived",
		"TGT: alice@EXAMPLE.TEST for krbtgt/EXAMPLE.TEST@EXAMPLE.TEST", "service ticket: alice@EXAMPLE.TEST for host/station.example.test",
		"ticket decrypted with the service key: client alice@EXAMPLE.TEST", "credential cache written", "logged on", " ms")
	if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ccache: %v %v", fi, err)
	}
	contains(t, "klist", klist(t, cache), "Default principal: alice@EXAMPLE.TEST", "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST",
		"host/station.example.test@EXAMPLE.TEST")

	cache = filepath.Join(r.work, "cc-rsa")
	res = must(t, 0, run(t, "", "logon", "--user", "alice@example.test", "--mode", "rsa", "--cert", rsaCert, "--key", rsaKey,
		"--kdc", r.kdc, "--ccache", cache, d))
	contains(t, "logon rsa", res.stdout, "PKINIT public-key mode", "reply key decrypted", "logged on")
	contains(t, "klist rsa", klist(t, cache), "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST")

	// Refusals exit 1 with the reason in plain words.
	res = must(t, 1, run(t, "", "logon", "--user", "bob", "--cert", ecCert, "--key", ecKey, "--kdc", r.kdc, d))
	contains(t, "logon as bob", res.stdout+res.stderr, "the certificate does not name this user", "KDC_ERR_CLIENT_NAME_MISMATCH")
	res = must(t, 1, run(t, "", "logon", "--user", "carol", "--cert", ecCert, "--key", ecKey, "--kdc", r.kdc, d))
	contains(t, "logon as carol", res.stdout+res.stderr, "the KDC does not know this user")
	// EC keys cannot do public-key mode: an environment error.
	must(t, 2, run(t, "", "logon", "--user", "alice", "--mode", "rsa", "--cert", ecCert, "--key", ecKey, "--kdc", r.kdc, d))
	// No KDC there: an environment error.
	res = must(t, 2, run(t, "", "logon", "--user", "alice", "--cert", ecCert, "--key", ecKey, "--kdc", "127.0.0.1:1", d))
	contains(t, "no KDC", res.stdout, "failed at AS-REQ without pre-authentication")
	// Usage errors.
	must(t, 2, run(t, "", "logon", "--cert", ecCert, "--key", ecKey, d))
	must(t, 2, run(t, "", "logon", "--user", "alice", d))
	must(t, 2, run(t, "", "logon", "--user", "alice", "--cert", ecCert, d))
}

// TestLogonCard logs on with a virtual card on pcscd: a key generated in
// slot 9A, a smartcard-logon certificate from the station CA written next
// to it, and the PIN from standard input; in DH mode (P-256 and RSA) and
// in public-key mode (RSA-2048, the card decrypts the reply key).
func TestLogonCard(t *testing.T) {
	r := newLogonRealm(t)
	d := "--dir=" + r.dir
	type cardCase struct {
		name, mode, reader string
		alg                card.Algorithm
	}
	cases := []*cardCase{
		{name: "p256-dh", alg: card.AlgECCP256, mode: "dh"},
		{name: "rsa-dh", alg: card.AlgRSA2048, mode: "dh"},
		{name: "rsa-rsa", alg: card.AlgRSA2048, mode: "rsa"},
	}
	for i, tc := range cases {
		st, err := virtual.NewState(uint32(4242 + i))
		if err != nil {
			t.Fatal(err)
		}
		tc.reader = cardtest.Attach(t, virtual.New(st, ""))
		cardtest.WithPIV(t, tc.reader, func(p *card.PIV) {
			if err := p.AuthenticateManagementKey(card.MgmtTDES, card.DefaultManagementKey); err != nil {
				t.Fatal(err)
			}
			pub, err := p.GenerateKey(card.SlotAuthentication, tc.alg, card.KeyPolicy{})
			if err != nil {
				t.Fatal(err)
			}
			k, err := p.PrivateKey(card.SlotAuthentication, pub, card.KeyAuth{PIN: card.DefaultPIN})
			if err != nil {
				t.Fatal(err)
			}
			pemData, err := os.ReadFile(r.issue(t, "card-"+tc.name, "alice", k.(crypto.Signer)))
			if err != nil {
				t.Fatal(err)
			}
			certs, err := station.ParseCertificates(pemData)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.SetCertificate(card.SlotAuthentication, certs[0]); err != nil {
				t.Fatal(err)
			}
		})
	}
	r.serve(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reader := tc.reader
			cache := filepath.Join(r.work, "cc-card-"+tc.name)
			start := time.Now()
			res := must(t, 0, run(t, card.DefaultPIN+"\n", "logon", "--user", "alice", "--reader", reader, "--pin-stdin",
				"--mode", tc.mode, "--kdc", r.kdc, "--service", "host/station.example.test", "--ccache", cache, d))
			t.Logf("%s in %v:\n%s", tc.name, time.Since(start), res.stdout)
			contains(t, "card logon", res.stdout, "PIN verified on the card", "certificate read: slot 9A", "TGT: alice@EXAMPLE.TEST",
				"service ticket", "logged on")
			contains(t, "klist card", klist(t, cache), "Default principal: alice@EXAMPLE.TEST", "host/station.example.test@EXAMPLE.TEST")

			if tc.name == "rsa-rsa" {
				res = must(t, 1, run(t, "12345679\n", "logon", "--user", "alice", "--reader", reader, "--pin-stdin", "--kdc", r.kdc, d))
				contains(t, "wrong PIN", res.stdout+res.stderr, "wrong PIN — 2 tries left")
				// The right PIN resets the counter.
				must(t, 0, run(t, card.DefaultPIN+"\n", "logon", "--user", "alice", "--reader", reader, "--pin-stdin", "--kdc", r.kdc, d))
				// No PIN on standard input is a usage error.
				must(t, 2, run(t, "", "logon", "--user", "alice", "--reader", reader, "--pin-stdin", "--kdc", r.kdc, d))
			}
		})
	}
}
