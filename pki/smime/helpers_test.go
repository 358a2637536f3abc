package smime_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

// identity is a mail user with a certificate, key and their PEM files.
type identity struct {
	Cert     *x509.Certificate
	Key      crypto.Signer
	CertFile string
	KeyFile  string
	Addr     string
}

type world struct {
	env    *pkitest.Env
	CAFile string
	Roots  *x509.CertPool
	dir    string
}

func newWorld(tb testing.TB) *world {
	tb.Helper()
	env := pkitest.New(tb, pkitest.Options{})
	root := env.CA.Chain()[len(env.CA.Chain())-1]
	roots := x509.NewCertPool()
	roots.AddCert(root)
	dir := tb.TempDir()
	return &world{env: env, Roots: roots, dir: dir, CAFile: pkitest.WritePEM(tb, dir, "ca.pem", root)}
}

var userMu sync.Mutex

// user issues name a certificate from template for a new soft key.
func (w *world) user(tb testing.TB, name, template string, alg pki.KeyAlgorithm) *identity {
	tb.Helper()
	userMu.Lock()
	if _, err := w.env.Users.LookupUser(tb.Context(), name); err != nil {
		w.env.Users.Add(name)
	}
	userMu.Unlock()
	issued, key := w.env.Issue(tb, template, name, alg)
	id := &identity{Cert: issued.Certificate, Key: key, Addr: name + "@" + pkitest.Domain}
	base := name + "-" + template + "-" + string(alg)
	id.CertFile = pkitest.WritePEM(tb, w.dir, base+".pem", issued.Certificate)
	id.KeyFile = pkitest.WritePEM(tb, w.dir, base+".key", key)
	return id
}

// openssl runs openssl with args and stdin, failing the test on error.
func openssl(tb testing.TB, stdin []byte, args ...string) []byte {
	tb.Helper()
	out, err := opensslErr(tb, stdin, args...)
	if err != nil {
		tb.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func opensslErr(tb testing.TB, stdin []byte, args ...string) ([]byte, error) {
	tb.Helper()
	path := testpeer.Path(tb, "openssl")
	cmd := exec.Command(path, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &opensslError{err: err, stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

type opensslError struct {
	err    error
	stderr string
}

func (e *opensslError) Error() string { return e.err.Error() + ": " + e.stderr }

func writeFile(tb testing.TB, dir, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// sample is a mail message with 8-bit text, LF line ends as a user's file
// has them.
const sample = "From: Alice <alice@example.test>\n" +
	"To: Bob <bob@example.test>\n" +
	"Subject: quarterly numbers\n" +
	"Content-Type: text/plain; charset=utf-8\n" +
	"\n" +
	"Hello Bob,\n\nthe numbers are in: 42 € and climbing.\nSee you.\n"

// exampleIdentities makes a CA and two users whose certificates are good
// for both signing and encryption, for Example.
func exampleIdentities() (ca *x509.Certificate, alice, bob *identity) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	ca, _ = x509.ParseCertificate(der)
	user := func(name string, serial int64) *identity {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		t := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			EmailAddresses: []string{name + "@example.test"},
			NotBefore:      time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		}
		der, _ := x509.CreateCertificate(rand.Reader, t, ca, key.Public(), caKey)
		cert, _ := x509.ParseCertificate(der)
		return &identity{Cert: cert, Key: key, Addr: name + "@example.test"}
	}
	return ca, user("alice", 2), user("bob", 3)
}
