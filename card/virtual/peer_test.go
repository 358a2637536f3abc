package virtual_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/internal/testpeer"
)

// attached makes a card with a state file and puts it into a virtual
// reader.
func attached(t *testing.T, serial uint32) (*virtual.Card, string, string) {
	t.Helper()
	st, err := virtual.NewState(serial)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "card.json")
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	c := virtual.New(st, path)
	return c, cardtest.Attach(t, c), path
}

// run runs a peer program; the output is returned whatever the exit
// status. OpenSC tools get an environment from cardtest.OpenSCEnv.
func run(t *testing.T, env []string, prog string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustRun(t *testing.T, env []string, prog string, args ...string) string {
	t.Helper()
	out, err := run(t, env, prog, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(prog), strings.Join(args, " "), err, out)
	}
	return out
}

// ykpiv runs yubico-piv-tool on the reader.
type ykpiv struct {
	t      *testing.T
	tool   string
	reader string
}

func newYKPIV(t *testing.T, reader string) ykpiv {
	return ykpiv{t, testpeer.Path(t, "yubico-piv-tool"), reader}
}

func (y ykpiv) run(args ...string) (string, error) {
	y.t.Helper()
	return run(y.t, nil, y.tool, append([]string{"-r", y.reader}, args...)...)
}

func (y ykpiv) must(args ...string) string {
	y.t.Helper()
	return mustRun(y.t, nil, y.tool, append([]string{"-r", y.reader}, args...)...)
}

var slotLine = regexp.MustCompile(`(?m)^Slot \d+ \((0x[0-9a-fA-F]+)\): (.*)$`)

// pkcs11Slot finds the PKCS#11 slot OpenSC made for the reader.
func pkcs11Slot(t *testing.T, env []string, tool, module, reader string) string {
	t.Helper()
	out := mustRun(t, env, tool, "--module", module, "-L")
	for _, m := range slotLine.FindAllStringSubmatch(out, -1) {
		if strings.HasPrefix(strings.TrimSpace(m[2]), reader) {
			return m[1]
		}
	}
	t.Fatalf("no PKCS#11 slot for %q in:\n%s", reader, out)
	return ""
}

// testCA issues certificates for keys generated on the card.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newTestCA(t *testing.T) testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{key, cert}
}

