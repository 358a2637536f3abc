package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scstation/scstation/directory/ldaptest"
)

// TestExternalDirectoryCLI: a station whose config.toml names a real slapd
// as its directory issues from slapd's data through the CLI, and the
// commands that work on the embedded store say it is not in use.
func TestExternalDirectoryCLI(t *testing.T) {
	t.Setenv("SCSTATION_CA_PASSPHRASE", "")
	suffix := "dc=example,dc=test"
	slapd := ldaptest.NewSlapd(t, ldaptest.SlapdOptions{LDIF: "dn: " + suffix + "\nobjectClass: top\nobjectClass: domain\ndc: example\n\n" +
		"dn: ou=people," + suffix + "\nobjectClass: organizationalUnit\nou: people\n\n" +
		"dn: uid=frank,ou=people," + suffix + "\nobjectClass: inetOrgPerson\nobjectClass: upnPrincipal\nuid: frank\ncn: Frank Fischer\nsn: Fischer\n" +
		"mail: frank@example.test\nuserPrincipalName: frank@example.test\n\n"})
	dir := filepath.Join(t.TempDir(), "st")
	work := t.TempDir()
	d := "--dir=" + dir
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", d))
	cfgPath := filepath.Join(dir, "config.toml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	section := fmt.Sprintf("[directory]\n  mode = \"ldap\"\n  url = %q\n  bind_dn = %q\n  base_dn = %q\n  flavor = \"openldap\"\n",
		slapd.URL, slapd.RootDN, suffix)
	cfg = []byte(strings.Replace(string(cfg), "[directory]\n  mode = \"embedded\"\n", section, 1))
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	// The S/MIME signing template without the SID extension (OpenLDAP
	// users have no objectSid).
	if err := os.WriteFile(filepath.Join(dir, "ca", "templates", "mail-nosid.toml"), []byte(
		"name = \"mail-nosid\"\nvalidity = \"8760h\"\nkey_algorithms = [\"p256\"]\nkey_usage = [\"digitalSignature\"]\n"+
			"ext_key_usage = [\"emailProtection\"]\nsubject_alt_names = [\"email\"]\nrequesters = [\"operator\"]\npublish = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	key, csr := filepath.Join(work, "k.pem"), filepath.Join(work, "r.csr")
	openssl(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", "/CN=ignored", "-out", csr)

	// No password yet: a clear error naming where it should be.
	r := run(t, "", "ca", "issue", "--template", "mail-nosid", "--csr", csr, "--user", "frank", d)
	if r.code == 0 || !strings.Contains(r.stderr, "SCSTATION_LDAP_PASSWORD") {
		t.Fatalf("without a password: exit %d\n%s", r.code, r.stderr)
	}
	t.Setenv("SCSTATION_LDAP_PASSWORD", slapd.RootPassword)
	out := filepath.Join(work, "frank.pem")
	must(t, 0, run(t, "", "ca", "issue", "--template", "mail-nosid", "--csr", csr, "--user", "frank", "--out", out, d))
	if v := openssl(t, "x509", "-in", out, "-noout", "-subject", "-ext", "subjectAltName"); !strings.Contains(v, "Frank Fischer") || !strings.Contains(v, "frank@example.test") {
		t.Fatalf("the certificate's names are not slapd's:\n%s", v)
	}
	must(t, 1, run(t, "", "ca", "issue", "--template", "mail-nosid", "--csr", csr, "--user", "nobody", d))
	r = must(t, 2, run(t, "", "user", "list", d))
	if !strings.Contains(r.stderr, "external directory") {
		t.Fatalf("user list: %s", r.stderr)
	}
	// A password in config.toml is refused, and not repeated.
	bad := strings.Replace(string(cfg), "flavor = \"openldap\"\n", "flavor = \"openldap\"\n  password = \"hunter2-secret\"\n", 1)
	if err := os.WriteFile(cfgPath, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, "", "ca", "list", d)
	if r.code == 0 || !strings.Contains(r.stderr, "password") || strings.Contains(r.stderr, "hunter2-secret") {
		t.Fatalf("password in config.toml: exit %d\n%s", r.code, r.stderr)
	}
}
