package card_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
)

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// TestPeersReadWhatWeWrote: a key generated and a certificate written by
// this client, through pcscd, are what OpenSC and yubico-piv-tool see.
func TestPeersReadWhatWeWrote(t *testing.T) {
	pkcs15 := needTool(t, "pkcs15-tool")
	pkcs11 := needTool(t, "pkcs11-tool")
	ypt := needTool(t, "yubico-piv-tool")
	_, reader, _, c := attach(t, 424242)
	p, err := card.OpenPIV(c)
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, p)
	pub, err := p.GenerateKey(card.SlotAuthentication, card.AlgECCP256, card.KeyPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := p.PrivateKey(card.SlotAuthentication, pub, card.KeyAuth{PIN: card.DefaultPIN})
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSign(t, k.(crypto.Signer), "peer check")
	if err := p.SetCertificate(card.SlotAuthentication, cert); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(pkcs15, "--reader", reader, "--read-certificate", "01")
	cmd.Env = cardtest.OpenSCEnv(t, reader)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs15-tool: %v\n%s", err, out)
	}
	blk, _ := pem.Decode(out[strings.Index(string(out), "-----BEGIN"):])
	if blk == nil || string(blk.Bytes) != string(cert.Raw) {
		t.Fatalf("pkcs15-tool read another certificate:\n%s", out)
	}

	out, err = exec.Command(ypt, "-r", reader, "-a", "status").CombinedOutput()
	if err != nil {
		t.Fatalf("yubico-piv-tool: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "CN=peer check") || !strings.Contains(string(out), "424242") {
		t.Errorf("yubico-piv-tool status:\n%s", out)
	}

	// A signature made through OpenSC's PKCS#11 module with our key.
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	sigFile := filepath.Join(dir, "sig")
	os.WriteFile(data, []byte("signed through pkcs11-tool"), 0o600)
	module := openSCPKCS11(t)
	cmd = exec.Command(pkcs11, "--module", module, "--slot-index", slotIndex(t, pkcs11, module, reader),
		"--login", "--pin", card.DefaultPIN, "--sign", "--id", "01", "-m", "ECDSA-SHA256",
		"--signature-format", "openssl", "--input-file", data, "--output-file", sigFile)
	cmd.Env = cardtest.OpenSCEnv(t, reader)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	sig, _ := os.ReadFile(sigFile)
	d := sha256.Sum256([]byte("signed through pkcs11-tool"))
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig) {
		t.Error("pkcs11-tool's signature does not verify with the key GenerateKey returned")
	}
}

// slotIndex finds the PKCS#11 slot of reader.
func slotIndex(t *testing.T, pkcs11, module, reader string) string {
	list := exec.Command(pkcs11, "--module", module, "--list-slots")
	list.Env = cardtest.OpenSCEnv(t, reader)
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool --list-slots: %v\n%s", err, out)
	}
	idx := -1
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Slot ") {
			idx++
			if strings.Contains(l, reader) {
				return strings.TrimSpace(strings.Split(strings.TrimPrefix(l, "Slot "), " ")[0])
			}
		}
	}
	t.Fatalf("no PKCS#11 slot for %q:\n%s", reader, out)
	return ""
}

// TestWeReadWhatYubicoPIVToolWrote: a key generated and a certificate
// imported by yubico-piv-tool are read and used by this client.
func TestWeReadWhatYubicoPIVToolWrote(t *testing.T) {
	ypt := needTool(t, "yubico-piv-tool")
	_, reader, _, c := attach(t, 515151)
	// Opened before yubico-piv-tool runs: it resets the card when it
	// disconnects, and the connection has to get over that.
	p, err := card.OpenPIV(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(ypt, append([]string{"-r", reader}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("yubico-piv-tool %v: %v\n%s", args, err, out)
		}
	}
	pubFile, certFile := filepath.Join(dir, "pub.pem"), filepath.Join(dir, "cert.pem")
	run("-a", "generate", "-s", "9d", "-A", "ECCP256", "-o", pubFile)
	// (yubico-piv-tool 2.2.0's selfsign fails on the host side with
	// OpenSSL 3 before sending anything, so a Go CA issues the certificate.)
	issueFor(t, pubFile, certFile, "from ypt")
	run("-a", "import-certificate", "-s", "9d", "-i", certFile)

	cert, err := p.Certificate(card.SlotKeyManagement)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "from ypt" {
		t.Errorf("subject %v", cert.Subject)
	}
	md, err := p.Metadata(card.SlotKeyManagement)
	if err != nil {
		t.Fatal(err)
	}
	if md.Algorithm != card.AlgECCP256 || !cert.PublicKey.(*ecdsa.PublicKey).Equal(md.PublicKey) {
		t.Errorf("metadata %+v", md)
	}
	k, err := p.PrivateKey(card.SlotKeyManagement, cert.PublicKey, card.KeyAuth{PIN: card.DefaultPIN})
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	sig, err := k.(crypto.Signer).Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), d[:], sig) {
		t.Error("signature does not verify")
	}
}

// issueFor writes to certFile a certificate for the PEM public key in
// pubFile, issued by a throwaway CA.
func issueFor(t *testing.T, pubFile, certFile, cn string) {
	t.Helper()
	b, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("no PEM in %s", b)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: cn},
		Issuer:       pkix.Name{CommonName: "test CA"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	parent := &x509.Certificate{Subject: pkix.Name{CommonName: "test CA"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// openSCPKCS11 finds OpenSC's PKCS#11 module (Debian puts it under the
// multiarch directory).
func openSCPKCS11(t *testing.T) string {
	t.Helper()
	m, _ := filepath.Glob("/usr/lib/*/opensc-pkcs11.so")
	if len(m) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("opensc-pkcs11.so is not installed")
		}
		t.Skip("opensc-pkcs11.so is not installed")
	}
	return m[0]
}
