package directory_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/directory/ldaptest"
	"github.com/scstation/scstation/internal/testpeer"
)

// These tests drive the embedded server with OpenLDAP's command-line
// clients (ldap-utils), over plain LDAP, StartTLS (-ZZ) and LDAPS.

type peerResult struct {
	code           int
	stdout, stderr string
}

// peer runs an OpenLDAP client tool against s.
func peer(t *testing.T, s *ldaptest.Server, stdin string, tool string, args ...string) peerResult {
	t.Helper()
	return runTool(t, s.Env(), stdin, tool, args...)
}

// runTool runs tool with env and stdin; a failure to run it at all fails
// the test, an exit code does not.
func runTool(t *testing.T, env []string, stdin string, tool string, args ...string) peerResult {
	t.Helper()
	path := testpeer.Path(t, tool)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return peerResult{code, out.String(), errb.String()}
}

func mustPeer(t *testing.T, want int, r peerResult) peerResult {
	t.Helper()
	if r.code != want {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, want, r.stdout, r.stderr)
	}
	return r
}

type transport struct {
	name string
	args func(s *ldaptest.Server) []string
}

var transports = []transport{
	{"ldap", func(s *ldaptest.Server) []string { return []string{"-H", s.URL} }},
	{"starttls", func(s *ldaptest.Server) []string { return []string{"-H", s.URL, "-ZZ"} }},
	{"ldaps", func(s *ldaptest.Server) []string { return []string{"-H", s.LDAPSURL} }},
}

