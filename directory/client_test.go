package directory_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/directory/ldaptest"
)

// The Directory suite runs the same checks against every implementation:
// the embedded store in-process, our client against the embedded server,
// and our client against OpenLDAP's slapd (back-mdb, started by the test).

type fxUser struct {
	name, upn, mail, given, sn string
}

type fxGroup struct {
	name    string
	members []string // user or group names
}

// The fixture: a few named users, a shared mail address, nested groups,
// and enough bulk users to need several pages (page size 50).
var (
	fxUsers = []fxUser{
		{"alice", "alice@example.test", "alice@example.test", "Alice", "Smith"},
		{"bob", "bob@corp.example", "bob@example.test", "Bob", "Jones"},
		{"carol", "carol@example.test", "", "Carol", "King"},
		{"dup1", "dup1@example.test", "shared@example.test", "Dup", "One"},
		{"dup2", "dup2@example.test", "shared@example.test", "Dup", "Two"},
	}
	fxGroups = []fxGroup{
		{"staff", []string{"alice"}},
		{"officers", []string{"bob", "staff"}},
	}
	fxBulk     = 130
	fxPageSize = 50
)

func allFxUsers() []fxUser {
	out := slices.Clone(fxUsers)
	for i := 0; i < fxBulk; i++ {
		n := fmt.Sprintf("p%03d", i)
		out = append(out, fxUser{n, n + "@example.test", n + "@example.test", "Bulk", fmt.Sprintf("User %d", i)})
	}
	return out
}

func displayName(u fxUser) string { return u.given + " " + u.sn }

