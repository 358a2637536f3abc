package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scstation/scstation/internal/testpeer"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	code := a.run(args)
	return result{code, out.String(), errb.String()}
}

func must(t *testing.T, want int, r result) result {
	t.Helper()
	if r.code != want {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, want, r.stdout, r.stderr)
	}
	return r
}

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testpeer.Path(t, "openssl"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

var serialRE = regexp.MustCompile(`issued ([0-9a-f]+) to`)

// TestCALifecycle drives the CA through the command line, the way an
// administrator would, and checks the results with openssl.
func TestCALifecycle(t *testing.T) {
	t.Setenv("SCSTATION_CA_PASSPHRASE", "")
	dir := filepath.Join(t.TempDir(), "st")
	work := t.TempDir()
	d := "--dir=" + dir
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", d))
	must(t, 1, run(t, "", "init", "--domain", "example.test", "--no-passphrase", d))
	must(t, 2, run(t, "", "init", "--no-passphrase", "--dir", filepath.Join(work, "x")))
	must(t, 0, run(t, "", "user", "add", "alice", "--mail", "alice@example.test", "--name", "Alice Smith", d))
	must(t, 1, run(t, "", "user", "add", "alice", d))
	must(t, 0, run(t, "", "user", "add", "bob", d))

	key := filepath.Join(work, "alice.key")
	csr := filepath.Join(work, "alice.csr")
	openssl(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", "/CN=ignored", "-out", csr)
	out := filepath.Join(work, "alice.pem")
	r := must(t, 0, run(t, "", "ca", "issue", "--template", "smartcard-user", "--csr", csr, "--user", "alice", "--out", out, d))
	m := serialRE.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no serial in %q", r.stderr)
	}
	serial := m[1]
	if v := openssl(t, "verify", "-CAfile", filepath.Join(dir, "ca", "chain.pem"), out); !strings.Contains(v, ": OK") {
		t.Fatal(v)
	}
	// Flags may come before or after positional arguments; stdin works.
	csrData, _ := os.ReadFile(csr)
	r = must(t, 0, run(t, string(csrData), d, "ca", "issue", "--csr", "-", "--template", "smime-signing", "--user", "alice@example.test"))
	if !strings.Contains(r.stdout, "BEGIN CERTIFICATE") {
		t.Errorf("no certificate on stdout: %s", r.stdout)
	}

	// Refusals exit 1 and write nothing; usage errors exit 2.
	garbage := filepath.Join(work, "garbage")
	os.WriteFile(garbage, []byte("not a request"), 0o600)
	for _, args := range [][]string{
		{"ca", "issue", "--template", "nope", "--csr", csr, "--user", "alice"},
		{"ca", "issue", "--template", "smartcard-logon", "--csr", csr, "--user", "nobody"},
		{"ca", "issue", "--template", "smartcard-logon", "--csr", garbage, "--user", "alice"},
		{"ca", "issue", "--template", "kdc", "--csr", csr},
	} {
		must(t, 1, run(t, "", append(args, d)...))
	}
	for _, args := range [][]string{
		{"ca", "issue", "--template", "smartcard-logon"},
		{"ca", "issue", "--bogus"},
		{"ca", "revoke", serial},
		{"ca", "revoke", "zz", "--reason", "superseded"},
		{"ca", "revoke", serial, "--reason", "because"},
		{"ca", "list", "--status", "weird"},
		{"nosuchcommand"},
	} {
		must(t, 2, run(t, "", append(args, d)...))
	}
	r = must(t, 0, run(t, "", "ca", "list", d))
	// The header, the services' TLS certificate made at init, and ours.
	if n := strings.Count(r.stdout, "\n"); n != 4 || !strings.Contains(r.stdout, " server ") {
		t.Errorf("list after two issuances has %d lines:\n%s", n, r.stdout)
	}
	r = must(t, 0, run(t, "", "ca", "show", serial, d))
	for _, w := range []string{"upn        alice@example.test", "principal  alice@EXAMPLE.TEST", "email      alice@example.test", "sid        S-1-5-21-"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("ca show lacks %q:\n%s", w, r.stdout)
		}
	}
	must(t, 0, run(t, "", "ca", "revoke", serial, "--reason", "keyCompromise", d))
	must(t, 1, run(t, "", "ca", "revoke", serial, "--reason", "superseded", d))
	must(t, 1, run(t, "", "ca", "revoke", "1234", "--reason", "superseded", d))
	r = must(t, 0, run(t, "", "ca", "list", "--status", "revoked", d))
	if !strings.Contains(r.stdout, serial) || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("revoked list:\n%s", r.stdout)
	}
	crl := filepath.Join(work, "crl.pem")
	must(t, 0, run(t, "", "ca", "crl", "--out", crl, d))
	if v := openssl(t, "crl", "-in", crl, "-CAfile", filepath.Join(dir, "ca", "chain.pem"), "-noout", "-verify", "-text"); !strings.Contains(v, "verify OK") || !strings.Contains(strings.ToUpper(v), strings.ToUpper(serial)) {
		t.Errorf("openssl crl:\n%s", v)
	}
	r = must(t, 0, run(t, "", "ca", "info", d))
	if !strings.Contains(r.stdout, "last CRL #1") {
		t.Errorf("ca info:\n%s", r.stdout)
	}
	must(t, 0, run(t, "", "ca", "templates", d))
	must(t, 0, run(t, "", "version"))
}