func TestOpenLDAPClients(t *testing.T) {
	testpeer.Require(t, "ldapsearch", "ldapadd", "ldapmodify", "ldapdelete", "ldapcompare", "ldapmodrdn", "ldapwhoami", "ldappasswd")
	s := ldaptest.New(t, ldaptest.Options{})
	cert := base64.StdEncoding.EncodeToString(mustCert(t))
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			h := tr.args(s)
			admin := append(append([]string{}, h...), "-x", "-D", s.AdminDN, "-w", s.AdminPassword)
			anon := append(append([]string{}, h...), "-x")
			user := "uid=" + tr.name + ",ou=people," + s.BaseDN
			r := mustPeer(t, 0, peer(t, s, "", "ldapwhoami", admin...))
			if strings.TrimSpace(r.stdout) != "dn:"+s.AdminDN {
				t.Errorf("ldapwhoami: %q", r.stdout)
			}
			if r := mustPeer(t, 0, peer(t, s, "", "ldapwhoami", anon...)); strings.TrimSpace(r.stdout) != "anonymous" {
				t.Errorf("anonymous ldapwhoami: %q", r.stdout)
			}
			ldif := fmt.Sprintf(`dn: %s
objectClass: inetOrgPerson
cn: Test User %[2]s
sn: User
uid: %[2]s
mail: %[2]s@example.test
userPrincipalName: %[2]s@example.test
userPassword: first-password
userCertificate;binary:: %[3]s

dn: cn=group-%[2]s,ou=groups,%[4]s
objectClass: groupOfNames
cn: group-%[2]s
member: %[1]s
`, user, tr.name, cert, s.BaseDN)
			mustPeer(t, 0, peer(t, s, ldif, "ldapadd", admin...))
			r = mustPeer(t, 0, peer(t, s, "", "ldapsearch", append(append([]string{}, anon...), "-LLL", "-b", s.BaseDN, "(uid="+tr.name+")", "mail", "userCertificate;binary", "memberOf", "userPassword")...))
			for _, want := range []string{"dn: " + user, "mail: " + tr.name + "@example.test", "userCertificate;binary:: ", "memberOf: cn=group-" + tr.name} {
				if !strings.Contains(unfold(r.stdout), want) {
					t.Errorf("ldapsearch output lacks %q:\n%s", want, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "userPassword") {
				t.Errorf("userPassword returned:\n%s", r.stdout)
			}
			mod := fmt.Sprintf(`dn: %s
changetype: modify
add: title
title: Tester
-
replace: displayName
displayName: Test %s
-
delete: sn
`, user, tr.name)
			mustPeer(t, 0, peer(t, s, mod, "ldapmodify", admin...))
			if r := peer(t, s, "", "ldapcompare", append(append([]string{}, anon...), user, "title:Tester")...); r.code != 6 || !strings.Contains(r.stdout, "TRUE") {
				t.Errorf("ldapcompare true: %d %s %s", r.code, r.stdout, r.stderr)
			}
			if r := peer(t, s, "", "ldapcompare", append(append([]string{}, anon...), user, "title:Other")...); r.code != 5 || !strings.Contains(r.stdout, "FALSE") {
				t.Errorf("ldapcompare false: %d %s", r.code, r.stdout)
			}
			// The user changes their own password (with the old one),
			// then the admin has one generated.
			self := append(append([]string{}, h...), "-x", "-D", user, "-w", "first-password")
			mustPeer(t, 0, peer(t, s, "", "ldappasswd", append(self, "-a", "first-password", "-s", "second-password")...))
			mustPeer(t, 49, peer(t, s, "", "ldapwhoami", self...))
			r = mustPeer(t, 0, peer(t, s, "", "ldappasswd", append(append([]string{}, admin...), user)...))
			gen := regexp.MustCompile(`New password: (\S+)`).FindStringSubmatch(r.stdout)
			if gen == nil {
				t.Fatalf("ldappasswd printed %q", r.stdout)
			}
			mustPeer(t, 0, peer(t, s, "", "ldapwhoami", append(append([]string{}, h...), "-x", "-D", tr.name+"@example.test", "-w", gen[1])...))
			// Rename, then delete.
			mustPeer(t, 0, peer(t, s, "", "ldapmodrdn", append(append([]string{}, admin...), "-r", user, "uid="+tr.name+"-renamed")...))
			renamed := "uid=" + tr.name + "-renamed,ou=people," + s.BaseDN
			r = mustPeer(t, 0, peer(t, s, "", "ldapsearch", append(append([]string{}, anon...), "-LLL", "-b", "cn=group-"+tr.name+",ou=groups,"+s.BaseDN, "-s", "base", "member")...))
			if !strings.Contains(unfold(r.stdout), "member: "+renamed) {
				t.Errorf("group after rename:\n%s", r.stdout)
			}
			mustPeer(t, 0, peer(t, s, "", "ldapdelete", append(append([]string{}, admin...), renamed)...))
			mustPeer(t, 32, peer(t, s, "", "ldapdelete", append(append([]string{}, admin...), renamed)...))
			// Refusals.
			mustPeer(t, 8, peer(t, s, ldif, "ldapadd", anon...))                                                                // anonymous write
			mustPeer(t, 53, peer(t, s, "", "ldapwhoami", append(append([]string{}, h...), "-x", "-D", s.AdminDN, "-w", "")...)) // empty password
			mustPeer(t, 49, peer(t, s, "", "ldapwhoami", append(append([]string{}, h...), "-x", "-D", s.AdminDN, "-w", "wrong")...))
		})
	}
}

// unfold joins LDIF continuation lines.
func unfold(s string) string { return strings.ReplaceAll(s, "\n ", "") }

func TestOpenLDAPPaging(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{Limits: directory.Limits{MaxSizeLimit: 20}})
	for i := 0; i < 45; i++ {
		if _, err := s.Store.AddUser(directory.User{Name: fmt.Sprintf("p%02d", i), UPN: fmt.Sprintf("p%02d@example.test", i)}); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"-H", s.URL, "-x", "-D", s.AdminDN, "-w", s.AdminPassword, "-b", "ou=people," + s.BaseDN, "(uid=p*)", "uid"}
	r := mustPeer(t, 0, peer(t, s, "", "ldapsearch", append([]string{"-E", "pr=10/noprompt"}, base...)...))
	if n := strings.Count(r.stdout, "\ndn: "); n != 45 {
		t.Errorf("paged ldapsearch returned %d entries", n)
	}
	if n := len(regexp.MustCompile(`pagedresults: cookie=\S`).FindAllString(r.stdout, -1)); n != 4 {
		t.Errorf("%d pages with a cookie:\n%s", n, r.stdout)
	}
	// Without paging the server's size limit applies (exit 4).
	r = mustPeer(t, 4, peer(t, s, "", "ldapsearch", base...))
	if n := strings.Count(r.stdout, "\ndn: "); n != 20 {
		t.Errorf("unpaged ldapsearch returned %d entries", n)
	}
	// A critical paged control works too.
	mustPeer(t, 0, peer(t, s, "", "ldapsearch", append([]string{"-E", "!pr=7/noprompt"}, base...)...))
}

