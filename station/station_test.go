package station

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

func fixedPassphrase(p string) PassphraseFunc {
	return func(bool) ([]byte, error) { return []byte(p), nil }
}

func TestInitRefusesExistingDirectory(t *testing.T) {
	dir := t.TempDir()
	st, err := Init(dir, InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Config.Realm != "EXAMPLE.TEST" || st.Config.BaseDN() != "dc=example,dc=test" {
		t.Errorf("realm %q base DN %q", st.Config.Realm, st.Config.BaseDN())
	}
	st.Close()
	before, _ := os.ReadFile(filepath.Join(dir, caKeyFile))
	if _, err := Init(dir, InitOptions{Domain: "other.test"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second init: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, caKeyFile))
	if string(before) != string(after) {
		t.Fatal("a refused init changed the CA key")
	}
	for _, d := range []string{"directory", "kdc", "inventory", "audit", "ca/templates"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
}

func TestEncryptedKeyNeedsPassphrase(t *testing.T) {
	dir := t.TempDir()
	st, err := Init(dir, InitOptions{Domain: "example.test", CA: CAOptions{Passphrase: fixedPassphrase("correct horse")}})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	key, _ := os.ReadFile(filepath.Join(dir, caKeyFile))
	if !strings.Contains(string(key), "ENCRYPTED PRIVATE KEY") {
		t.Fatalf("the CA key is not encrypted at rest:\n%s", key)
	}
	st, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CA(fixedPassphrase("wrong")); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := st.CA(nil); err == nil {
		t.Fatal("no passphrase accepted")
	}
	if _, err := st.CA(fixedPassphrase("correct horse")); err != nil {
		t.Fatal(err)
	}
}

// TestSubordinateCA makes the station an issuing CA under a root that
// openssl runs, then checks that what it issues verifies to that root.
func TestSubordinateCA(t *testing.T) {
	openssl := testpeer.Path(t, "openssl")
	dir := t.TempDir()
	st, err := Init(filepath.Join(dir, "station"), InitOptions{Domain: "example.test", CA: CAOptions{Subordinate: true, KeyAlgorithm: pki.RSA2048}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.CAState() != CAPending {
		t.Fatalf("state %v, want pending", st.CAState())
	}
	if _, err := st.CA(nil); !errors.Is(err, ErrCAPending) {
		t.Fatalf("CA before install: %v", err)
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	rootKey, rootCert := filepath.Join(dir, "root.key"), filepath.Join(dir, "root.pem")
	run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes", "-keyout", rootKey,
		"-subj", "/O=Parent/CN=Parent Root CA", "-days", "3650", "-out", rootCert,
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	ext := filepath.Join(dir, "sub.ext")
	os.WriteFile(ext, []byte("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"), 0o600)
	subCert := filepath.Join(dir, "sub.pem")
	run("x509", "-req", "-in", st.CSRPath(), "-CA", rootCert, "-CAkey", rootKey, "-CAcreateserial", "-days", "1825", "-extfile", ext, "-out", subCert)

	certs := readPEMCerts(t, subCert)
	parents := readPEMCerts(t, rootCert)
	// A certificate for another key is refused.
	other := pkitest.New(t, pkitest.Options{})
	if _, err := st.InstallCACert(other.CA.Certificate(), parents); err == nil {
		t.Fatal("installed a certificate for another key")
	}
	chain, err := st.InstallCACert(certs[0], parents)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 {
		t.Fatalf("chain of %d", len(chain))
	}
	d, _ := st.Directory()
	if _, err := d.AddUser(directory.User{Name: "alice", UPN: "alice@example.test"}); err != nil {
		t.Fatal(err)
	}
	_, csr := pkitest.NewCSR(t, pki.P256)
	issued, err := st.Issue(context.Background(), nil, "smartcard-logon", csr, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(issued.Chain) != 3 {
		t.Fatalf("issued chain of %d, want leaf, issuing CA, root", len(issued.Chain))
	}
	leaf := pkitest.WritePEM(t, dir, "leaf.pem", issued.Certificate)
	untrusted := pkitest.WritePEM(t, dir, "untrusted.pem", chain[0])
	out, err := exec.Command(openssl, "verify", "-CAfile", rootCert, "-untrusted", untrusted, leaf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify through the issuing CA: %v %s", err, out)
	}
	// Published to the directory entry.
	u, _ := d.User("alice")
	if len(u.Certificates) != 1 || string(u.Certificates[0]) != string(issued.Certificate.Raw) {
		t.Errorf("published certificates: %d", len(u.Certificates))
	}
}

func readPEMCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestStandalonePublishesFiles(t *testing.T) {
	dir := t.TempDir()
	st, err := Init(dir, InitOptions{Domain: "example.test", Standalone: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, _ := st.Directory()
	d.AddUser(directory.User{Name: "bob", UPN: "bob@example.test", Mail: "bob@example.test"})
	_, csr := pkitest.NewCSR(t, pki.P256)
	issued, err := st.Issue(context.Background(), nil, "smime-signing", csr, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, publishedDir, "bob", "*.crt"))
	if len(files) != 1 {
		t.Fatalf("published files %v", files)
	}
	got := readPEMCerts(t, files[0])
	if len(got) != 1 || !got[0].Equal(issued.Certificate) {
		t.Error("the published file is not the issued certificate")
	}
	if u, _ := d.User("bob"); len(u.Certificates) != 0 {
		t.Error("standalone mode published to the directory")
	}
}

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	st, created, err := Demo(dir, nil)
	if err != nil || !created {
		t.Fatalf("demo: %v created=%v", err, created)
	}
	st.Close()
	st, created, err = Demo(dir, nil)
	if err != nil || created {
		t.Fatalf("second demo: %v created=%v", err, created)
	}
	defer st.Close()
	d, _ := st.Directory()
	users, _ := d.Users()
	if len(users) != len(DemoUsers)+DemoGenerated {
		t.Errorf("%d users, want %d", len(users), len(DemoUsers)+DemoGenerated)
	}
	// Login names, UPNs and mail addresses are unique (the store refuses
	// a second UPN; check the generator all the same).
	seen := map[string]bool{}
	for _, u := range users {
		for _, k := range []string{"name " + u.Name, "upn " + strings.ToLower(u.UPN), "mail " + strings.ToLower(u.Mail)} {
			if seen[k] {
				t.Errorf("%s twice", k)
			}
			seen[k] = true
		}
	}
	u, err := d.User(DemoGeneratedUser(DemoGenerated - 1).Name)
	if err != nil || u.DisplayName == "" || u.Mail == "" {
		t.Fatalf("last generated user: %+v, %v", u, err)
	}
	total := 0
	for _, g := range demoGroups {
		grp, err := d.Group(g.name)
		if err != nil {
			t.Fatal(err)
		}
		total += len(grp.Members)
	}
	if total != DemoGenerated {
		t.Errorf("%d group members, want %d", total, DemoGenerated)
	}
}

func TestServiceTLS(t *testing.T) {
	dir := t.TempDir()
	st, err := Init(dir, InitOptions{Domain: "example.test", CA: CAOptions{Passphrase: fixedPassphrase("pw")}})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, _ = Open(dir, nil)
	defer st.Close()
	// Made at init, without asking for the passphrase again.
	cert, err := st.ServiceTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	chain, _ := st.CAChain()
	roots := x509.NewCertPool()
	roots.AddCert(chain[len(chain)-1])
	for _, h := range st.ServiceHosts() {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: roots}); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	// A new host name means a new certificate, which needs the CA key.
	st.Config.Services.Hostname = "station.example.test"
	if _, err := st.ServiceTLS(nil); err == nil {
		t.Fatal("issued without the CA passphrase")
	}
	cert2, err := st.ServiceTLS(fixedPassphrase("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if cert2.Leaf.VerifyHostname("station.example.test") != nil || cert2.Leaf.Equal(cert.Leaf) {
		t.Error("the certificate was not reissued for the new name")
	}
}