// TestPassphrase: an encrypted CA key is unlocked from a file or the
// environment, a wrong passphrase is a refusal, and the passphrase appears
// in no output.
func TestPassphrase(t *testing.T) {
	const secret = "s3cret-pass-phrase"
	work := t.TempDir()
	dir := filepath.Join(work, "st")
	pf := filepath.Join(work, "pass")
	os.WriteFile(pf, []byte(secret+"\n"), 0o600)
	wrong := filepath.Join(work, "wrong")
	os.WriteFile(wrong, []byte("nope\n"), 0o600)
	t.Setenv("SCSTATION_CA_PASSPHRASE", "")
	var all strings.Builder
	record := func(r result) result { all.WriteString(r.stdout + r.stderr); return r }
	record(must(t, 0, run(t, "", "init", "--domain", "example.test", "--passphrase-file", pf, "--dir", dir, "--log-level", "debug")))
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "ca", "ca.key"))
	if !strings.Contains(string(keyPEM), "ENCRYPTED PRIVATE KEY") {
		t.Fatal("key not encrypted")
	}
	// openssl reads our encrypted key with the passphrase.
	openssl(t, "pkey", "-in", filepath.Join(dir, "ca", "ca.key"), "-passin", "file:"+pf, "-noout")
	record(must(t, 1, run(t, "", "ca", "crl", "--passphrase-file", wrong, "--dir", dir, "--log-level", "debug")))
	record(must(t, 0, run(t, "", "ca", "crl", "--passphrase-file", pf, "--dir", dir, "--log-level", "debug")))
	t.Setenv("SCSTATION_CA_PASSPHRASE", secret)
	record(must(t, 0, run(t, "", "ca", "crl", "--dir", dir, "--log-level", "debug")))
	if strings.Contains(all.String(), secret) {
		t.Fatal("the passphrase appeared in the output")
	}
}

// TestServe runs the real binary's HTTP service and stops it with SIGTERM.
func TestServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	work := t.TempDir()
	bin := filepath.Join(work, "scstation")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := filepath.Join(work, "st")
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", "--dir", dir))
	must(t, 0, run(t, "", "ca", "crl", "--dir", dir))
	must(t, 0, run(t, "", "user", "add", "alice", "--mail", "alice@example.test", "--dir", dir))
	cmd, addrs, _ := startServe(t, bin, dir, t.TempDir())
	resp, err := http.Get("http://" + addrs["http"] + "/ca.crl")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Errorf("GET /ca.crl: %s", resp.Status)
	}
	// The KDC answers a request for an unknown client with a KRB-ERROR.
	if kinit, err := exec.LookPath("kinit"); err == nil {
		krb5conf := filepath.Join(work, "krb5.conf")
		os.WriteFile(krb5conf, []byte("[libdefaults]\n default_realm = EXAMPLE.TEST\n dns_lookup_kdc = false\n udp_preference_limit = 1\n[realms]\n EXAMPLE.TEST = {\n  kdc = "+addrs["kdc"]+"\n }\n"), 0o600)
		c := exec.Command(kinit, "nobody@EXAMPLE.TEST")
		c.Env = append(os.Environ(), "KRB5_CONFIG="+krb5conf, "KRB5CCNAME=FILE:"+filepath.Join(work, "cc"))
		c.Stdin = strings.NewReader("")
		out, _ := c.CombinedOutput()
		if !strings.Contains(string(out), "not found in Kerberos database") {
			t.Errorf("kinit against serve's KDC: %s", out)
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("kinit is not installed")
	}
	// OpenLDAP's client reaches the directory over LDAPS and StartTLS and
	// trusts the services' certificate through the station CA.
	ldapsearch := testpeer.Path(t, "ldapsearch")
	env := append(os.Environ(), "LDAPTLS_CACERT="+filepath.Join(dir, "ca", "chain.pem"), "LDAPTLS_REQCERT=demand", "LDAPCONF=/dev/null")
	_, ldapsPort, _ := net.SplitHostPort(addrs["ldaps"])
	_, ldapPort, _ := net.SplitHostPort(addrs["ldap"])
	for _, args := range [][]string{
		{"-H", "ldaps://localhost:" + ldapsPort},
		{"-ZZ", "-H", "ldap://localhost:" + ldapPort},
	} {
		c := exec.Command(ldapsearch, append(args, "-x", "-LLL", "-b", "dc=example,dc=test", "(uid=alice)", "mail")...)
		c.Env = env
		out, err := c.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "mail: alice@example.test") {
			t.Errorf("ldapsearch %v: %v\n%s", args, err, out)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}
