package directory_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/directory/ldaptest"
	"github.com/scstation/scstation/internal/testpeer"
)

func openStore(t *testing.T) *directory.Store {
	t.Helper()
	s, err := directory.Open(filepath.Join(t.TempDir(), "d.db"), directory.Options{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestLDIFRoundTrip: an export imported into a new store gives the same
// users, SIDs, GUIDs, certificates, passwords and groups.
func TestLDIFRoundTrip(t *testing.T) {
	ctx := context.Background()
	a := openStore(t)
	loadStore(t, a)
	if _, err := a.CreateUser(directory.User{Name: "zoë", UPN: "zoe@example.test", DisplayName: "Zoë Ünïcode"}, []byte("zoe-password-1")); err != nil {
		t.Fatal(err)
	}
	cert := serialCert(t, 5)
	if err := a.AddCertificate("alice", cert); err != nil {
		t.Fatal(err)
	}
	if err := a.AddMember(directory.AdminGroup, "bob"); err != nil {
		t.Fatal(err)
	}
	// A group created before the user it contains: its ID comes first.
	if _, err := a.AddGroup("early", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddUser(directory.User{Name: "late", UPN: "late@example.test"}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddMember("early", "late"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddMember("early", "officers"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	er, err := a.ExportLDIF(ctx, &buf, directory.ExportOptions{Passwords: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "memberOf") || strings.Contains(buf.String(), "modifyTimestamp") {
		t.Error("derived attributes exported")
	}
	b := openStore(t)
	ir, err := b.ImportLDIF(ctx, bytes.NewReader(buf.Bytes()), directory.ImportOptions{BatchSize: 40})
	if err != nil {
		t.Fatal(err)
	}
	if ir.Merged != 4 || ir.Added != er.Entries-4 {
		t.Errorf("import %+v, export %+v", ir, er)
	}
	ua, _ := a.ListUsers(ctx)
	ub, _ := b.ListUsers(ctx)
	if len(ua) != len(ub) {
		t.Fatalf("%d users, then %d", len(ua), len(ub))
	}
	for i := range ua {
		x, y := ua[i], ub[i]
		slices.Sort(x.Groups)
		slices.Sort(y.Groups)
		if x.DN != y.DN || x.SID != y.SID || x.GUID != y.GUID || !x.Created.Equal(y.Created) || x.UPN != y.UPN || x.DisplayName != y.DisplayName ||
			len(x.Certificates) != len(y.Certificates) || !slices.Equal(x.Groups, y.Groups) || x.HasPassword != y.HasPassword {
			t.Errorf("user %s:\n%+v\n%+v", x.Name, x, y)
		}
	}
	if _, err := b.Authenticate("zoe@example.test", []byte("zoe-password-1")); err != nil {
		t.Errorf("password after the round trip: %v", err)
	}
	if ok, _ := b.IsMember(ctx, "early", "alice"); !ok {
		t.Error("nested membership lost")
	}
	if !b.IsAdmin("uid=bob,ou=people,dc=example,dc=test") {
		t.Error("admins membership lost")
	}
	// Importing again: every entry exists.
	if _, err := b.ImportLDIF(ctx, bytes.NewReader(buf.Bytes()), directory.ImportOptions{}); !errors.Is(err, directory.ErrEntryExists) {
		t.Errorf("second import: %v", err)
	}
	r, err := b.ImportLDIF(ctx, bytes.NewReader(buf.Bytes()), directory.ImportOptions{SkipExisting: true})
	if err != nil || r.Skipped != er.Entries-4 || r.Added != 0 {
		t.Errorf("skipping: %+v %v", r, err)
	}
	// Without --passwords, no hashes.
	buf.Reset()
	a.ExportLDIF(ctx, &buf, directory.ExportOptions{})
	if strings.Contains(buf.String(), "userPassword") {
		t.Error("password hash exported")
	}
}

func TestLDIFImportRecords(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	in := `version: 1

# a group before its members, and a group inside a group that comes later
dn: cn=outer,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: outer
member: cn=inner,ou=groups,dc=example,dc=test

dn: cn=inner,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: inner
member: uid=ann,ou=people,dc=example,dc=test

dn: uid=ann,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: upnPrincipal
uid: ann
cn: Ann
sn: Example
userPrincipalName: ann@example.test
memberOf: cn=bogus,dc=example,dc=test

dn: uid=ben,ou=people,dc=example,dc=test
changetype: add
objectClass: inetOrgPerson
uid: ben
cn:: QmVu
userPrincipalName: ben@example.test

dn: uid=ben,ou=people,dc=example,dc=test
changetype: modify
add: mail
mail: ben@example.test
-
replace: cn
cn: Benjamin
-

dn: uid=ben,ou=people,dc=example,dc=test
changetype: modrdn
newrdn: uid=benjamin
deleteoldrdn: 0

dn: uid=benjamin,ou=people,dc=example,dc=test
changetype: delete
`
	r, err := s.ImportLDIF(ctx, strings.NewReader(in), directory.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Added != 4 || r.Modified != 1 || r.Renamed != 1 || r.Deleted != 1 || r.Dropped["memberOf"] != 1 {
		t.Errorf("result %+v", r)
	}
	if ok, err := s.IsMember(ctx, "outer", "ann"); !ok || err != nil {
		t.Errorf("ann in outer: %v %v", ok, err)
	}
	if u, _ := s.User("ann"); u == nil || len(u.Groups) != 1 {
		t.Errorf("ann's memberOf: %+v", u)
	}

	// A failing record: those before it are in, none after.
	s2 := openStore(t)
	bad := "dn: uid=one,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nuid: one\ncn: one\n\n" +
		"dn: uid=two,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nuid: two\ncn: two\nshoeSize: 44\n\n" +
		"dn: uid=three,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nuid: three\ncn: three\n"
	_, err = s2.ImportLDIF(ctx, strings.NewReader(bad), directory.ImportOptions{})
	var ie *directory.ImportError
	if !errors.As(err, &ie) || ie.Line != 6 || directory.CodeOf(err) != directory.ResultUndefinedAttributeType {
		t.Fatalf("bad record: %v", err)
	}
	if _, err := s2.User("one"); err != nil {
		t.Error("the record before the error was not kept")
	}
	if _, err := s2.User("three"); err == nil {
		t.Error("the record after the error was applied")
	}
	// SkipUnknown drops what the schema does not know.
	r, err = s2.ImportLDIF(ctx, strings.NewReader(bad), directory.ImportOptions{SkipUnknown: true, SkipExisting: true})
	if err != nil || r.Added != 2 || r.Skipped != 1 || r.Dropped["shoeSize"] != 1 {
		t.Errorf("skip unknown: %+v %v", r, err)
	}
	// A member that never comes.
	_, err = s2.ImportLDIF(ctx, strings.NewReader("dn: cn=g,ou=groups,dc=example,dc=test\nobjectClass: groupOfNames\ncn: g\nmember: uid=ghost,ou=people,dc=example,dc=test\n"), directory.ImportOptions{})
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing member: %v", err)
	}
	// Malformed LDIF and URL values.
	for _, in := range []string{"dn: uid=x,ou=people,dc=example,dc=test\njpegPhoto:< file:///etc/passwd\n", "not ldif\n"} {
		if _, err := s2.ImportLDIF(ctx, strings.NewReader(in), directory.ImportOptions{}); err == nil {
			t.Errorf("%q imported", in)
		}
	}
}

// TestLDIFInteropSlapd: our OpenLDAP-profile export loads into slapd with
// slapadd and reads back through our client; slapcat's output (folded,
// base64, with OpenLDAP's operational attributes) imports into the store.
func TestLDIFInteropSlapd(t *testing.T) {
	slapcat := testpeer.Path(t, "slapcat")
	ctx := context.Background()
	a := openStore(t)
	loadStore(t, a)
	cert := serialCert(t, 9)
	if err := a.AddCertificate("alice", cert); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddUser(directory.User{Name: "zoë", UPN: "zoe@example.test", DisplayName: "Zoë Ünïcode"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res, err := a.ExportLDIF(ctx, &buf, directory.ExportOptions{Profile: "openldap"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 1 || !strings.HasPrefix(res.Skipped[0], "cn=admins,") {
		t.Errorf("skipped %v", res.Skipped)
	}
	sl := ldaptest.NewSlapd(t, ldaptest.SlapdOptions{LDIF: buf.String() + stationLDIF("dc=example,dc=test"), Database: slapdAccess})
	c := newClient(t, slapdConfig(t, sl))
	u, err := c.LookupUser(ctx, "alice@example.test")
	if err != nil || len(u.Certificates) != 1 || !bytes.Equal(u.Certificates[0], cert) || u.Surname != "Smith" {
		t.Fatalf("alice in slapd: %+v %v", u, err)
	}
	if u, err := c.LookupUser(ctx, "zoë"); err != nil || u.DisplayName != "Zoë Ünïcode" || u.Surname != "Zoë Ünïcode" {
		t.Errorf("zoë in slapd: %+v %v", u, err)
	}
	if ok, err := c.IsMember(ctx, "officers", "alice"); !ok || err != nil {
		t.Errorf("nested group in slapd: %v %v", ok, err)
	}
	// And back: slapcat → ImportLDIF.
	out, err := exec.Command(slapcat, "-f", sl.ConfFile).Output()
	if err != nil {
		t.Fatalf("slapcat: %v", err)
	}
	if !strings.Contains(string(out), "entryUUID") || !strings.Contains(string(out), "\n ") {
		t.Logf("slapcat output has no operational attributes or folding")
	}
	b := openStore(t)
	if _, err := b.ImportLDIF(ctx, bytes.NewReader(out), directory.ImportOptions{}); err == nil || directory.CodeOf(err) != directory.ResultUndefinedAttributeType {
		t.Errorf("slapcat without SkipUnknown: %v", err)
	}
	b = openStore(t)
	r, err := b.ImportLDIF(ctx, bytes.NewReader(out), directory.ImportOptions{SkipUnknown: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Dropped["entryUUID"] == 0 || r.Dropped["objectClass: organizationalRole"] != 1 {
		t.Errorf("dropped %v", r.Dropped)
	}
	u, err = b.User("alice")
	if err != nil || len(u.Certificates) != 1 || u.UPN != "alice@example.test" || len(u.Groups) != 1 {
		t.Errorf("alice back home: %+v %v", u, err)
	}
	if u, err := b.User("zoe@example.test"); err != nil || u.DisplayName != "Zoë Ünïcode" {
		t.Errorf("zoë back home: %+v %v", u, err)
	}
}