// loadStore puts the fixture into an embedded store.
func loadStore(t *testing.T, s *directory.Store) {
	t.Helper()
	for _, u := range allFxUsers() {
		if _, err := s.AddUser(directory.User{Name: u.name, UPN: u.upn, Mail: u.mail, GivenName: u.given, Surname: u.sn, DisplayName: displayName(u)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range fxGroups {
		if _, err := s.AddGroup(g.name, "the "+g.name); err != nil {
			t.Fatal(err)
		}
		for _, m := range g.members {
			if err := s.AddMember(g.name, m); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// fixtureLDIF is the fixture for slapd: inetOrgPerson + upnPrincipal
// users under ou=people, groupOfNames under ou=groups.
func fixtureLDIF(suffix string) string {
	return fixtureUsersLDIF(suffix) + fixtureGroupsLDIF(suffix)
}

func fixtureUsersLDIF(suffix string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: top\nobjectClass: domain\ndc: example\n\n", suffix)
	fmt.Fprintf(&b, "dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n", suffix)
	fmt.Fprintf(&b, "dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n\n", suffix)
	for _, u := range allFxUsers() {
		fmt.Fprintf(&b, "dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nobjectClass: upnPrincipal\nuid: %s\ncn: %s\nsn: %s\ngivenName: %s\ndisplayName: %s\nuserPrincipalName: %s\n",
			u.name, suffix, u.name, displayName(u), u.sn, u.given, displayName(u), u.upn)
		if u.mail != "" {
			fmt.Fprintf(&b, "mail: %s\n", u.mail)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func fixtureGroupsLDIF(suffix string) string {
	var b strings.Builder
	dnOf := func(name string) string {
		for _, g := range fxGroups {
			if g.name == name {
				return "cn=" + name + ",ou=groups," + suffix
			}
		}
		return "uid=" + name + ",ou=people," + suffix
	}
	// Groups that others contain come first (slapadd does not check).
	for _, g := range fxGroups {
		fmt.Fprintf(&b, "dn: cn=%s,ou=groups,%s\nobjectClass: groupOfNames\ncn: %s\ndescription: the %s\n", g.name, suffix, g.name, g.name)
		for _, m := range g.members {
			fmt.Fprintf(&b, "member: %s\n", dnOf(m))
		}
		b.WriteString("\n")
	}
	return b.String()
}

type backend struct {
	name string
	// dir opens the directory with the fixture loaded.
	dir func(t *testing.T) (directory.Directory, string)
}

func writeSecret(t *testing.T, pw string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "bindpw")
	if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func newClient(t *testing.T, cfg directory.ClientConfig) *directory.Client {
	t.Helper()
	c, err := directory.NewClient(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func embeddedServer(t *testing.T) *ldaptest.Server {
	// A size limit below the fixture's user count: listing needs paging.
	s := ldaptest.New(t, ldaptest.Options{Limits: directory.Limits{MaxSizeLimit: 100}})
	loadStore(t, s.Store)
	return s
}

func embeddedConfig(t *testing.T, s *ldaptest.Server) directory.ClientConfig {
	return directory.ClientConfig{
		URLs: []string{s.URL}, BindDN: s.AdminDN, PasswordFile: writeSecret(t, s.AdminPassword),
		BaseDN: s.BaseDN, Profile: directory.ProfileEmbedded, PageSize: fxPageSize,
	}
}

// The client binds to slapd as cn=station, which may write but, unlike
// the rootdn, is held to a size limit below the fixture's user count: a
// listing works only if the client pages.
const (
	stationDN = "cn=station,dc=example,dc=test"
	stationPW = "station-password"
)

var slapdAccess = []string{
	`access to * by dn.exact="` + stationDN + `" write by * read`,
	`limits dn.exact="` + stationDN + `" size.soft=100 size.hard=100 size.prtotal=unlimited`,
}

func stationLDIF(suffix string) string {
	return fmt.Sprintf("dn: cn=station,%s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: station\nuserPassword: %s\n\n", suffix, stationPW)
}

func slapdPeer(t *testing.T, opts ldaptest.SlapdOptions) *ldaptest.Slapd {
	opts.LDIF = fixtureLDIF("dc=example,dc=test") + stationLDIF("dc=example,dc=test")
	opts.Database = append(opts.Database, slapdAccess...)
	return ldaptest.NewSlapd(t, opts)
}

func slapdConfig(t *testing.T, s *ldaptest.Slapd) directory.ClientConfig {
	return directory.ClientConfig{
		URLs: []string{s.URL}, BindDN: stationDN, PasswordFile: writeSecret(t, stationPW),
		BaseDN: s.Suffix, UserBase: "ou=people," + s.Suffix, GroupBase: "ou=groups," + s.Suffix,
		Profile: directory.ProfileOpenLDAP, PageSize: fxPageSize,
	}
}

var backends = []backend{
	{"store", func(t *testing.T) (directory.Directory, string) {
		s, err := directory.Open(filepath.Join(t.TempDir(), "d.db"), directory.Options{Domain: "example.test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		loadStore(t, s)
		return s, s.BaseDN()
	}},
	{"embedded-ldap", func(t *testing.T) (directory.Directory, string) {
		s := embeddedServer(t)
		return newClient(t, embeddedConfig(t, s)), s.BaseDN
	}},
	{"slapd", func(t *testing.T) (directory.Directory, string) {
		s := slapdPeer(t, ldaptest.SlapdOptions{})
		return newClient(t, slapdConfig(t, s)), s.Suffix
	}},
	{"slapd-memberof", func(t *testing.T) (directory.Directory, string) {
		// slapadd runs no overlays: the groups go in over LDAP, so
		// that the memberof overlay sees them.
		s := ldaptest.NewSlapd(t, ldaptest.SlapdOptions{MemberOf: true, LDIF: fixtureUsersLDIF("dc=example,dc=test") + stationLDIF("dc=example,dc=test"), Database: slapdAccess})
		ldapAddLDIF(t, s.URL, s.RootDN, s.RootPassword, fixtureGroupsLDIF(s.Suffix))
		cfg := slapdConfig(t, s)
		cfg.Attributes.MemberOf = "memberOf"
		return newClient(t, cfg), s.Suffix
	}},
}

func TestDirectorySuite(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			d, base := b.dir(t)
			runSuite(t, d, base)
		})
	}
}

func runSuite(t *testing.T, d directory.Directory, base string) {
	ctx := context.Background()
	people := "ou=people," + base
	groups := "ou=groups," + base
	aliceDN := "uid=alice," + people

	t.Run("lookup", func(t *testing.T) {
		for _, name := range []string{"alice", "ALICE", "alice@example.test", "Alice@Example.Test", aliceDN, "UID=alice,OU=People," + strings.ToUpper(base)} {
			u, err := d.LookupUser(ctx, name)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !strings.EqualFold(u.DN, aliceDN) || u.Name != "alice" || u.UPN != "alice@example.test" || u.Mail != "alice@example.test" ||
				u.GivenName != "Alice" || u.Surname != "Smith" || u.DisplayName != "Alice Smith" || u.GUID == "" || u.Created.IsZero() {
				t.Errorf("%s: %+v", name, u)
			}
		}
		if u, err := d.LookupUser(ctx, "bob@corp.example"); err != nil || u.Name != "bob" {
			t.Errorf("bob by UPN: %v %v", u, err)
		}
		// Names are values, never filter syntax.
		for _, name := range []string{"nobody", "*", "al*", "alice)(uid=*", "*)(|(uid=*", "alice\x00", "(uid=alice)", "bob@corp.example)(mail=*", "uid=ghost," + people, "cn=staff," + groups, ""} {
			u, err := d.LookupUser(ctx, name)
			if !errors.Is(err, directory.ErrNoSuchUser) {
				t.Errorf("LookupUser(%q) = %v, %v; want ErrNoSuchUser", name, u, err)
			}
		}
	})

	t.Run("mail", func(t *testing.T) {
		u, err := d.UserByMail(ctx, "BOB@example.test")
		if err != nil || u.Name != "bob" {
			t.Fatalf("%v %v", u, err)
		}
		if _, err := d.UserByMail(ctx, "shared@example.test"); !errors.Is(err, directory.ErrAmbiguous) {
			t.Errorf("shared mail: %v", err)
		}
		for _, m := range []string{"nobody@example.test", "*", "*@example.test"} {
			if _, err := d.UserByMail(ctx, m); !errors.Is(err, directory.ErrNoSuchUser) {
				t.Errorf("UserByMail(%q): %v", m, err)
			}
		}
	})

	t.Run("find", func(t *testing.T) {
		names := func(us []*directory.User) []string {
			var out []string
			for _, u := range us {
				out = append(out, u.Name)
			}
			slices.Sort(out)
			return out
		}
		for _, tc := range []struct {
			prefix string
			limit  int
			want   []string
		}{
			{"ali", 10, []string{"alice"}},
			{"Jon", 10, []string{"bob"}},       // surname
			{"bob@corp", 10, []string{"bob"}},  // UPN
			{"carol K", 10, []string{"carol"}}, // display name
			{"dup", 10, []string{"dup1", "dup2"}},
			{"*", 10, nil},
			{"a*", 10, nil},
			{"(", 10, nil},
			{")(uid=*", 10, nil},
			{"\\2a", 10, nil},
		} {
			us, err := d.FindUsers(ctx, tc.prefix, tc.limit)
			if err != nil {
				t.Errorf("FindUsers(%q): %v", tc.prefix, err)
				continue
			}
			if got := names(us); !slices.Equal(got, tc.want) {
				t.Errorf("FindUsers(%q) = %v, want %v", tc.prefix, got, tc.want)
			}
		}
		us, err := d.FindUsers(ctx, "p0", 7)
		if err != nil || len(us) != 7 {
			t.Errorf("limited: %d %v", len(us), err)
		}
	})

	t.Run("list", func(t *testing.T) {
		us, err := d.ListUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for i, u := range us {
			got[u.Name] = true
			if i > 0 && strings.ToLower(us[i-1].Name) > strings.ToLower(u.Name) {
				t.Errorf("not sorted: %s before %s", us[i-1].Name, u.Name)
			}
		}
		for _, u := range allFxUsers() {
			if !got[u.name] {
				t.Errorf("ListUsers lacks %s", u.name)
			}
		}
		if len(us) < fxBulk+len(fxUsers) || len(us) > fxBulk+len(fxUsers)+1 { // +1: the embedded admin
			t.Errorf("ListUsers returned %d users", len(us))
		}
	})

	t.Run("certificates", func(t *testing.T) {
		// Distinct serials: slapd compares certificates by issuer and
		// serial (certificateExactMatch).
		c1, c2 := serialCert(t, 101), serialCert(t, 102)
		if err := d.PublishCertificate(ctx, "carol", c1); err != nil {
			t.Fatal(err)
		}
		if err := d.PublishCertificate(ctx, "carol@example.test", c1); err != nil {
			t.Fatalf("publishing twice: %v", err)
		}
		if err := d.PublishCertificate(ctx, "uid=carol,"+people, c2); err != nil {
			t.Fatal(err)
		}
		certs, err := d.UserCertificates(ctx, "carol")
		if err != nil || len(certs) != 2 || !slices.ContainsFunc(certs, func(c []byte) bool { return bytes.Equal(c, c1) }) || !slices.ContainsFunc(certs, func(c []byte) bool { return bytes.Equal(c, c2) }) {
			t.Errorf("certificates: %d %v", len(certs), err)
		}
		if u, err := d.LookupUser(ctx, "carol"); err != nil || len(u.Certificates) != 2 {
			t.Errorf("user certificates: %v", err)
		}
		if err := d.PublishCertificate(ctx, "carol", []byte("not a certificate")); directory.CodeOf(err) != directory.ResultInvalidAttributeSyntax {
			t.Errorf("bad certificate: %v", err)
		}
		if err := d.PublishCertificate(ctx, "*", c1); !errors.Is(err, directory.ErrNoSuchUser) {
			t.Errorf("wildcard user: %v", err)
		}
		if certs, err := d.UserCertificates(ctx, "alice"); err != nil || len(certs) != 0 {
			t.Errorf("alice: %d %v", len(certs), err)
		}
	})

	t.Run("groups", func(t *testing.T) {
		g, err := d.LookupGroup(ctx, "staff")
		if err != nil {
			t.Fatal(err)
		}
		if g.Name != "staff" || g.Description != "the staff" || len(g.Members) != 1 || !strings.EqualFold(g.Members[0], aliceDN) {
			t.Errorf("staff: %+v", g)
		}
		if g2, err := d.LookupGroup(ctx, "CN=Staff,"+groups); err != nil || g2.Name != "staff" {
			t.Errorf("by DN: %v %v", g2, err)
		}
		for _, name := range []string{"nobody", "*", "staff)(cn=*", aliceDN} {
			if _, err := d.LookupGroup(ctx, name); !errors.Is(err, directory.ErrNoSuchGroup) {
				t.Errorf("LookupGroup(%q): %v", name, err)
			}
		}
		gs, err := d.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var gnames []string
		for _, g := range gs {
			gnames = append(gnames, g.Name)
		}
		if !slices.Contains(gnames, "staff") || !slices.Contains(gnames, "officers") {
			t.Errorf("groups %v", gnames)
		}
		u, _ := d.LookupUser(ctx, "alice")
		if u == nil || !slices.ContainsFunc(u.Groups, func(s string) bool { return strings.EqualFold(s, "cn=staff,"+groups) }) {
			t.Errorf("alice's groups: %v", u)
		}
		for _, tc := range []struct {
			group, member string
			want          bool
		}{
			{"staff", "alice", true},
			{"officers", "alice", true}, // through staff
			{"officers", "staff", true},
			{"officers", "bob", true},
			{"staff", "bob", false},
			{"staff", "carol", false},
			{"staff", "officers", false},
		} {
			ok, err := d.IsMember(ctx, tc.group, tc.member)
			if err != nil || ok != tc.want {
				t.Errorf("IsMember(%s, %s) = %v %v", tc.group, tc.member, ok, err)
			}
		}
		if _, err := d.IsMember(ctx, "staff", "nobody"); !errors.Is(err, directory.ErrNoSuchUser) {
			t.Errorf("IsMember nobody: %v", err)
		}
		if _, err := d.IsMember(ctx, "nogroup", "alice"); !errors.Is(err, directory.ErrNoSuchGroup) {
			t.Errorf("IsMember nogroup: %v", err)
		}
		// Membership changes.
		if err := d.AddGroupMember(ctx, "staff", "carol"); err != nil {
			t.Fatal(err)
		}
		if err := d.AddGroupMember(ctx, "staff", "carol@example.test"); err != nil {
			t.Errorf("adding twice: %v", err)
		}
		if ok, err := d.IsMember(ctx, "officers", "carol"); err != nil || !ok {
			t.Errorf("carol in officers: %v %v", ok, err)
		}
		if g, _ := d.LookupGroup(ctx, "staff"); g == nil || len(g.Members) != 2 {
			t.Errorf("staff after add: %+v", g)
		}
		if err := d.AddGroupMember(ctx, "staff", "nobody"); !errors.Is(err, directory.ErrNoSuchUser) {
			t.Errorf("adding nobody: %v", err)
		}
		if err := d.RemoveGroupMember(ctx, "staff", "carol"); err != nil {
			t.Fatal(err)
		}
		if err := d.RemoveGroupMember(ctx, "staff", "carol"); !errors.Is(err, directory.ErrNotMember) {
			t.Errorf("removing twice: %v", err)
		}
		if ok, _ := d.IsMember(ctx, "staff", "carol"); ok {
			t.Error("carol still in staff")
		}
	})
}

// TestClientSlapdReferrals: referrals and continuation references from a
// real server are reported, never followed.
func TestClientSlapdReferrals(t *testing.T) {
	suffix := "dc=example,dc=test"
	ref := "ldap://elsewhere.invalid/ou=partners,dc=example,dc=test"
	s := ldaptest.NewSlapd(t, ldaptest.SlapdOptions{Database: slapdAccess, LDIF: fixtureLDIF(suffix) + stationLDIF(suffix) + fmt.Sprintf(
		"dn: ou=partners,%s\nobjectClass: referral\nobjectClass: extensibleObject\nou: partners\nref: %s\n\n", suffix, ref)})
	ctx := context.Background()
	// Users below the referral object: the server answers with a referral.
	cfg := slapdConfig(t, s)
	cfg.UserBase = "ou=partners," + suffix
	c := newClient(t, cfg)
	_, err := c.LookupUser(ctx, "alice")
	var re *directory.ReferralError
	if !errors.As(err, &re) || !errors.Is(err, directory.ErrReferral) || len(re.URLs) != 1 || !strings.HasPrefix(re.URLs[0], ref) || directory.CodeOf(err) != directory.ResultReferral {
		t.Fatalf("lookup below a referral: %v", err)
	}
	// The whole tree: a continuation reference. A user that is found is
	// found; one that is not may be behind the reference.
	cfg.UserBase = ""
	c = newClient(t, cfg)
	if u, err := c.LookupUser(ctx, "alice"); err != nil || u.Name != "alice" {
		t.Errorf("alice: %v", err)
	}
	if _, err := c.LookupUser(ctx, "nobody"); !errors.As(err, &re) || !strings.HasPrefix(re.URLs[0], "ldap://elsewhere.invalid/") {
		t.Errorf("missing user with a reference: %v", err)
	}
	us, err := c.ListUsers(ctx)
	if !errors.Is(err, directory.ErrReferral) || len(us) != fxBulk+len(fxUsers) {
		t.Errorf("list with a reference: %d %v", len(us), err)
	}
}

// TestClientTLS: LDAPS and StartTLS against both servers, with the CA pool
// from a file; an untrusted server is refused.
func TestClientTLS(t *testing.T) {
	emb := ldaptest.New(t, ldaptest.Options{})
	sl := ldaptest.NewSlapd(t, ldaptest.SlapdOptions{TLS: true, Database: slapdAccess, LDIF: fixtureLDIF("dc=example,dc=test") + stationLDIF("dc=example,dc=test")})
	embCfg := func() directory.ClientConfig {
		return directory.ClientConfig{BindDN: emb.AdminDN, PasswordFile: writeSecret(t, emb.AdminPassword), BaseDN: emb.BaseDN, Profile: directory.ProfileEmbedded, CAFile: emb.CACertFile}
	}
	slCfg := func() directory.ClientConfig {
		c := slapdConfig(t, sl)
		c.CAFile = sl.CACertFile
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  func() directory.ClientConfig
		url  string
		tls  bool
		user string
	}{
		{"embedded-ldaps", embCfg, emb.LDAPSURL, false, "admin"},
		{"embedded-starttls", embCfg, emb.URL, true, "admin"},
		{"slapd-ldaps", slCfg, sl.LDAPSURL, false, "alice"},
		{"slapd-starttls", slCfg, sl.URL, true, "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg()
			cfg.URLs, cfg.StartTLS = []string{tc.url}, tc.tls
			c := newClient(t, cfg)
			if u, err := c.LookupUser(context.Background(), tc.user); err != nil || u.Name != tc.user {
				t.Errorf("lookup over TLS: %v", err)
			}
			// Another CA: the handshake fails.
			other := ldaptest.New(t, ldaptest.Options{})
			cfg.CAFile = other.CACertFile
			if _, err := directory.NewClient(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("untrusted server accepted: %v", err)
			}
		})
	}
}

func TestClientConfig(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{NoTLS: true})
	ctx := context.Background()
	base := func() directory.ClientConfig {
		return directory.ClientConfig{URLs: []string{s.URL}, BindDN: s.AdminDN, BaseDN: s.BaseDN, Profile: directory.ProfileEmbedded}
	}
	// The password from an environment variable.
	t.Setenv("SCSTATION_TEST_BINDPW", s.AdminPassword)
	cfg := base()
	cfg.PasswordEnv = "SCSTATION_TEST_BINDPW"
	newClient(t, cfg)
	// Refusals.
	for _, tc := range []struct {
		name string
		mod  func(*directory.ClientConfig)
		want string
	}{
		{"no password", func(c *directory.ClientConfig) {}, "needs a password"},
		{"empty env", func(c *directory.ClientConfig) { c.PasswordEnv = "SCSTATION_TEST_UNSET" }, "is empty"},
		{"env and file", func(c *directory.ClientConfig) {
			c.PasswordEnv, c.PasswordFile = "SCSTATION_TEST_BINDPW", "/nonexistent"
		}, "not both"},
		{"wrong password", func(c *directory.ClientConfig) { c.PasswordFile = writeSecret(t, "wrong-password") }, "Invalid Credentials"},
		{"bad URL", func(c *directory.ClientConfig) {
			c.URLs = []string{"http://x"}
			c.PasswordEnv = "SCSTATION_TEST_BINDPW"
		}, "not an ldap"},
		{"bad profile", func(c *directory.ClientConfig) { c.Profile = "novell"; c.PasswordEnv = "SCSTATION_TEST_BINDPW" }, "unknown profile"},
		{"bad attribute", func(c *directory.ClientConfig) {
			c.Attributes.Login = "uid=*)(x"
			c.PasswordEnv = "SCSTATION_TEST_BINDPW"
		}, "not an attribute"},
		{"bad filter", func(c *directory.ClientConfig) {
			c.Attributes.UserFilter = "(objectClass=user"
			c.PasswordEnv = "SCSTATION_TEST_BINDPW"
		}, "user_filter"},
		{"nothing listening", func(c *directory.ClientConfig) {
			c.URLs = []string{"ldap://127.0.0.1:1"}
			c.PasswordEnv = "SCSTATION_TEST_BINDPW"
		}, "refused"},
		{"password bind in the clear", func(c *directory.ClientConfig) {
			c.URLs = []string{"ldap://" + hostAlias(t, s)}
			c.PasswordEnv = "SCSTATION_TEST_BINDPW"
		}, "needs TLS"},
	} {
		cfg := base()
		tc.mod(&cfg)
		_, err := directory.NewClient(ctx, cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// Failover: the first URL is dead, the second works.
	cfg = base()
	cfg.PasswordEnv = "SCSTATION_TEST_BINDPW"
	cfg.URLs = []string{"ldap://127.0.0.1:1", s.URL}
	c := newClient(t, cfg)
	if _, err := c.LookupUser(ctx, "admin"); err != nil {
		t.Error(err)
	}
}

// hostAlias serves s also on a non-loopback address of this machine and
// returns it (host:port); the test is skipped when there is none.
func hostAlias(t *testing.T, s *ldaptest.Server) string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ipn.IP.String(), "0"))
		if err != nil {
			continue
		}
		go s.Server.Serve(ln)
		return ln.Addr().String()
	}
	t.Skip("no non-loopback address")
	return ""
}

// TestClientReconnect: when the server drops the connection, the next
// operation reconnects.
func TestClientReconnect(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{NoTLS: true, Limits: directory.Limits{IdleTimeout: 200 * time.Millisecond}})
	c := newClient(t, directory.ClientConfig{URLs: []string{s.URL}, BindDN: s.AdminDN, PasswordFile: writeSecret(t, s.AdminPassword), BaseDN: s.BaseDN, Profile: directory.ProfileEmbedded})
	ctx := context.Background()
	if _, err := c.LookupUser(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	// The server's idle timeout closes the connection; the next lookup
	// reconnects.
	for i := 0; i < 3; i++ {
		time.Sleep(400 * time.Millisecond)
		if _, err := c.LookupUser(ctx, "admin"); err != nil {
			t.Fatalf("after idle close: %v", err)
		}
	}
}

// ldapAddLDIF adds simple LDIF content records (no base64, no folding)
// with go-ldap.
func ldapAddLDIF(t *testing.T, url, dn, pw, ldif string) {
	t.Helper()
	c, err := ldap.DialURL(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(dn, pw); err != nil {
		t.Fatal(err)
	}
	for _, rec := range strings.Split(strings.TrimSpace(ldif), "\n\n") {
		var req *ldap.AddRequest
		attrs := map[string][]string{}
		var order []string
		for _, line := range strings.Split(rec, "\n") {
			k, v, _ := strings.Cut(line, ": ")
			if k == "dn" {
				req = ldap.NewAddRequest(v, nil)
				continue
			}
			if attrs[k] == nil {
				order = append(order, k)
			}
			attrs[k] = append(attrs[k], v)
		}
		for _, k := range order {
			req.Attribute(k, attrs[k])
		}
		if err := c.Add(req); err != nil {
			t.Fatalf("adding %s: %v", req.DN, err)
		}
	}
}

func serialCert(t *testing.T, serial int64) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "client test"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
