package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestGroupCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "st")
	d := "--dir=" + dir
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", d))
	must(t, 0, run(t, "", "user", "add", "alice", d))
	must(t, 0, run(t, "", "user", "add", "bob", d))
	r := must(t, 0, run(t, "", "group", "add", "staff", "--description", "Card office staff", d))
	if !strings.Contains(r.stdout, "cn=staff,ou=groups,dc=example,dc=test") || !strings.Contains(r.stdout, "objectSid S-1-5-21-") {
		t.Errorf("group add: %s", r.stdout)
	}
	must(t, 1, run(t, "", "group", "add", "staff", d))
	must(t, 2, run(t, "", "group", "add", "bad,name", d))
	must(t, 0, run(t, "", "group", "add", "officers", d))
	must(t, 0, run(t, "", "group", "addmember", "staff", "alice", "bob@example.test", d))
	must(t, 0, run(t, "", "group", "addmember", "staff", "alice", d)) // already a member
	must(t, 0, run(t, "", "group", "addmember", "officers", "staff", d))
	must(t, 1, run(t, "", "group", "addmember", "staff", "nobody", d))
	must(t, 1, run(t, "", "group", "addmember", "nogroup", "alice", d))
	must(t, 2, run(t, "", "group", "addmember", "staff", d))
	r = must(t, 0, run(t, "", "group", "members", "staff", d))
	if r.stdout != "uid=alice,ou=people,dc=example,dc=test\nuid=bob,ou=people,dc=example,dc=test\n" {
		t.Errorf("members: %q", r.stdout)
	}
	r = must(t, 0, run(t, "", "group", "list", d))
	for _, want := range []string{"admins", "officers  1", "staff     2        Card office staff"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := must(t, 0, run(t, "", "user", "show", "alice", d)); !strings.Contains(r.stdout, "cn=staff,ou=groups") {
		t.Errorf("alice's groups: %s", r.stdout)
	}
	must(t, 0, run(t, "", "group", "delmember", "staff", "bob", d))
	must(t, 1, run(t, "", "group", "delmember", "staff", "bob", d))
	must(t, 0, run(t, "", "group", "del", "staff", d))
	must(t, 1, run(t, "", "group", "members", "staff", d))
	must(t, 1, run(t, "", "group", "del", "admins", d)) // part of the structure
	if r := must(t, 0, run(t, "", "group", "members", "officers", d)); r.stdout != "" {
		t.Errorf("officers after staff went: %q", r.stdout)
	}
}
