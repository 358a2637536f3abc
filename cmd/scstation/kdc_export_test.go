package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/kdc/kdctest"
)

// startExportedMITKDC runs MIT krb5kdc from the files scstation kdc export
// wrote into export: its own kdc.conf holds only the database and listen
// address and includes the exported kdc.conf; the clients' krb5.conf
// includes the exported krb5.conf and adds the test port. alice is an
// MIT principal, as the admin must create each user there.
func startExportedMITKDC(t *testing.T, export string) *kdctest.MITKDC {
	t.Helper()
	testpeer.Require(t, "kinit", "klist")
	return kdctest.StartMITKDC(t, kdctest.MITKDCConfig{
		Realm: "EXAMPLE.TEST", PKINITUsers: []string{"alice"},
		Krb5ConfInclude: filepath.Join(export, "krb5.conf"), KDCConfInclude: filepath.Join(export, "kdc.conf"),
	})
}

// mitKinit runs MIT kinit with a FILE: identity against k.
func mitKinit(k *kdctest.MITKDC, cert, key, principal string) (string, error) {
	cmd := exec.Command("kinit", "-X", "X509_user_identity=FILE:"+cert+","+key, principal)
	cmd.Env = k.Env()
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestKDCExportMIT sets up MIT krb5kdc from what scstation kdc export
// wrote, logs alice on with MIT kinit (FILE: identity from the station CA)
// and with scstation logon, then revokes her certificate, re-exports, and
// checks that both are refused once MIT has read the new CRL.
func TestKDCExportMIT(t *testing.T) {
	r := newLogonRealm(t)
	d := "--dir=" + r.dir
	cfg := filepath.Join(r.dir, "config.toml")
	conf, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), `mode = "embedded"`) {
		t.Fatalf("init did not write [kdc] mode:\n%s", conf)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(conf), `mode = "embedded"`, `mode = "external"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaCert, rsaKey := r.issue(t, "alice-rsa", "alice", rk), r.keyFile(t, "alice-rsa", rk)
	ecCert, ecKey := r.issue(t, "alice-ec", "alice", ec), r.keyFile(t, "alice-ec", ec)

	export := filepath.Join(r.work, "export")
	res := must(t, 0, run(t, "", "kdc", "export", "--out", export, "--hostname", "kdc.example.test", "--principal", "host/station.example.test", d))
	contains(t, "export", res.stdout, "KDC certificate", "(issued,", "kdc.pem", "kdc.key", "ca.pem", "crl.pem", "host_station.example.test.keytab", "kdc.conf", "krb5.conf")
	if strings.Contains(res.stderr, "mode is embedded") {
		t.Errorf("external mode not seen: %s", res.stderr)
	}

	k := startExportedMITKDC(t, export)

	if out, err := mitKinit(k, rsaCert, rsaKey, "alice@EXAMPLE.TEST"); err != nil {
		t.Fatalf("MIT kinit against the exported KDC: %v\n%s", err, out)
	}
	if out := klist(t, filepath.Join(k.Dir, "ccache")); !strings.Contains(out, "alice@EXAMPLE.TEST") || !strings.Contains(out, "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST") {
		t.Errorf("klist after kinit:\n%s", out)
	}
	cache := filepath.Join(r.work, "cc")
	res = must(t, 0, run(t, "", "logon", "--user", "alice", "--cert", ecCert, "--key", ecKey, "--kdc", k.Addr, "--ccache", cache, d))
	contains(t, "logon against MIT", res.stdout, "KDC certificate verified", "TGT: alice@EXAMPLE.TEST", "logged on")
	contains(t, "klist", klist(t, cache), "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST")

	// Revoke both certificates; the re-export keeps the KDC certificate and
	// carries the new CRL, which MIT reads when it restarts.
	for _, c := range []string{rsaCert, ecCert} {
		serial := strings.TrimSpace(openssl(t, "x509", "-in", c, "-noout", "-serial"))
		serial = strings.TrimPrefix(serial, "serial=")
		must(t, 0, run(t, "", "ca", "revoke", serial, "--reason", "keyCompromise", d))
	}
	res = must(t, 0, run(t, "", "kdc", "export", "--out", export, "--hostname", "kdc.example.test", d))
	contains(t, "re-export", res.stdout, "(kept,", "crl.pem")
	if strings.Contains(res.stdout, "kdc.key") {
		t.Errorf("re-export rewrote the key:\n%s", res.stdout)
	}
	k.Restart(t)
	if out, err := mitKinit(k, rsaCert, rsaKey, "alice@EXAMPLE.TEST"); err == nil || !strings.Contains(out, "Revoked certificate") {
		t.Errorf("MIT kinit with a revoked certificate: %v\n%s", err, out)
	}
	res = must(t, 1, run(t, "", "logon", "--user", "alice", "--cert", ecCert, "--key", ecKey, "--kdc", k.Addr, d))
	contains(t, "revoked logon against MIT", res.stdout+res.stderr, "KDC_ERR_REVOKED_CERTIFICATE")

	// Refusals of the command itself.
	must(t, 2, run(t, "", "kdc", "export", d))
	must(t, 1, run(t, "", "kdc", "export", "--out", filepath.Join(r.work, "x"), "--principal", "host/unknown.example.test", d))
	if _, err := os.Stat(filepath.Join(r.work, "x")); err == nil {
		t.Error("a refused export wrote its directory")
	}
}
