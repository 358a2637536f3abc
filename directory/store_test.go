package directory

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dir.db")
	s, err := Open(p, Options{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p
}

func testCert(t testing.TB, cn string) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

var sidRE = regexp.MustCompile(`^S-1-5-21-\d+-\d+-\d+-\d+$`)

func TestLayout(t *testing.T) {
	s, _ := openTemp(t)
	if s.BaseDN() != "dc=example,dc=test" || s.PeopleDN() != "ou=people,dc=example,dc=test" || s.AdminGroupDN() != "cn=admins,ou=groups,dc=example,dc=test" {
		t.Fatalf("layout %s %s %s", s.BaseDN(), s.PeopleDN(), s.AdminGroupDN())
	}
	root, err := s.Get("DC=Example, DC=Test")
	if err != nil {
		t.Fatal(err)
	}
	dom, _ := s.DomainSID()
	if sid, _ := SIDString([]byte(root.Value("objectSid"))); sid != dom {
		t.Errorf("base objectSid %s, domain %s", sid, dom)
	}
	g, err := s.Group(AdminGroup)
	if err != nil || g.SID != dom+"-512" {
		t.Errorf("admins: %+v %v", g, err)
	}
	for _, d := range []string{"", "example.test.", "a..b", "-a.b", "a b.c"} {
		if _, err := BaseDNForDomain(d); err == nil && d != "example.test." {
			t.Errorf("domain %q accepted", d)
		}
	}
	// A store opened with another base DN is refused.
	p := filepath.Join(t.TempDir(), "x.db")
	s2, err := Open(p, Options{Domain: "a.test"})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if _, err := Open(p, Options{Domain: "b.test"}); err == nil || !strings.Contains(err.Error(), "dc=a,dc=test") {
		t.Errorf("reopen with another domain: %v", err)
	}
}

func TestUsers(t *testing.T) {
	s, path := openTemp(t)
	a, err := s.AddUser(User{Name: "alice", UPN: "alice@example.test", Mail: "alice@example.test", DisplayName: "Alice"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.AddUser(User{Name: "bob", UPN: "Bob@Example.Test"})
	if err != nil {
		t.Fatal(err)
	}
	if !sidRE.MatchString(a.SID) || a.SID == b.SID || a.GUID == b.GUID || a.GUID == "" {
		t.Errorf("SIDs %q %q GUIDs %q %q", a.SID, b.SID, a.GUID, b.GUID)
	}
	if a.DN != "uid=alice,ou=people,dc=example,dc=test" {
		t.Errorf("DN %s", a.DN)
	}
	dom, _ := s.DomainSID()
	if a.SID != dom+"-1100" || b.SID != dom+"-1101" {
		t.Errorf("RIDs: %s %s under %s", a.SID, b.SID, dom)
	}
	for _, tc := range []struct {
		u    User
		want error
	}{
		{User{Name: "ALICE", UPN: "x@example.test"}, ErrUserExists},
		{User{Name: "carol", UPN: "ALICE@EXAMPLE.TEST"}, ErrUPNInUse},
		{User{Name: "", UPN: "x@example.test"}, nil},
		{User{Name: "c d", UPN: "cd@example.test"}, nil},
		{User{Name: "carol", UPN: "carol"}, nil},
		{User{Name: "carol", UPN: "carol@example.test", Mail: "Carol <c@x>"}, nil},
		{User{Name: "carol", UPN: "carol@example.test", DisplayName: "a\nb"}, nil},
		{User{Name: "x)(uid=*", UPN: "x@example.test"}, nil},
	} {
		_, err := s.AddUser(tc.u)
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("AddUser(%+v): %v, want %v", tc.u, err, tc.want)
		}
	}
	for _, name := range []string{"alice", "ALICE", "alice@EXAMPLE.test", "uid=alice,ou=people,dc=example,dc=test"} {
		if u, err := s.User(name); err != nil || u.Name != "alice" || u.DisplayName != "Alice" {
			t.Errorf("User(%q): %v %v", name, u, err)
		}
	}
	for _, name := range []string{"nobody", "*", "alice*", "alice)(uid=*", "*)(objectClass=*", "", "admins@example.test.x", "cn=admins,ou=groups,dc=example,dc=test"} {
		if _, err := s.User(name); !errors.Is(err, ErrNoSuchUser) {
			t.Errorf("User(%q): %v, want no such user", name, err)
		}
	}
	cert := testCert(t, "alice")
	if err := s.AddCertificate("alice", cert); err != nil {
		t.Fatal(err)
	}
	s.AddCertificate("alice", cert)
	if u, _ := s.User("alice"); len(u.Certificates) != 1 {
		t.Errorf("%d certificates after adding one twice", len(u.Certificates))
	}
	if err := s.AddCertificate("alice", []byte{1, 2, 3}); CodeOf(err) != ResultInvalidAttributeSyntax {
		t.Errorf("garbage certificate: %v", err)
	}
	// A second open of the same file fails at once, naming the problem.
	if _, err := Open(path, Options{Domain: "example.test"}); !errors.Is(err, ErrInUse) {
		t.Errorf("second open: %v", err)
	}
	if err := s.DeleteUser("bob@example.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddUser(User{Name: "bob2", UPN: "bob@example.test"}); err != nil {
		t.Errorf("the UPN of a deleted user stays taken: %v", err)
	}
	users, _ := s.Users()
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if !slices.Equal(names, []string{"alice", "bob2"}) {
		t.Errorf("users %v", names)
	}
	// Search as you type; the prefix is data, never filter syntax.
	for _, tc := range []struct {
		prefix string
		want   int
	}{{"al", 1}, {"ALI", 1}, {"b", 1}, {"*", 0}, {"a*)(uid=*", 0}, {"", 2}} {
		got, err := s.FindUsers(context.Background(), tc.prefix, 10)
		if err != nil || len(got) != tc.want {
			t.Errorf("FindUsers(%q): %d users, %v; want %d", tc.prefix, len(got), err, tc.want)
		}
	}
	// Everything survives a reopen.
	s.Close()
	s2, err := Open(path, Options{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if u, err := s2.User("alice"); err != nil || u.SID != a.SID || len(u.Certificates) != 1 {
		t.Errorf("after reopen: %+v %v", u, err)
	}
	if c, err := s2.AddUser(User{Name: "carol", UPN: "carol@example.test"}); err != nil || c.SID != dom+"-1103" {
		t.Errorf("RID after reopen: %v %v", c, err)
	}
}

func TestPasswords(t *testing.T) {
	s, _ := openTemp(t)
	if _, err := s.CreateUser(User{Name: "dave", UPN: "dave@example.test"}, []byte("short")); !errors.Is(err, ErrPasswordPolicy) {
		t.Fatalf("short password: %v", err)
	}
	if _, err := s.User("dave"); !errors.Is(err, ErrNoSuchUser) {
		t.Fatal("a refused password left a user behind")
	}
	u, err := s.CreateUser(User{Name: "dave", UPN: "dave@example.test"}, []byte("correct horse"))
	if err != nil || !u.HasPassword {
		t.Fatal(u, err)
	}
	e, _ := s.Get(u.DN)
	if v := e.Value("userPassword"); !strings.HasPrefix(v, "{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(v, "horse") {
		t.Errorf("stored %q", v)
	}
	for _, tc := range []struct {
		name, pw string
		ok       bool
	}{
		{u.DN, "correct horse", true},
		{"UID=Dave,OU=People,DC=Example,DC=Test", "correct horse", true},
		{"dave@EXAMPLE.test", "correct horse", true},
		{u.DN, "wrong horse", false},
		{u.DN, "", false},
		{"uid=nobody,ou=people,dc=example,dc=test", "correct horse", false},
		{"dave", "correct horse", false}, // neither a DN nor a UPN
		{s.AdminGroupDN(), "x", false},   // no password
	} {
		dn, err := s.Authenticate(tc.name, []byte(tc.pw))
		if tc.ok != (err == nil) || tc.ok && dn != u.DN {
			t.Errorf("Authenticate(%q, %q) = %q, %v", tc.name, tc.pw, dn, err)
		}
		if !tc.ok && CodeOf(err) != ResultInvalidCredentials {
			t.Errorf("Authenticate(%q): code %v", tc.name, CodeOf(err))
		}
	}
	if err := s.SetPassword("dave", []byte("battery staple")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(u.DN, []byte("correct horse")); err == nil {
		t.Error("old password still works")
	}
	if _, err := s.Authenticate(u.DN, []byte("battery staple")); err != nil {
		t.Error(err)
	}
	// Pre-hashed values of accepted schemes are stored as given; others refused.
	for _, tc := range []struct {
		v    string
		code ResultCode
	}{
		{"{SSHA512}" + "tOR9mv00dfyPc+V5hIjQA64yckpz4NKCAnhhkZEukM/QwBTfNdaS4XPUGZsGtLLIk+y9She4pyD+q9nTgfRzAXNhbHRzYWx0", ResultSuccess},
		{"{SSHA}abcd", ResultUnwillingToPerform},
		{"{CRYPT}$6$x$y", ResultUnwillingToPerform},
		{"{ARGON2}$argon2id$v=19$m=999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", ResultInvalidAttributeSyntax},
		{"tiny", ResultConstraintViolation},
	} {
		_, err := s.Modify("", u.DN, []Modification{{Op: ModReplace, Attr: Attribute{Name: "userPassword", Values: [][]byte{[]byte(tc.v)}}}})
		if CodeOf(err) != tc.code {
			t.Errorf("userPassword %q: %v, want %v", tc.v, err, tc.code)
		}
	}
}

func TestSSHA512(t *testing.T) {
	// {SSHA512} as slapd's pw-sha2 writes it: base64(SHA512(pw‖salt)‖salt).
	for _, tc := range []struct {
		stored string
		pw     string
		ok     bool
	}{
		{"{SSHA512}tOR9mv00dfyPc+V5hIjQA64yckpz4NKCAnhhkZEukM/QwBTfNdaS4XPUGZsGtLLIk+y9She4pyD+q9nTgfRzAXNhbHRzYWx0", "password1", true},
		{"{SSHA512}tOR9mv00dfyPc+V5hIjQA64yckpz4NKCAnhhkZEukM/QwBTfNdaS4XPUGZsGtLLIk+y9She4pyD+q9nTgfRzAXNhbHRzYWx0", "password2", false},
		{"{SSHA256}l1rKN2OYoGGlQLRwvQct/yMbHAr8aCoVE7wsboJH4exzYWx0c2FsdA==", "password1", true},
		{"{SSHA256}l1rKN2OYoGGlQLRwvQct/yMbHAr8aCoVE7wsboJH4exzYWx0c2FsdA==", "Password1", false},
		{"{SSHA512}!!!", "password1", false},
		{"password1", "password1", false}, // cleartext is never stored, never compared
		{string(dummyHash), "x", false},
	} {
		if got := verifyPassword([]byte(tc.stored), []byte(tc.pw)); got != tc.ok {
			t.Errorf("verify(%.20s, %q) = %v", tc.stored, tc.pw, got)
		}
	}
	h, err := HashPassword([]byte("password1"))
	if err != nil || !verifyPassword(h, []byte("password1")) || verifyPassword(h, []byte("password2")) {
		t.Fatalf("argon2 round trip: %v", err)
	}
}

func entry(dn string, attrs ...string) *Entry {
	e := &Entry{DN: dn}
	for i := 0; i+1 < len(attrs); i += 2 {
		found := false
		for j := range e.Attrs {
			if e.Attrs[j].Name == attrs[i] {
				e.Attrs[j].Values = append(e.Attrs[j].Values, []byte(attrs[i+1]))
				found = true
			}
		}
		if !found {
			e.Attrs = append(e.Attrs, Attribute{Name: attrs[i], Values: [][]byte{[]byte(attrs[i+1])}})
		}
	}
	return e
}

const people = "ou=people,dc=example,dc=test"

func TestAddRefusals(t *testing.T) {
	s, _ := openTemp(t)
	if _, err := s.AddUser(User{Name: "taken", UPN: "taken@example.test"}); err != nil {
		t.Fatal(err)
	}
	cert := testCert(t, "x")
	for _, tc := range []struct {
		name string
		e    *Entry
		code ResultCode
	}{
		{"ok", entry("uid=ok,"+people, "objectClass", "inetOrgPerson", "cn", "Ok", "userCertificate;binary", string(cert)), ResultSuccess},
		{"exists", entry("uid=ok,"+people, "objectClass", "inetOrgPerson", "cn", "Ok"), ResultEntryAlreadyExists},
		{"no parent", entry("uid=x,ou=nowhere,dc=example,dc=test", "objectClass", "inetOrgPerson", "cn", "x"), ResultNoSuchObject},
		{"outside", entry("uid=x,dc=other", "objectClass", "inetOrgPerson", "cn", "x"), ResultNoSuchObject},
		{"bad DN", entry("uid=x,,dc=example", "objectClass", "inetOrgPerson"), ResultInvalidDNSyntax},
		{"unknown attribute", entry("uid=x,"+people, "objectClass", "inetOrgPerson", "cn", "x", "favouriteColour", "blue"), ResultUndefinedAttributeType},
		{"unknown option", entry("uid=x,"+people, "objectClass", "inetOrgPerson", "cn;lang-en", "x"), ResultUndefinedAttributeType},
		{"unknown class", entry("uid=x,"+people, "objectClass", "posixAccount", "cn", "x"), ResultObjectClassViolation},
		{"no structural class", entry("uid=x,"+people, "objectClass", "top", "cn", "x"), ResultObjectClassViolation},
		{"two chains", entry("uid=x,"+people, "objectClass", "person", "objectClass", "group", "cn", "x"), ResultObjectClassViolation},
		{"missing must", entry("ou=x,"+people, "objectClass", "person"), ResultObjectClassViolation},
		{"not allowed", entry("uid=x,"+people, "objectClass", "person", "cn", "x", "mail", "x@y"), ResultObjectClassViolation},
		{"duplicate UPN", entry("uid=x,"+people, "objectClass", "user", "cn", "x", "userPrincipalName", "TAKEN@example.test"), ResultConstraintViolation},
		{"duplicate sAMAccountName", entry("uid=x,"+people, "objectClass", "user", "cn", "x", "sAMAccountName", "Taken"), ResultConstraintViolation},
		{"two UPNs", entry("uid=x,"+people, "objectClass", "user", "cn", "x", "userPrincipalName", "a@b", "userPrincipalName", "c@d"), ResultConstraintViolation},
		{"value twice", entry("uid=x,"+people, "objectClass", "user", "cn", "x", "cn", "X"), ResultAttributeOrValueExists},
		{"objectSid by client", entry("uid=x,"+people, "objectClass", "user", "cn", "x", "objectSid", "S-1-5-21-1-2-3-4"), ResultConstraintViolation},
		{"memberOf by client", entry("uid=x,"+people, "objectClass", "user", "cn", "x", "memberOf", "cn=admins,ou=groups,dc=example,dc=test"), ResultConstraintViolation},
		{"entryDN by client", entry("uid=x,"+people, "objectClass", "user", "cn", "x", "entryDN", "uid=x"), ResultConstraintViolation},
		{"bad certificate", entry("uid=x,"+people, "objectClass", "user", "cn", "x", "userCertificate", "not DER"), ResultInvalidAttributeSyntax},
		{"bad mail", entry("uid=x,"+people, "objectClass", "user", "cn", "x", "mail", "é@x"), ResultInvalidAttributeSyntax},
		{"bad integer", entry("uid=x,"+people, "objectClass", "user", "cn", "x", "userAccountControl", "12a"), ResultInvalidAttributeSyntax},
		{"empty value", entry("uid=x,"+people, "objectClass", "user", "cn", ""), ResultInvalidAttributeSyntax},
		{"NUL in string", entry("uid=x,"+people, "objectClass", "user", "cn", "a\x00b"), ResultInvalidAttributeSyntax},
		{"member missing", entry("cn=g,ou=groups,dc=example,dc=test", "objectClass", "group", "member", "uid=ghost,"+people), ResultConstraintViolation},
		{"groupOfNames without member", entry("cn=g,ou=groups,dc=example,dc=test", "objectClass", "groupOfNames"), ResultObjectClassViolation},
		{"subschema class", entry("cn=x,dc=example,dc=test", "objectClass", "subentry"), ResultObjectClassViolation},
		{"long value", entry("uid=x,"+people, "objectClass", "user", "cn", strings.Repeat("a", 300)), ResultInvalidAttributeSyntax},
	} {
		_, err := s.Add("", tc.e)
		if CodeOf(err) != tc.code {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.code)
		}
	}
	// The RDN value is added when missing; objectClass is expanded.
	e, err := s.Get("uid=ok," + people)
	if err != nil {
		t.Fatal(err)
	}
	if e.Value("uid") != "ok" || !slices.Equal(e.Strings("objectClass"), []string{"top", "person", "organizationalPerson", "user", "inetOrgPerson"}) {
		t.Errorf("entry %v %v", e.Strings("uid"), e.Strings("objectClass"))
	}
	if e.Value("objectSid") == "" || len(e.Value("objectGUID")) != 16 || e.Value("createTimestamp") == "" {
		t.Error("operational attributes missing")
	}
}

func TestModify(t *testing.T) {
	s, _ := openTemp(t)
	u, err := s.AddUser(User{Name: "erin", UPN: "erin@example.test", Mail: "erin@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	s.AddUser(User{Name: "frank", UPN: "frank@example.test"})
	mod := func(op ModOp, attr string, vals ...string) Modification {
		m := Modification{Op: op, Attr: Attribute{Name: attr}}
		for _, v := range vals {
			m.Attr.Values = append(m.Attr.Values, []byte(v))
		}
		return m
	}
	for _, tc := range []struct {
		name string
		mods []Modification
		code ResultCode
	}{
		{"add value", []Modification{mod(ModAdd, "mail", "e2@example.test")}, ResultSuccess},
		{"add existing", []Modification{mod(ModAdd, "mail", "E2@example.test")}, ResultAttributeOrValueExists},
		{"delete missing value", []Modification{mod(ModDelete, "mail", "nope@example.test")}, ResultNoSuchAttribute},
		{"delete missing attribute", []Modification{mod(ModDelete, "title")}, ResultNoSuchAttribute},
		{"replace", []Modification{mod(ModReplace, "title", "Boss")}, ResultSuccess},
		{"replace empty absent", []Modification{mod(ModReplace, "sn")}, ResultSuccess},
		{"remove RDN value", []Modification{mod(ModDelete, "uid")}, ResultNotAllowedOnRDN},
		{"UPN taken", []Modification{mod(ModReplace, "userPrincipalName", "FRANK@example.test")}, ResultConstraintViolation},
		{"two UPNs", []Modification{mod(ModAdd, "userPrincipalName", "x@example.test")}, ResultConstraintViolation},
		{"structural change", []Modification{mod(ModReplace, "objectClass", "group")}, ResultObjectClassModsProhibited},
		{"objectGUID", []Modification{mod(ModReplace, "objectGUID", "0123456789abcdef")}, ResultConstraintViolation},
		{"unknown", []Modification{mod(ModAdd, "shoeSize", "44")}, ResultUndefinedAttributeType},
		{"increment absent", []Modification{mod(ModIncrement, "userAccountControl", "1")}, ResultNoSuchAttribute},
		{"set uac", []Modification{mod(ModAdd, "userAccountControl", "512")}, ResultSuccess},
		{"increment", []Modification{mod(ModIncrement, "userAccountControl", "2")}, ResultSuccess},
		{"increment string", []Modification{mod(ModIncrement, "cn", "2")}, ResultConstraintViolation},
		// All or nothing: the first change is valid, the second not.
		{"atomic", []Modification{mod(ModReplace, "displayName", "Erin"), mod(ModAdd, "shoeSize", "1")}, ResultUndefinedAttributeType},
		{"not allowed by class", []Modification{mod(ModAdd, "dc", "x")}, ResultObjectClassViolation},
		{"add no values", []Modification{mod(ModAdd, "title")}, ResultProtocolError},
	} {
		_, err := s.Modify("", u.DN, tc.mods)
		if CodeOf(err) != tc.code {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.code)
		}
	}
	e, _ := s.Get(u.DN)
	if e.Value("title") != "Boss" || e.Value("userAccountControl") != "514" || e.Value("displayName") != "" || len(e.Strings("mail")) != 2 {
		t.Errorf("after modifications: title %q uac %q displayName %q mail %v", e.Value("title"), e.Value("userAccountControl"), e.Value("displayName"), e.Strings("mail"))
	}
	// The indexes follow: the new mail finds the entry, the old UPN stays.
	if u, err := s.User("erin@example.test"); err != nil || u.Name != "erin" {
		t.Error(err)
	}
	var got []string
	s.Search(context.Background(), SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub, Filter: Eq("mail", "e2@EXAMPLE.test")}, func(e *Entry) error {
		got = append(got, e.DN)
		return nil
	})
	if len(got) != 1 {
		t.Errorf("mail index: %v", got)
	}
}

func TestMembership(t *testing.T) {
	s, _ := openTemp(t)
	for _, n := range []string{"gina", "hank"} {
		if _, err := s.AddUser(User{Name: n, UPN: n + "@example.test"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddGroup("staff", "Everyone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddGroup("staff", ""); !errors.Is(err, ErrGroupExists) {
		t.Errorf("group twice: %v", err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AddMember("staff", "gina"))
	must(s.AddMember("staff", "gina")) // no-op
	must(s.AddMember("staff", "hank@example.test"))
	must(s.AddMember(AdminGroup, "staff")) // nested
	memberOf := func(name string) []string {
		u, err := s.User(name)
		if err != nil {
			t.Fatal(err)
		}
		return u.Groups
	}
	if g := memberOf("gina"); len(g) != 1 || g[0] != "cn=staff,ou=groups,dc=example,dc=test" {
		t.Errorf("gina memberOf %v", g)
	}
	if !s.IsAdmin("uid=gina,"+people) || s.IsAdmin(s.BaseDN()) {
		t.Error("nested admin membership")
	}
	// A user's rename carries its memberships along.
	e, err := s.ModifyDN("", "uid=gina,"+people, "uid=georgina", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if e.DN != "uid=georgina,"+people || e.Value("uid") != "gina" && !slices.Contains(e.Strings("uid"), "georgina") {
		t.Errorf("renamed: %s %v", e.DN, e.Strings("uid"))
	}
	g, _ := s.Group("staff")
	if !slices.Contains(g.Members, "uid=georgina,"+people) || slices.Contains(g.Members, "uid=gina,"+people) {
		t.Errorf("members after rename %v", g.Members)
	}
	// Move the whole of ou=people below a new ou: every link follows.
	if _, err := s.Add("", entry("ou=site,dc=example,dc=test", "objectClass", "organizationalUnit")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModifyDN("", "ou=people,dc=example,dc=test", "ou=people", true, "ou=site,dc=example,dc=test"); CodeOf(err) != ResultUnwillingToPerform {
		t.Errorf("moving a structural container: %v", err)
	}
	if _, err := s.Add("", entry("ou=team,"+people, "objectClass", "organizationalUnit")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModifyDN("", "uid=hank,"+people, "uid=hank", true, "ou=team,"+people); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModifyDN("", "ou=team,"+people, "ou=crew", true, "ou=site,dc=example,dc=test"); err != nil {
		t.Fatal(err)
	}
	g, _ = s.Group("staff")
	if !slices.Contains(g.Members, "uid=hank,ou=crew,ou=site,dc=example,dc=test") {
		t.Errorf("members after subtree move %v", g.Members)
	}
	if u, err := s.User("hank"); err != nil || u.DN != "uid=hank,ou=crew,ou=site,dc=example,dc=test" {
		t.Errorf("hank: %v %v", u, err)
	}
	if _, err := s.ModifyDN("", "ou=site,dc=example,dc=test", "ou=site2", true, "ou=crew,ou=site,dc=example,dc=test"); CodeOf(err) != ResultUnwillingToPerform {
		t.Errorf("move below itself: %v", err)
	}
	if _, err := s.ModifyDN("", "uid=georgina,"+people, "uid=hank", true, "ou=crew,ou=site,dc=example,dc=test"); CodeOf(err) != ResultEntryAlreadyExists {
		t.Errorf("rename onto an existing entry: %v", err)
	}
	if err := s.Delete("", "ou=site,dc=example,dc=test"); CodeOf(err) != ResultNotAllowedOnNonLeaf {
		t.Errorf("delete non-leaf: %v", err)
	}
	// Deleting a user takes it out of its groups; deleting a group clears
	// memberOf.
	must(s.DeleteUser("hank"))
	g, _ = s.Group("staff")
	if len(g.Members) != 1 {
		t.Errorf("members after delete %v", g.Members)
	}
	must(s.RemoveMember("staff", "georgina"))
	if g := memberOf("georgina"); len(g) != 0 {
		t.Errorf("memberOf after removal %v", g)
	}
	must(s.AddMember("staff", "georgina"))
	must(s.DeleteGroup("staff"))
	if g := memberOf("georgina"); len(g) != 0 {
		t.Errorf("memberOf after group delete %v", g)
	}
	if a, _ := s.Group(AdminGroup); len(a.Members) != 0 {
		t.Errorf("admins still lists the deleted group: %v", a.Members)
	}
	if err := s.DeleteGroup(AdminGroup); CodeOf(err) != ResultUnwillingToPerform {
		t.Errorf("deleting the admin group: %v", err)
	}
	if err := s.AddMember("nogroup", "georgina"); !errors.Is(err, ErrNoSuchGroup) {
		t.Error(err)
	}
	if err := s.AddMember(AdminGroup, "nobody"); !errors.Is(err, ErrNoSuchUser) {
		t.Error(err)
	}
}

// TestSearchPlans checks that index plans never lose an entry: every filter
// gives the same result through Search as by testing every entry.
func TestSearchPlans(t *testing.T) {
	s, _ := openTemp(t)
	for i := 0; i < 60; i++ {
		u := User{Name: fmt.Sprintf("user%02d", i), UPN: fmt.Sprintf("user%02d@example.test", i), DisplayName: fmt.Sprintf("User Number %d", i)}
		if i%3 == 0 {
			u.Mail = fmt.Sprintf("u%d@mail.example.test", i)
		}
		if i%7 == 0 {
			u.Surname = "Smith"
		}
		if _, err := s.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	s.AddGroup("odd", "")
	for i := 1; i < 60; i += 2 {
		s.AddMember("odd", fmt.Sprintf("user%02d", i))
	}
	s.Modify("", "uid=user05,"+people, []Modification{{Op: ModAdd, Attr: Attribute{Name: "userAccountControl", Values: [][]byte{[]byte("514")}}}})
	var all []*Entry
	s.Search(context.Background(), SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub}, func(e *Entry) error { all = append(all, e); return nil })
	if len(all) != 60+5 {
		t.Fatalf("%d entries", len(all))
	}
	filters := []string{
		"(uid=user07)", "(UID=USER07)", "(userPrincipalName=user10@EXAMPLE.TEST)", "(mail=*)", "(!(mail=*))",
		"(cn=user num*)", "(cn=*number 1*)", "(cn=*5)", "(displayName=User*Number*4)", "(sn=smith)",
		"(&(objectClass=user)(sn=Smith))", "(|(uid=user01)(uid=user02)(mail=u3@*))", "(&(uid=user0*)(!(uid=user05)))",
		"(memberOf=cn=odd,ou=groups,dc=example,dc=test)", "(memberOf=CN=Odd, OU=Groups, DC=Example, DC=Test)",
		"(objectClass=group)", "(objectClass=*)", "(objectClass=top)", "(nosuch=x)", "(!(nosuch=x))", "(|(nosuch=x)(uid=user01))",
		"(&(objectClass=user)(userAccountControl:1.2.840.113556.1.4.803:=2))", "(uid>=user55)", "(uid<=user02)",
		"(cn~=user number 3)", "(uid:caseExactMatch:=user01)", "(:dn:2.5.13.2:=people)", "(ou:dn:=people)",
		"(userPassword=*)", "(&)", "(|)", "(member=uid=user01,ou=people,dc=example,dc=test)",
		"(objectSid=" + sidOf(t, s, "user03") + ")", "(createTimestamp>=20000101000000Z)", "(entryDN=uid=user09,ou=people,dc=example,dc=test)",
		"(hasSubordinates=TRUE)", "(memberOf:1.2.840.113556.1.4.1941:=cn=odd,ou=groups,dc=example,dc=test)",
		// ANDs whose parts differ in size, for the planner's caps.
		"(&(objectClass=user)(uid=user07))", "(&(uid=user07)(objectClass=user))", "(&(objectClass=user)(objectClass=group))",
		"(&(objectClass=user)(|(uid=user1*)(cn=user number 2*)))", "(&(objectClass=user)(cn=user*)(sn=smith))",
		"(&(objectClass=user)(!(mail=*)))", "(&(objectClass=user)(&(cn=user*)(mail=*)))", "(|(&(objectClass=user)(sn=smith))(uid=user0*))",
		"(&(objectClass=user)(|(mail=*)(sn=smith)(description=x)))", "(&(cn=user*)(uid=user*)(displayName=*))",
		"(&(objectClass=user)(memberOf=cn=odd,ou=groups,dc=example,dc=test)(uid=user1*))",
	}
	defer func(c int) { planCap = c }(planCap)
	// Caps 4 and 1 put every part of every AND above the cap.
	for _, planCap = range []int{planCap, 4, 1} {
		for _, fs := range filters {
			f, err := ParseFilter(fs)
			if err != nil {
				t.Errorf("%s: %v", fs, err)
				continue
			}
			var want, got []string
			for _, e := range all {
				var env *evalEnv
				s.db.View(func(tx *bolt.Tx) error {
					env = &evalEnv{virtual: func(e *Entry, at *AttributeType) [][]byte { return s.virtualValues(tx, e, at) }}
					if f.Op == FilterExtensible && f.Rule == ruleInChain {
						return nil
					}
					if f.eval(e, env) == triTrue {
						want = append(want, e.DN)
					}
					return nil
				})
			}
			_, err = s.Search(context.Background(), SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub, Filter: f}, func(e *Entry) error {
				got = append(got, e.DN)
				return nil
			})
			if err != nil {
				t.Errorf("%s: %v", fs, err)
			}
			if f.Op == FilterExtensible && f.Rule == ruleInChain {
				if len(got) != 30 {
					t.Errorf("%s: %d entries", fs, len(got))
				}
				continue
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s (cap %d): search gave %d entries, scan %d", fs, planCap, len(got), len(want))
			}
		}
	}
	count := func(req SearchRequest) int {
		n := 0
		if _, err := s.Search(context.Background(), req, func(*Entry) error { n++; return nil }); err != nil {
			t.Error(err)
		}
		return n
	}
	for _, tc := range []struct {
		base  string
		scope Scope
		f     *Filter
		want  int
	}{
		{s.BaseDN(), ScopeBase, nil, 1},
		{s.BaseDN(), ScopeOne, nil, 2},
		{people, ScopeOne, nil, 60},
		{people, ScopeSub, nil, 61},
		{people, ScopeOne, Eq("uid", "user01"), 1},
		{s.GroupsDN(), ScopeSub, Eq("uid", "user01"), 0},
		{s.GroupsDN(), ScopeSub, Eq("objectClass", "group"), 2},
		{s.GroupsDN(), ScopeOne, Present("member"), 1},
	} {
		if n := count(SearchRequest{BaseDN: tc.base, Scope: tc.scope, Filter: tc.f}); n != tc.want {
			t.Errorf("%s scope %d %v: %d entries, want %d", tc.base, tc.scope, tc.f, n, tc.want)
		}
	}
	// Paging: Limit and After walk the results in ID order.
	var pages [][]string
	after := uint64(0)
	for {
		var page []string
		res, err := s.Search(context.Background(), SearchRequest{BaseDN: people, Scope: ScopeOne, Limit: 25, After: after}, func(e *Entry) error {
			page = append(page, e.DN)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, page)
		if !res.More {
			break
		}
		after = res.LastID
	}
	if len(pages) != 3 || len(pages[0]) != 25 || len(pages[2]) != 10 {
		t.Errorf("pages %d", len(pages))
	}
	if _, err := s.Search(context.Background(), SearchRequest{BaseDN: "ou=nowhere," + s.BaseDN()}, nil); CodeOf(err) != ResultNoSuchObject {
		t.Errorf("missing base: %v", err)
	} else if e := new(Error); errors.As(err, &e) && e.Matched != s.BaseDN() {
		t.Errorf("matched %q", e.Matched)
	}
	ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	if _, err := s.Search(ctx, SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub}, func(*Entry) error { return nil }); CodeOf(err) != ResultTimeLimitExceeded {
		t.Errorf("expired deadline: %v", err)
	}
	// Filters on attributes the requester may not read match nothing.
	n := count(SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub, Filter: Present("objectSid"), CanRead: func(a *AttributeType) bool { return a.Public }})
	if n != 0 {
		t.Errorf("objectSid presence visible to anonymous: %d", n)
	}
}

func sidOf(t *testing.T, s *Store, name string) string {
	u, err := s.User(name)
	if err != nil {
		t.Fatal(err)
	}
	return u.SID
}

func TestSID(t *testing.T) {
	for _, tc := range []struct {
		text string
		ok   bool
	}{
		{"S-1-5-21-1004336348-1177238915-682003330-512", true},
		{"S-1-5-32-544", true},
		{"S-1-1-0", true},
		{"S-1-5", true},
		{"S-2-5-21", false},
		{"S-1-5-21-4294967296", false},
		{"S-1-281474976710656-1", false},
		{"X-1-5", false},
		{"S-1-5-" + strings.Repeat("1-", 15) + "1", false},
	} {
		b, err := ParseSID(tc.text)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSID(%q): %v", tc.text, err)
			continue
		}
		if err == nil {
			if back, err := SIDString(b); err != nil || back != tc.text {
				t.Errorf("round trip %q → %q %v", tc.text, back, err)
			}
		}
	}
	// The layout of REFERENCE §6: revision, count, 6-byte BE authority,
	// LE sub-authorities.
	b, _ := ParseSID("S-1-5-21-1-512")
	if want := []byte{1, 3, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0}; !slices.Equal(b, want) {
		t.Errorf("binary %x", b)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0, 0, 0}, {1, 1, 0, 0, 0, 0, 0, 5}} {
		if _, err := SIDString(bad); err == nil {
			t.Errorf("SIDString(%x) accepted", bad)
		}
	}
}

func TestMigration(t *testing.T) {
	p := filepath.Join(t.TempDir(), "old.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert := testCert(t, "old")
	err = db.Update(func(tx *bolt.Tx) error {
		users, _ := tx.CreateBucket(bucketOldUsers)
		upns, _ := tx.CreateBucket(bucketOldUPN)
		meta, _ := tx.CreateBucket(bucketMeta)
		meta.Put(keyDomain, []byte("S-1-5-21-1-2-3"))
		meta.Put(keyNextRID, []byte{0, 0, 0x04, 0x4e}) // 1102
		v, _ := json.Marshal(map[string]any{"name": "olga", "upn": "olga@example.test", "mail": "olga@example.test", "objectSid": "S-1-5-21-1-2-3-1101",
			"objectGUID": "0a0b0c0d-0e0f-4010-8111-121314151617", "created": "2024-01-02T03:04:05Z", "userCertificate": [][]byte{cert}})
		users.Put([]byte("olga"), v)
		upns.Put([]byte("olga@example.test"), []byte("olga"))
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(p, Options{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.User("olga@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if u.SID != "S-1-5-21-1-2-3-1101" || len(u.Certificates) != 1 || u.Created.Year() != 2024 || u.Mail != "olga@example.test" {
		t.Errorf("migrated %+v", u)
	}
	if n, _ := s.AddUser(User{Name: "pat", UPN: "pat@example.test"}); n == nil || n.SID != "S-1-5-21-1-2-3-1102" {
		t.Errorf("next RID after migration: %+v", n)
	}
}

func TestDN(t *testing.T) {
	for _, tc := range []struct {
		in, norm, str string
		ok            bool
	}{
		{"uid=Alice,ou=People,dc=Example,dc=Test", "uid=alice,ou=people,dc=example,dc=test", "uid=Alice,ou=People,dc=Example,dc=Test", true},
		{"UID = Alice , OU=people,DC=example,DC=test", "uid=alice,ou=people,dc=example,dc=test", "uid=Alice,ou=people,dc=example,dc=test", true},
		{"cn=Smith\\, John,dc=test", "cn=smith\\, john,dc=test", "cn=Smith\\, John,dc=test", true},
		{"cn=a  b,dc=test", "cn=a b,dc=test", "cn=a  b,dc=test", true},
		{"2.5.4.3=x,dc=test", "cn=x,dc=test", "cn=x,dc=test", true},
		{"commonName=x+uid=y,dc=test", "cn=x+uid=y,dc=test", "cn=x+uid=y,dc=test", true},
		{"uid=y+cn=x,dc=test", "cn=x+uid=y,dc=test", "uid=y+cn=x,dc=test", true},
		{"cn=\\23hash,dc=test", "cn=\\#hash,dc=test", "cn=\\#hash,dc=test", true},
		{"", "", "", true},
		{"shoeSize=44,dc=test", "", "", false},
		{"cn=,dc=test", "", "", false},
		{"cn=x,,dc=test", "", "", false},
		{"userPassword=x,dc=test", "", "", false},
		{"cn", "", "", false},
		{"cn=\\ff,dc=test", "", "", false},
		{strings.Repeat("cn=x,", 40) + "dc=test", "", "", false},
	} {
		dn, err := ParseDN(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseDN(%q): %v", tc.in, err)
			continue
		}
		if err != nil {
			continue
		}
		if dn.Norm() != tc.norm || dn.String() != tc.str {
			t.Errorf("ParseDN(%q): norm %q string %q", tc.in, dn.Norm(), dn.String())
		}
		if back, err := ParseDN(dn.String()); err != nil || back.Norm() != dn.Norm() {
			t.Errorf("%q does not round-trip: %v", dn.String(), err)
		}
	}
}

// TestFindUsersLimit checks search as you type with a limit (index range
// scans that stop early) against the same search without one (the
// planner's full answer): the same users, at most limit of them, each
// once, never a group that is named alike.
func TestFindUsersLimit(t *testing.T) {
	s, _ := openTemp(t)
	long := strings.Repeat("x", indexValueMax)
	for i := 0; i < 300; i++ {
		u := User{Name: fmt.Sprintf("user%03d", i), UPN: fmt.Sprintf("u%03d@example.test", i), DisplayName: fmt.Sprintf("User %d", i)}
		switch i {
		case 1:
			u.DisplayName = long + "a" // cut in the index: the entry decides
		case 2:
			u.DisplayName = long + "b"
		}
		if i%10 == 0 {
			u.Surname = "Usher"
		}
		if _, err := s.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i++ {
		if _, err := s.AddGroup(fmt.Sprintf("users-%d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	names := func(us []*User) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.Name)
		}
		return out
	}
	for _, p := range []string{"", "u", "US", "user", "users", "user1", "User 2", "usher", "u29", long, long + "A", long + "c", "x", "zz", "*", "user 1"} {
		all, err := s.FindUsers(ctx, p, 0)
		if err != nil {
			t.Fatalf("FindUsers(%q, 0): %v", p, err)
		}
		want := names(all)
		for _, limit := range []int{1, 7, 50, 1000} {
			us, err := s.FindUsers(ctx, p, limit)
			if err != nil {
				t.Fatalf("FindUsers(%q, %d): %v", p, limit, err)
			}
			got := names(us)
			if len(got) != min(limit, len(want)) {
				t.Errorf("FindUsers(%q, %d): %d users, want %d", p, limit, len(got), min(limit, len(want)))
			}
			seen := map[string]bool{}
			for _, n := range got {
				if seen[n] || !slices.Contains(want, n) {
					t.Errorf("FindUsers(%q, %d): %s twice or not a match", p, limit, n)
				}
				seen[n] = true
			}
		}
	}
	// With a limit, the users come in the order of the names that matched:
	// display names "User 1", "User 10", "User 100" before logins user1…
	if us, _ := s.FindUsers(ctx, "user 1", 3); !slices.Equal(names(us), []string{"user010", "user100", "user101"}) {
		t.Errorf("FindUsers(user 1, 3) = %v", names(us))
	}
	if us, _ := s.FindUsers(ctx, long+"A", 10); !slices.Equal(names(us), []string{"user001"}) {
		t.Errorf("FindUsers(long a) = %v", names(us))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if us, err := s.FindUsers(cctx, "u", 5); CodeOf(err) != ResultCanceled {
		t.Errorf("canceled: %d users, %v", len(us), err)
	}
}