func TestOpenLDAPSchemaAndRoot(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{})
	r := mustPeer(t, 0, peer(t, s, "", "ldapsearch", "-H", s.URL, "-x", "-LLL", "-b", "", "-s", "base", "+"))
	for _, want := range []string{"namingContexts: " + s.BaseDN, "supportedLDAPVersion: 3", "supportedExtension: 1.3.6.1.4.1.1466.20037", "supportedControl: 1.2.840.113556.1.4.319", "subschemaSubentry: cn=Subschema"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("root DSE lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustPeer(t, 0, peer(t, s, "", "ldapsearch", "-H", s.URL, "-x", "-LLL", "-b", "cn=Subschema", "-s", "base", "(objectClass=subschema)", "attributeTypes", "objectClasses"))
	for _, want := range []string{"NAME 'userPrincipalName' EQUALITY caseIgnoreMatch", "NAME 'inetOrgPerson' SUP user STRUCTURAL"} {
		if !strings.Contains(unfold(r.stdout), want) {
			t.Errorf("subschema lacks %q", want)
		}
	}
	// Filters: a malformed one never leaves the client; an unknown
	// attribute matches nothing; extensible and negation work.
	if r := peer(t, s, "", "ldapsearch", "-H", s.URL, "-x", "-b", s.BaseDN, "(uid=admin"); r.code == 0 || !strings.Contains(r.stderr, "Bad search filter") {
		t.Errorf("malformed filter: %d %s", r.code, r.stderr)
	}
	for _, tc := range []struct {
		filter string
		n      int
	}{
		{"(shoeSize=44)", 0},
		{"(!(shoeSize=44))", 0},
		{"(|(uid=admin)(shoeSize=44))", 1},
		{"(&(objectClass=user)(!(uid=nobody)))", 1},
		{"(ou:dn:=people)", 2},
		{"(cn=Directory*Admin*)", 1},
		{"(memberOf=cn=admins,ou=groups," + s.BaseDN + ")", 1},
		{"(uid=admin\\29\\28uid=*)", 0},
	} {
		r := mustPeer(t, 0, peer(t, s, "", "ldapsearch", "-H", s.URL, "-x", "-D", s.AdminDN, "-w", s.AdminPassword, "-LLL", "-b", s.BaseDN, tc.filter, "1.1"))
		if n := strings.Count(r.stdout, "dn: "); n != tc.n {
			t.Errorf("%s: %d entries, want %d\n%s", tc.filter, n, tc.n, r.stdout)
		}
	}
}

// TestOversizedPDU sends a request larger than the server accepts with
// ldapmodify: that connection is closed with a notice of disconnection,
// and another connection carries on.
func TestOversizedPDU(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{Limits: directory.Limits{MaxPDU: 256 << 10}})
	bystander := adminConn(t, s)
	big := strings.Repeat("x", 300<<10)
	ldif := "dn: uid=admin,ou=people," + s.BaseDN + "\nchangetype: modify\nreplace: description\ndescription: " + big + "\n"
	r := peer(t, s, ldif, "ldapmodify", "-H", s.URL, "-x", "-D", s.AdminDN, "-w", s.AdminPassword)
	if r.code == 0 {
		t.Fatal("an oversized modify succeeded")
	}
	if !strings.Contains(r.stderr, "Can't contact LDAP server") && !strings.Contains(r.stderr, "Protocol error") {
		t.Errorf("ldapmodify said: %s", r.stderr)
	}
	if _, err := bystander.WhoAmI(nil); err != nil {
		t.Errorf("the other connection suffered: %v", err)
	}
	res, err := bystander.Search(ldap.NewSearchRequest(s.AdminDN, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"description"}, nil))
	if err != nil || res.Entries[0].GetAttributeValue("description") != "" {
		t.Errorf("the oversized change was applied: %v", err)
	}
}
