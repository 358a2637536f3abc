package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

func TestKDCCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "st")
	work := t.TempDir()
	d := "--dir=" + dir
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", d))
	r := must(t, 0, run(t, "", "kdc", "service", "host/station.example.test", d))
	if !strings.Contains(r.stdout, "host/station.example.test@EXAMPLE.TEST kvno 1") {
		t.Errorf("kdc service: %s", r.stdout)
	}
	must(t, 0, run(t, "", "kdc", "service", d, "host/station.example.test"))
	must(t, 2, run(t, "", "kdc", "service", "nohost", d))
	must(t, 0, run(t, "long-enough-pw\n", "kdc", "principal", "admin", "--password-stdin", d))
	must(t, 1, run(t, "long-enough-pw\n", "kdc", "principal", "host/station.example.test", "--password-stdin", d))
	r = must(t, 0, run(t, "", "kdc", "list", d))
	for _, w := range []string{"admin@EXAMPLE.TEST                      password  1", "host/station.example.test@EXAMPLE.TEST  service   2"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("kdc list lacks %q:\n%s", w, r.stdout)
		}
	}
	out := filepath.Join(work, "host.keytab")
	must(t, 0, run(t, "", "kdc", "keytab", "--principal", "host/station.example.test@EXAMPLE.TEST", "--out", out, d))
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keytab file: %v %v", fi, err)
	}
	kt, err := keytab.Load(out)
	if err != nil || len(kt.Entries) != 6 {
		t.Fatalf("keytab: %v, %d entries (want 3 enctypes × 2 versions)", err, len(kt.Entries))
	}
	must(t, 1, run(t, "", "kdc", "keytab", "--principal", "host/station.example.test", "--out", out, d))
	must(t, 0, run(t, "", "kdc", "keytab", "--principal", "host/station.example.test", "--out", out, "--force", d))
	must(t, 1, run(t, "", "kdc", "keytab", "--principal", "nope/x", "--out", filepath.Join(work, "n"), d))
	must(t, 2, run(t, "", "kdc", "keytab", "--principal", "host/x@OTHER.TEST", "--out", filepath.Join(work, "n"), d))
	must(t, 2, run(t, "", "kdc", "keytab", d))
}

// TestKDCServiceAdd registers services on directory accounts with kdc
// service add, lists and exports them, and disables and enables a user.
func TestKDCServiceAdd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "st")
	work := t.TempDir()
	d := "--dir=" + dir
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", d))
	r := must(t, 0, run(t, "", "kdc", "service", "add", "HTTP/web.example.test", "--account", "svc-web", d))
	if !strings.Contains(r.stdout, "HTTP/web.example.test@EXAMPLE.TEST kvno 1 on uid=svc-web,ou=people,dc=example,dc=test") {
		t.Errorf("kdc service add: %s", r.stdout)
	}
	must(t, 0, run(t, "", "kdc", "service", "add", "--account=svc-web", "HTTP/www.example.test@EXAMPLE.TEST", d))
	must(t, 0, run(t, "", "kdc", "service", "add", "host/station.example.test", d))
	must(t, 1, run(t, "", "kdc", "service", "add", "http/WEB.example.test", "--account", "svc-other", d))
	must(t, 2, run(t, "", "kdc", "service", "add", "nohost", d))
	must(t, 2, run(t, "", "kdc", "service", "add", "host/x@OTHER.TEST", d))
	must(t, 2, run(t, "", "kdc", "service", "add", "host/x", "--account", "bad name", d))
	must(t, 1, run(t, "long-enough-pw\n", "kdc", "principal", "HTTP/web.example.test", "--password-stdin", d))
	r = must(t, 0, run(t, "", "kdc", "list", d))
	for _, w := range []string{
		"HTTP/web.example.test@EXAMPLE.TEST      service  2     uid=svc-web,ou=people,dc=example,dc=test",
		"HTTP/www.example.test@EXAMPLE.TEST      service  2     uid=svc-web,ou=people,dc=example,dc=test",
		"host/station.example.test@EXAMPLE.TEST  service  1     uid=svc-host-station,ou=people,dc=example,dc=test",
	} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("kdc list lacks %q:\n%s", w, r.stdout)
		}
	}
	out := filepath.Join(work, "web.keytab")
	must(t, 0, run(t, "", "kdc", "keytab", "--principal", "HTTP/www.example.test", "--out", out, d))
	kt, err := keytab.Load(out)
	if err != nil || len(kt.Entries) != 6 || strings.Join(kt.Entries[0].Principal.Components, "/") != "HTTP/www.example.test" {
		t.Fatalf("keytab: %v, %d entries (want 3 enctypes × 2 versions)", err, len(kt.Entries))
	}

	must(t, 0, run(t, "", "user", "add", "alice", "--mail", "alice@example.test", d))
	r = must(t, 0, run(t, "", "user", "disable", "alice", d))
	if strings.TrimSpace(r.stdout) != "disabled alice" {
		t.Errorf("user disable: %q", r.stdout)
	}
	r = must(t, 0, run(t, "", "user", "show", "alice", d))
	if !strings.Contains(r.stdout, "disabled     yes") {
		t.Errorf("user show of a disabled user:\n%s", r.stdout)
	}
	must(t, 0, run(t, "", "user", "enable", "alice", d))
	r = must(t, 0, run(t, "", "user", "show", "alice", d))
	if strings.Contains(r.stdout, "disabled") {
		t.Errorf("user show after enable:\n%s", r.stdout)
	}
	must(t, 1, run(t, "", "user", "disable", "nobody", d))
	must(t, 2, run(t, "", "user", "disable", d))
}
