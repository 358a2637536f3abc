package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scstation/scstation/directory/ldaptest"
	"github.com/scstation/scstation/internal/testpeer"
)

func TestLDIFCommands(t *testing.T) {
	work := t.TempDir()
	d1 := "--dir=" + filepath.Join(work, "one")
	d2 := "--dir=" + filepath.Join(work, "two")
	for _, d := range []string{d1, d2} {
		must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", d))
	}
	must(t, 0, run(t, "first-password\n", "user", "add", "alice", "--mail", "alice@example.test", "--name", "Alice Smith", "--password-stdin", d1))
	must(t, 0, run(t, "", "user", "add", "zoë", "--upn", "zoe@example.test", "--name", "Zoë Ünïcode", d1))
	must(t, 0, run(t, "", "group", "add", "staff", d1))
	must(t, 0, run(t, "", "group", "addmember", "staff", "alice", "zoë", d1))
	must(t, 0, run(t, "", "group", "addmember", "admins", "alice", d1))

	// Export to stdout and to a file.
	r := must(t, 0, run(t, "", "ldif", "export", d1))
	if !strings.Contains(r.stdout, "dn: uid=alice,ou=people,dc=example,dc=test\n") || !strings.Contains(r.stdout, "dn:: ") ||
		strings.Contains(r.stdout, "userPassword") || !strings.Contains(r.stderr, "--passwords") {
		t.Errorf("export:\n%s\n%s", r.stdout, r.stderr)
	}
	file := filepath.Join(work, "export.ldif")
	must(t, 0, run(t, "", "ldif", "export", "--passwords", "--out", file, d1))
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", fi, err)
	}
	// Import into the other station: users, SIDs, groups and passwords.
	r = must(t, 0, run(t, "", "ldif", "import", file, d2))
	if !strings.Contains(r.stdout, "3 added") || !strings.Contains(r.stdout, "4 merged") {
		t.Errorf("import: %s", r.stdout)
	}
	s1 := must(t, 0, run(t, "", "user", "show", "alice", d1)).stdout
	s2 := must(t, 0, run(t, "", "user", "show", "alice", d2)).stdout
	sorted := func(s string) string {
		lines := strings.Fields(s)
		slices.Sort(lines)
		return strings.Join(lines, " ")
	}
	if sorted(s1) != sorted(s2) {
		t.Errorf("alice differs:\n%s\n%s", s1, s2)
	}
	if r := must(t, 0, run(t, "", "group", "members", "admins", d2)); !strings.Contains(r.stdout, "uid=alice,") {
		t.Errorf("admins: %s", r.stdout)
	}
	// Again: everything exists (exit 1), unless skipped.
	r = must(t, 1, run(t, "", "ldif", "import", file, d2))
	if !strings.Contains(r.stderr, "already exists") || !strings.Contains(r.stderr, "line ") {
		t.Errorf("second import: %s", r.stderr)
	}
	must(t, 0, run(t, "", "ldif", "import", "--skip-existing", file, d2))
	// From stdin, with change records.
	mods := "dn: uid=alice,ou=people,dc=example,dc=test\nchangetype: modify\nreplace: title\ntitle: Officer\n-\n"
	must(t, 0, run(t, mods, "ldif", "import", "-", d2))
	// Refusals: malformed LDIF and a missing file are usage errors; an
	// unknown attribute is a refusal.
	must(t, 2, run(t, "dn: uid=x,ou=people,dc=example,dc=test\nphoto:< file:///etc/passwd\n", "ldif", "import", "-", d2))
	must(t, 2, run(t, "", "ldif", "import", filepath.Join(work, "missing.ldif"), d2))
	must(t, 1, run(t, "dn: uid=y,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\ncn: y\nshoeSize: 44\n", "ldif", "import", "-", d2))
	must(t, 0, run(t, "dn: uid=y,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\ncn: y\nshoeSize: 44\n", "ldif", "import", "--skip-unknown", "-", d2))
	must(t, 2, run(t, "", "ldif", "export", "--profile", "novell", d2))
}

// TestLDIFExportIntoSlapd: the OpenLDAP-profile export loads into a real
// slapd with slapadd, and ldapsearch reads it back.
func TestLDIFExportIntoSlapd(t *testing.T) {
	ldapsearch := testpeer.Path(t, "ldapsearch")
	d := "--dir=" + filepath.Join(t.TempDir(), "st")
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", d))
	must(t, 0, run(t, "", "user", "add", "alice", "--mail", "alice@example.test", "--name", "Alice Smith", d))
	must(t, 0, run(t, "", "user", "add", "zoë", "--upn", "zoe@example.test", "--name", "Zoë Ünïcode", d))
	must(t, 0, run(t, "", "group", "add", "staff", d))
	must(t, 0, run(t, "", "group", "addmember", "staff", "alice", "zoë", d))
	r := must(t, 0, run(t, "", "ldif", "export", "--profile", "openldap", d))
	if !strings.Contains(r.stderr, "cn=admins,ou=groups") {
		t.Errorf("the empty admins group should be left out: %s", r.stderr)
	}
	s := ldaptest.NewSlapd(t, ldaptest.SlapdOptions{LDIF: r.stdout})
	cmd := exec.Command(ldapsearch, "-H", s.URL, "-x", "-LLL", "-b", s.Suffix, "(|(userPrincipalName=zoe@example.test)(cn=staff))", "displayName", "member", "sn")
	cmd.Env = s.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ldapsearch: %v\n%s", err, out)
	}
	text := strings.ReplaceAll(string(out), "\n ", "")
	if !strings.Contains(text, "dn: cn=staff,ou=groups,dc=example,dc=test") || !strings.Contains(text, "member: uid=alice,ou=people,dc=example,dc=test") ||
		!strings.Contains(text, "displayName:: Wm/DqyDDnG7Dr2NvZGU=") {
		t.Errorf("ldapsearch:\n%s", out)
	}
}
