package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/kdc/kdctest"
)

// exportedMITKDC is MIT krb5kdc run from the files scstation kdc export
// wrote: its own kdc.conf holds only the database and listen address and
// includes the exported kdc.conf; the clients' krb5.conf includes the
// exported krb5.conf and adds the test port.
type exportedMITKDC struct {
	dir, addr string
	env       []string
	progs     []string // krb5kdc, kdb5_util, kadmin.local
	stop      func()
}

func newExportedMITKDC(t *testing.T, export, realm string) *exportedMITKDC {
	t.Helper()
	k := &exportedMITKDC{dir: t.TempDir(), progs: testpeer.Require(t, "krb5kdc", "kdb5_util", "kadmin.local")}
	testpeer.Require(t, "kinit")
	if err := os.MkdirAll(filepath.Join(k.dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k.dir, "db", "kadm5.acl"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	k.env = append(os.Environ(), "KRB5_CONFIG="+filepath.Join(k.dir, "krb5.conf"), "KRB5_KDC_PROFILE="+filepath.Join(k.dir, "kdc.conf"),
		"KRB5CCNAME=FILE:"+filepath.Join(k.dir, "ccache"), "KRB5RCACHEDIR="+k.dir)
	k.configure(t, export, realm)
	k.run(t, k.progs[1], "create", "-s", "-r", realm, "-P", "masterpw")
	return k
}

// configure writes the KDC's and the clients' configuration for a new
// free port around the exported files.
func (k *exportedMITKDC) configure(t *testing.T, export, realm string) {
	t.Helper()
	port, err := kdctest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	k.addr = fmt.Sprintf("127.0.0.1:%d", port)
	kdcConf := fmt.Sprintf("[kdcdefaults]\n\tkdc_listen = %[2]s\n\tkdc_tcp_listen = %[2]s\n"+
		"[realms]\n\t%[1]s = {\n\t\tdatabase_name = %[3]s/db/principal\n\t\tkey_stash_file = %[3]s/db/stash\n\t\tacl_file = %[3]s/db/kadm5.acl\n\t}\n"+
		"[logging]\n\tkdc = FILE:%[3]s/kdc.log\ninclude %[4]s\n", realm, k.addr, k.dir, filepath.Join(export, "kdc.conf"))
	krb5 := fmt.Sprintf("include %[3]s\n[libdefaults]\n\tdns_lookup_kdc = false\n\trdns = false\n\tudp_preference_limit = 1\n"+
		"[realms]\n\t%[1]s = {\n\t\tkdc = %[2]s\n\t}\n", realm, k.addr, filepath.Join(export, "krb5.conf"))
	for name, text := range map[string]string{"kdc.conf": kdcConf, "krb5.conf": krb5} {
		if err := os.WriteFile(filepath.Join(k.dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func (k *exportedMITKDC) run(t *testing.T, prog string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = k.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// start runs krb5kdc until stop or the end of the test; MIT reads the
// PKINIT files (and the CRL) when it starts.
func (k *exportedMITKDC) start(t *testing.T, export, realm string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		cmd := exec.Command(k.progs[0], "-n", "-r", realm)
		cmd.Env = k.env
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		for {
			select {
			case err := <-exited:
				if attempt < 3 {
					k.configure(t, export, realm) // the port was taken: another one
					goto retry
				}
				t.Fatalf("krb5kdc exited: %v\n%s", err, out)
			default:
			}
			if c, err := net.DialTimeout("tcp", k.addr, 200*time.Millisecond); err == nil {
				c.Close()
				stopped := false
				k.stop = func() {
					if !stopped {
						stopped = true
						cmd.Process.Kill()
						<-exited
					}
				}
				t.Cleanup(k.stop)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	retry:
	}
}

func (k *exportedMITKDC) kinit(cert, key, principal string) (string, error) {
	cmd := exec.Command("kinit", "-X", "X509_user_identity=FILE:"+cert+","+key, principal)
	cmd.Env = k.env
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

	k := newExportedMITKDC(t, export, "EXAMPLE.TEST")
	// What the admin must do on the MIT side: the users.
	k.run(t, k.progs[2], "-r", "EXAMPLE.TEST", "-q", "addprinc +requires_preauth -nokey alice")
	k.start(t, export, "EXAMPLE.TEST")
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(k.dir, "kdc.log"))
			t.Logf("krb5kdc log:\n%s", log)
		}
	})

	if out, err := k.kinit(rsaCert, rsaKey, "alice@EXAMPLE.TEST"); err != nil {
		t.Fatalf("MIT kinit against the exported KDC: %v\n%s", err, out)
	}
	if out := k.run(t, "klist"); !strings.Contains(out, "alice@EXAMPLE.TEST") || !strings.Contains(out, "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST") {
		t.Errorf("klist after kinit:\n%s", out)
	}
	cache := filepath.Join(r.work, "cc")
	res = must(t, 0, run(t, "", "logon", "--user", "alice", "--cert", ecCert, "--key", ecKey, "--kdc", k.addr, "--ccache", cache, d))
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
	k.stop()
	k.start(t, export, "EXAMPLE.TEST")
	if out, err := k.kinit(rsaCert, rsaKey, "alice@EXAMPLE.TEST"); err == nil || !strings.Contains(out, "Revoked certificate") {
		t.Errorf("MIT kinit with a revoked certificate: %v\n%s", err, out)
	}
	res = must(t, 1, run(t, "", "logon", "--user", "alice", "--cert", ecCert, "--key", ecKey, "--kdc", k.addr, d))
	contains(t, "revoked logon against MIT", res.stdout+res.stderr, "KDC_ERR_REVOKED_CERTIFICATE")

	// Refusals of the command itself.
	must(t, 2, run(t, "", "kdc", "export", d))
	must(t, 1, run(t, "", "kdc", "export", "--out", filepath.Join(r.work, "x"), "--principal", "host/unknown.example.test", d))
	if _, err := os.Stat(filepath.Join(r.work, "x")); err == nil {
		t.Error("a refused export wrote its directory")
	}
}