func (ca testCA) issue(t *testing.T, pub crypto.PublicKey, cn string) *x509.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readCertPEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("no PEM in %q", data)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func parsePublicPEM(t *testing.T, out string) crypto.PublicKey {
	t.Helper()
	b, _ := pem.Decode([]byte(out[strings.Index(out, "-----BEGIN"):]))
	if b == nil {
		t.Fatalf("no public key in %q", out)
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestOpenSCSeesPIV(t *testing.T) {
	t.Parallel()
	tool := testpeer.Path(t, "opensc-tool")
	_, reader, _ := attached(t, 1001)
	out := mustRun(t, cardtest.OpenSCEnv(t, reader), tool, "-r", reader, "-n")
	if !strings.Contains(out, "Personal Identity Verification Card") {
		t.Fatalf("opensc-tool -n: %q", out)
	}
}

// TestYubicoPIVToolAndOpenSC: yubico-piv-tool generates a key and writes
// a certificate; OpenSC reads the certificate and signs with the key.
func TestYubicoPIVToolAndOpenSC(t *testing.T) {
	t.Parallel()
	pkcs15 := testpeer.Path(t, "pkcs15-tool")
	pkcs11 := testpeer.Path(t, "pkcs11-tool")
	module := cardtest.OpenSCModule(t)
	c, reader, _ := attached(t, 1002)
	y := newYKPIV(t, reader)
	env := cardtest.OpenSCEnv(t, reader)
	dir := t.TempDir()

	status := y.must("-a", "status")
	for _, want := range []string{"Version:\t5.4.3", "Serial Number:\t1002", "CHUID:\t", "PIN tries left:\t3"} {
		if !strings.Contains(status, want) {
			t.Fatalf("status lacks %q:\n%s", want, status)
		}
	}

	// EC P-256 in 9A with the default management key.
	pubPEM := filepath.Join(dir, "pub.pem")
	y.must("-a", "generate", "-s", "9a", "-A", "ECCP256", "-o", pubPEM)
	b, _ := os.ReadFile(pubPEM)
	pub := parsePublicPEM(t, string(b)).(*ecdsa.PublicKey)

	certPEM := filepath.Join(dir, "cert.pem")
	out, err := y.run("-a", "verify-pin", "-P", "123456", "-a", "selfsign", "-s", "9a", "-S", "/CN=x/",
		"-i", pubPEM, "-o", certPEM)
	var cert *x509.Certificate
	if err == nil {
		b, _ := os.ReadFile(certPEM)
		cert = readCertPEM(t, b)
		if err := cert.CheckSignatureFrom(cert); err != nil {
			t.Fatalf("self-signed certificate from the card does not verify: %v", err)
		}
	} else {
		// yubico-piv-tool 2.2.0 built with OpenSSL 3 (Debian 12) fails
		// here before sending anything to the card (also with real
		// YubiKeys: Yubico/yubico-piv-tool#388). Use a certificate
		// issued here instead.
		t.Logf("yubico-piv-tool selfsign failed (known with OpenSSL 3): %s", strings.TrimSpace(out))
		cert = newTestCA(t).issue(t, pub, "x")
		writePEM(t, certPEM, "CERTIFICATE", cert.Raw)
	}
	y.must("-a", "import-certificate", "-s", "9a", "-i", certPEM)
	// yubico-piv-tool signs with the card and checks against the cert.
	if out := y.must("-a", "verify-pin", "-P", "123456", "-a", "test-signature", "-s", "9a", "-i", certPEM); !strings.Contains(out, "Successful") {
		t.Fatalf("test-signature: %s", out)
	}

	// OpenSC reads the certificate back (01 is slot 9A)...
	out = mustRun(t, env, pkcs15, "--reader", reader, "--read-certificate", "01")
	if got := readCertPEM(t, []byte(out)); !got.Equal(cert) {
		t.Fatal("pkcs15-tool read a different certificate")
	}
	// ...and signs through PKCS#11; the signature verifies with the
	// certificate's key.
	slot := pkcs11Slot(t, env, pkcs11, module, reader)
	digest := sha256.Sum256([]byte("signed through opensc-pkcs11"))
	in, sigFile := filepath.Join(dir, "digest"), filepath.Join(dir, "sig")
	os.WriteFile(in, digest[:], 0o600)
	mustRun(t, env, pkcs11, "--module", module, "--slot", slot, "-l", "-p", "123456",
		"--sign", "--id", "01", "-m", "ECDSA", "-i", in, "-o", sigFile)
	sig, _ := os.ReadFile(sigFile)
	if len(sig) != 64 {
		t.Fatalf("ECDSA signature of %d bytes", len(sig))
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(cert.PublicKey.(*ecdsa.PublicKey), digest[:], r, s) {
		t.Fatal("PKCS#11 ECDSA signature does not verify")
	}

	// RSA-2048 in 9D: generate, certificate, sign through PKCS#11.
	rsaPEM := filepath.Join(dir, "rsa.pem")
	y.must("-a", "generate", "-s", "9d", "-A", "RSA2048", "-o", rsaPEM)
	b, _ = os.ReadFile(rsaPEM)
	rsaPub := parsePublicPEM(t, string(b)).(*rsa.PublicKey)
	rsaCert := newTestCA(t).issue(t, rsaPub, "rsa")
	rsaCertPEM := filepath.Join(dir, "rsacert.pem")
	writePEM(t, rsaCertPEM, "CERTIFICATE", rsaCert.Raw)
	y.must("-a", "import-certificate", "-s", "9d", "-i", rsaCertPEM)
	msg := filepath.Join(dir, "msg")
	os.WriteFile(msg, []byte("RSA through opensc-pkcs11"), 0o600)
	mustRun(t, env, pkcs11, "--module", module, "--slot", slot, "-l", "-p", "123456",
		"--sign", "--id", "03", "-m", "SHA256-RSA-PKCS", "-i", msg, "-o", sigFile)
	sig, _ = os.ReadFile(sigFile)
	h := sha256.Sum256([]byte("RSA through opensc-pkcs11"))
	if err := rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, h[:], sig); err != nil {
		t.Fatalf("PKCS#11 RSA signature: %v", err)
	}
	if out := y.must("-a", "verify-pin", "-P", "123456", "-a", "test-decipher", "-s", "9d", "-i", rsaCertPEM); !strings.Contains(out, "Successfully") {
		t.Fatalf("test-decipher: %s", out)
	}

	// Attestation: the certificate for 9A's key chains to the F9
	// certificate and on to the emulator's attestation CA.
	attPEM, f9PEM := filepath.Join(dir, "att.pem"), filepath.Join(dir, "f9.pem")
	y.must("-a", "attest", "-s", "9a", "-o", attPEM)
	y.must("-a", "read-certificate", "-s", "f9", "-o", f9PEM)
	b, _ = os.ReadFile(attPEM)
	att := readCertPEM(t, b)
	b, _ = os.ReadFile(f9PEM)
	f9 := readCertPEM(t, b)
	root, err := c.State().AttestationCA()
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	inter.AddCert(f9)
	if _, err := att.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("attestation does not verify: %v", err)
	}
	if !att.PublicKey.(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("attestation is for another key")
	}
	if _, err := y.run("-a", "attest", "-s", "9e"); err == nil {
		t.Fatal("attestation of an empty slot succeeded")
	}

	// The state file has it all.
	st := c.State()
	if st.Keys[0x9A] == nil || st.Keys[0x9D] == nil || st.Objects[0x5FC105] == nil || st.Objects[0x5FC10B] == nil {
		t.Fatal("state lacks the keys or certificates")
	}
}

func TestYubicoPIVToolPINAndManagementKey(t *testing.T) {
	t.Parallel()
	c, reader, path := attached(t, 1003)
	y := newYKPIV(t, reader)

	for _, want := range []string{"2 tries left", "1 tries left", "blocked", "blocked"} {
		out, err := y.run("-a", "verify-pin", "-P", "000000")
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("wrong PIN: want %q, got %v %q", want, err, out)
		}
	}
	if out, err := y.run("-a", "verify-pin", "-P", "123456"); err == nil {
		t.Fatalf("right PIN accepted while blocked: %s", out)
	}
	if out := y.must("-a", "status"); !strings.Contains(out, "PIN tries left:\t0") {
		t.Fatalf("status of a blocked PIN:\n%s", out)
	}
	if out, err := y.run("-a", "unblock-pin", "-P", "87654321", "-N", "654321"); err == nil || !strings.Contains(out, "2 tries left") {
		t.Fatalf("unblock with a wrong PUK: %v %s", err, out)
	}
	y.must("-a", "unblock-pin", "-P", "12345678", "-N", "654321")
	y.must("-a", "verify-pin", "-P", "654321")
	y.must("-a", "change-pin", "-P", "654321", "-N", "11223344")
	y.must("-a", "change-puk", "-P", "12345678", "-N", "99887766")
	y.must("-a", "verify-pin", "-P", "11223344")

	// A new management key: the old one stops working.
	newKey := "0f1e2d3c4b5a69780f1e2d3c4b5a69780f1e2d3c4b5a6978"
	y.must("-a", "set-mgm-key", "-n", newKey)
	if out, err := y.run("-a", "generate", "-s", "9e", "-A", "ECCP256"); err == nil {
		t.Fatalf("old management key still works: %s", out)
	}
	y.must("--key="+newKey, "-a", "generate", "-s", "9e", "-A", "ECCP256")

	st, err := virtual.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(st.PIN) != "11223344" || string(st.PUK) != "99887766" || st.Keys[0x9E] == nil ||
		fmt.Sprintf("%x", st.ManagementKey) != newKey {
		t.Fatal("the state file does not hold the changes")
	}
	_ = c
}

