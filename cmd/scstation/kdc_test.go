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
