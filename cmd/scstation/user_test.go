package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestUserCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "st")
	d := "--dir=" + dir
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", d))
	// A password the policy refuses leaves no user behind.
	r := must(t, 1, run(t, "short\n", "user", "add", "dora", "--password-stdin", d))
	if !strings.Contains(r.stderr, "at least 8") {
		t.Errorf("stderr: %s", r.stderr)
	}
	must(t, 1, run(t, "", "user", "show", "dora", d))
	must(t, 2, run(t, "", "user", "add", "dora", "--password-stdin", d))
	must(t, 2, run(t, "", "user", "add", "bad name", d))
	must(t, 0, run(t, "first-password\n", "user", "add", "dora", "--password-stdin", "--mail", "dora@example.test", d))
	r = must(t, 0, run(t, "", "user", "show", "dora@example.test", d))
	for _, want := range []string{"dn           uid=dora,ou=people,dc=example,dc=test", "password     yes", "mail         dora@example.test"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("user show lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout+r.stderr, "first-password") {
		t.Error("the password was printed")
	}
	must(t, 0, run(t, "", "user", "add", "eve", d))
	must(t, 2, run(t, "", "user", "passwd", "eve", d)) // no terminal, no --password-stdin
	must(t, 1, run(t, "pw\n", "user", "passwd", "eve", "--password-stdin", d))
	must(t, 1, run(t, "long-enough\n", "user", "passwd", "nobody", "--password-stdin", d))
	must(t, 2, run(t, "two\nlines\n", "user", "passwd", "eve", "--password-stdin", d))
	must(t, 0, run(t, "long-enough\n", "user", "passwd", "--password-stdin", "eve", d))
	if r := must(t, 0, run(t, "", "user", "show", "eve", d)); !strings.Contains(r.stdout, "password     yes") {
		t.Errorf("eve: %s", r.stdout)
	}
	r = must(t, 0, run(t, "", "user", "list", d))
	if !strings.Contains(r.stdout, "dora") || !strings.Contains(r.stdout, "eve") {
		t.Errorf("list: %s", r.stdout)
	}
	must(t, 0, run(t, "", "user", "del", "eve", d))
	must(t, 1, run(t, "", "user", "del", "eve", d))
}