// TestVPCDLatency measures what an APDU costs through pcscd and vpcd, with
// and without TCP_QUICKACK (REFERENCE.md §3).
func TestVPCDLatency(t *testing.T) {
	t.Parallel()
	c, reader, _ := attached(t, 1004)
	y := newYKPIV(t, reader)
	defer c.SetQuickAck(true)

	perAPDU := func(n int) time.Duration {
		ctx, err := scard.EstablishContext()
		if err != nil {
			t.Fatal(err)
		}
		defer ctx.Release()
		h, err := ctx.Connect(reader, scard.ShareShared, scard.ProtocolAny)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Disconnect(scard.LeaveCard)
		if _, err := h.Transmit([]byte{0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08}); err != nil {
			t.Fatal(err)
		}
		var d []time.Duration
		for range n {
			t0 := time.Now()
			r, err := h.Transmit([]byte{0x00, 0xFD, 0x00, 0x00})
			d = append(d, time.Since(t0))
			if err != nil || !bytes.HasSuffix(r, []byte{0x90, 0x00}) {
				t.Fatalf("GET VERSION: %x %v", r, err)
			}
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	status := func(n int) (time.Duration, int64) {
		var d []time.Duration
		var apdus int64
		for range n {
			before := c.APDUs()
			t0 := time.Now()
			y.must("-a", "status")
			d = append(d, time.Since(t0))
			apdus = c.APDUs() - before
		}
		slices.Sort(d)
		return d[len(d)/2], apdus
	}

	fast := perAPDU(200)
	fastStatus, n := status(5)
	c.SetQuickAck(false)
	slow := perAPDU(10)
	slowStatus, _ := status(1)
	c.SetQuickAck(true)
	t.Logf("median per APDU through pcscd+vpcd: %v with TCP_QUICKACK, %v without", fast, slow)
	t.Logf("yubico-piv-tool -a status (%d APDUs): %v with TCP_QUICKACK, %v without", n, fastStatus, slowStatus)
	if fast > 5*time.Millisecond {
		t.Errorf("median APDU takes %v through pcscd+vpcd; the target is under 5 ms", fast)
	}
}
