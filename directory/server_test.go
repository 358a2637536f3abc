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
	"io"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/directory/ldaptest"
)

func dial(t *testing.T, s *ldaptest.Server) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func adminConn(t *testing.T, s *ldaptest.Server) *ldap.Conn {
	t.Helper()
	c := dial(t, s)
	if err := c.Bind(s.AdminDN, s.AdminPassword); err != nil {
		t.Fatal(err)
	}
	return c
}

func code(err error) uint16 {
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	if err == nil {
		return 0
	}
	return 9999
}

func TestServerBindAndAccess(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{})
	if _, err := s.Store.CreateUser(directory.User{Name: "alice", UPN: "alice@example.test", Mail: "alice@example.test"}, []byte("alice-password")); err != nil {
		t.Fatal(err)
	}
	alice := "uid=alice,ou=people," + s.BaseDN
	c := dial(t, s)
	for _, tc := range []struct {
		name, dn, pw string
		want         uint16
	}{
		{"anonymous", "", "", 0},
		{"good", alice, "alice-password", 0},
		{"by UPN", "ALICE@example.test", "alice-password", 0},
		{"wrong password", alice, "nope", ldap.LDAPResultInvalidCredentials},
		{"no such user", "uid=ghost,ou=people," + s.BaseDN, "alice-password", ldap.LDAPResultInvalidCredentials},
		{"password without name", "", "alice-password", ldap.LDAPResultInvalidCredentials},
		{"bad DN", "uid=alice,,", "x", ldap.LDAPResultInvalidCredentials},
	} {
		err := c.Bind(tc.dn, tc.pw)
		if tc.dn == "" && tc.pw == "" {
			err = c.UnauthenticatedBind("")
		}
		if code(err) != tc.want {
			t.Errorf("%s: %v, want %d", tc.name, err, tc.want)
		}
	}
	// An empty password with a name is an unauthenticated bind: refused,
	// and the connection stays anonymous.
	if err := c.Bind(alice, "alice-password"); err != nil {
		t.Fatal(err)
	}
	err := c.UnauthenticatedBind(alice)
	if code(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("unauthenticated bind: %v", err)
	}
	if who, err := c.WhoAmI(nil); err != nil || who.AuthzID != "" {
		t.Errorf("after the refused bind: %q %v", who, err)
	}
	c.Bind(alice, "alice-password")
	if who, err := c.WhoAmI(nil); err != nil || who.AuthzID != "dn:"+alice {
		t.Errorf("whoami %q %v", who.AuthzID, err)
	}
	// Authenticated non-admins read but do not write.
	res, err := c.Search(ldap.NewSearchRequest(alice, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"*", "+"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatal(res, err)
	}
	e := res.Entries[0]
	if e.GetAttributeValue("userPassword") != "" || len(e.GetRawAttributeValue("objectSid")) != 28 || e.GetAttributeValue("entryDN") != alice {
		t.Errorf("alice sees userPassword %q objectSid %x entryDN %q", e.GetAttributeValue("userPassword"), e.GetRawAttributeValue("objectSid"), e.GetAttributeValue("entryDN"))
	}
	add := ldap.NewAddRequest("uid=mallory,ou=people,"+s.BaseDN, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("cn", []string{"Mallory"})
	if err := c.Add(add); code(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Errorf("non-admin add: %v", err)
	}
	// Anonymous: public attributes only, no writes.
	anon := dial(t, s)
	res, err = anon.Search(ldap.NewSearchRequest(s.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(uid=alice)", []string{"*", "+", "userPassword", "objectSid"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatal(res, err)
	}
	e = res.Entries[0]
	if e.GetAttributeValue("mail") != "alice@example.test" || e.GetAttributeValue("userPassword") != "" || e.GetAttributeValue("objectSid") != "" {
		t.Errorf("anonymous sees mail %q userPassword %q objectSid %x", e.GetAttributeValue("mail"), e.GetAttributeValue("userPassword"), e.GetRawAttributeValue("objectSid"))
	}
	for _, f := range []string{"(userPassword=*)", "(objectSid=*)", "(&(uid=alice)(userPassword=*))"} {
		res, err := anon.Search(ldap.NewSearchRequest(s.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, f, nil, nil))
		if err != nil || len(res.Entries) != 0 {
			t.Errorf("anonymous %s: %d entries %v", f, len(res.Entries), err)
		}
	}
	if err := anon.Add(add); code(err) != ldap.LDAPResultStrongAuthRequired {
		t.Errorf("anonymous add: %v", err)
	}
	if err := anon.Del(ldap.NewDelRequest(alice, nil)); code(err) != ldap.LDAPResultStrongAuthRequired {
		t.Errorf("anonymous delete: %v", err)
	}
	if ok, err := anon.Compare(alice, "userPassword", "alice-password"); ok || code(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Errorf("compare userPassword: %v %v", ok, err)
	}
	if ok, err := anon.Compare(alice, "mail", "ALICE@example.test"); !ok || err != nil {
		t.Errorf("compare mail: %v %v", ok, err)
	}
	// The admin writes.
	a := adminConn(t, s)
	if err := a.Add(add); err != nil {
		t.Fatal(err)
	}
}

func TestServerOperations(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{})
	a := adminConn(t, s)
	people := "ou=people," + s.BaseDN
	add := ldap.NewAddRequest("uid=bob,"+people, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("cn", []string{"Bob Jones"})
	add.Attribute("userPrincipalName", []string{"bob@example.test"})
	add.Attribute("userPassword", []string{"bob-password"})
	if err := a.Add(add); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(add); code(err) != ldap.LDAPResultEntryAlreadyExists {
		t.Errorf("add twice: %v", err)
	}
	dup := ldap.NewAddRequest("uid=bob2,"+people, nil)
	dup.Attribute("objectClass", []string{"inetOrgPerson"})
	dup.Attribute("cn", []string{"Bob"})
	dup.Attribute("userPrincipalName", []string{"BOB@example.test"})
	if err := a.Add(dup); code(err) != ldap.LDAPResultConstraintViolation {
		t.Errorf("duplicate UPN: %v", err)
	}
	mod := ldap.NewModifyRequest("uid=bob,"+people, nil)
	mod.Add("mail", []string{"bob@example.test"})
	mod.Replace("displayName", []string{"Bob J."})
	if err := a.Modify(mod); err != nil {
		t.Fatal(err)
	}
	bad := ldap.NewModifyRequest("uid=bob,"+people, nil)
	bad.Add("nonsense", []string{"x"})
	if err := a.Modify(bad); code(err) != ldap.LDAPResultUndefinedAttributeType {
		t.Errorf("unknown attribute: %v", err)
	}
	// Groups: member and memberOf both ways.
	g := ldap.NewAddRequest("cn=staff,ou=groups,"+s.BaseDN, nil)
	g.Attribute("objectClass", []string{"groupOfNames"})
	g.Attribute("member", []string{"uid=bob," + people})
	if err := a.Add(g); err != nil {
		t.Fatal(err)
	}
	res, err := a.Search(ldap.NewSearchRequest(s.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(memberOf=cn=staff,ou=groups,"+s.BaseDN+")", []string{"uid"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("uid") != "bob" {
		t.Errorf("memberOf search: %v %v", res, err)
	}
	// Rename: the group follows.
	if err := a.ModifyDN(ldap.NewModifyDNRequest("uid=bob,"+people, "uid=robert", true, "")); err != nil {
		t.Fatal(err)
	}
	res, _ = a.Search(ldap.NewSearchRequest("cn=staff,ou=groups,"+s.BaseDN, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"member"}, nil))
	if got := res.Entries[0].GetAttributeValues("member"); len(got) != 1 || got[0] != "uid=robert,"+people {
		t.Errorf("member after rename %v", got)
	}
	// The new RDN replaced the old uid value.
	if ok, _ := a.Compare("uid=robert,"+people, "uid", "bob"); ok {
		t.Error("old RDN value kept with deleteoldrdn")
	}
	// Password Modify: self with the old password, and by the admin.
	u := dial(t, s)
	if err := u.Bind("bob@example.test", "bob-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.PasswordModify(ldap.NewPasswordModifyRequest("", "", "new-password-1")); code(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("self change without old password: %v", err)
	}
	if _, err := u.PasswordModify(ldap.NewPasswordModifyRequest("", "wrong", "new-password-1")); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Errorf("self change with a wrong old password: %v", err)
	}
	if _, err := u.PasswordModify(ldap.NewPasswordModifyRequest("", "bob-password", "short")); code(err) != ldap.LDAPResultConstraintViolation {
		t.Errorf("short password: %v", err)
	}
	if _, err := u.PasswordModify(ldap.NewPasswordModifyRequest(s.AdminDN, "bob-password", "new-password-1")); code(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Errorf("changing another's password: %v", err)
	}
	if _, err := u.PasswordModify(ldap.NewPasswordModifyRequest("", "bob-password", "new-password-1")); err != nil {
		t.Fatal(err)
	}
	gen, err := a.PasswordModify(ldap.NewPasswordModifyRequest("uid=robert,"+people, "", ""))
	if err != nil || len(gen.GeneratedPassword) < 16 {
		t.Fatalf("generated: %+v %v", gen, err)
	}
	if err := u.Bind("bob@example.test", "new-password-1"); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Errorf("replaced password still works: %v", err)
	}
	if err := u.Bind("bob@example.test", gen.GeneratedPassword); err != nil {
		t.Errorf("generated password: %v", err)
	}
	// Delete: not a non-leaf, not the structure.
	if err := a.Del(ldap.NewDelRequest("ou=people,"+s.BaseDN, nil)); code(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("delete ou=people: %v", err)
	}
	if err := a.Del(ldap.NewDelRequest("uid=robert,"+people, nil)); err != nil {
		t.Fatal(err)
	}
	if err := a.Del(ldap.NewDelRequest("uid=robert,"+people, nil)); code(err) != ldap.LDAPResultNoSuchObject {
		t.Errorf("delete twice: %v", err)
	}
	// The group now has no member left: groupOfNames requires one, and
	// the delete takes the last one out anyway (as AD does for group).
	res, err = a.Search(ldap.NewSearchRequest("cn=staff,ou=groups,"+s.BaseDN, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"member"}, nil))
	if err != nil || len(res.Entries[0].GetAttributeValues("member")) != 0 {
		t.Errorf("member after delete: %v %v", res.Entries[0].GetAttributeValues("member"), err)
	}
}

func TestServerSearch(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{Limits: directory.Limits{MaxSizeLimit: 20, MaxPageSize: 15}})
	for i := 0; i < 45; i++ {
		if _, err := s.Store.AddUser(directory.User{Name: fmt.Sprintf("u%02d", i), UPN: fmt.Sprintf("u%02d@example.test", i)}); err != nil {
			t.Fatal(err)
		}
	}
	c := adminConn(t, s)
	search := func(base string, scope int, size int, filter string, attrs ...string) (*ldap.SearchResult, error) {
		return c.Search(ldap.NewSearchRequest(base, scope, 0, size, 0, false, filter, attrs, nil))
	}
	// The server's size limit cannot be raised by the client.
	res, err := search(s.BaseDN, ldap.ScopeWholeSubtree, 0, "(uid=u*)")
	if code(err) != ldap.LDAPResultSizeLimitExceeded || len(res.Entries) != 20 {
		t.Errorf("unpaged: %d entries, %v", len(res.Entries), err)
	}
	res, err = search(s.BaseDN, ldap.ScopeWholeSubtree, 5, "(uid=u*)")
	if code(err) != ldap.LDAPResultSizeLimitExceeded || len(res.Entries) != 5 {
		t.Errorf("client size limit: %d entries, %v", len(res.Entries), err)
	}
	res, err = search(s.BaseDN, ldap.ScopeWholeSubtree, 0, "(uid=u1*)")
	if err != nil || len(res.Entries) != 10 {
		t.Errorf("u1*: %d %v", len(res.Entries), err)
	}
	// Paging walks everything, at most MaxPageSize a page.
	res, err = c.SearchWithPaging(ldap.NewSearchRequest(s.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=user)", []string{"uid"}, nil), 100)
	if err != nil || len(res.Entries) != 46 {
		t.Errorf("paged: %d %v", len(res.Entries), err)
	}
	// Attribute selection: ;binary, 1.1, typesOnly, operational.
	cert := mustCert(t)
	if err := s.Store.AddCertificate("u01", cert); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		attrs []string
		want  []string
	}{
		{[]string{"userCertificate;binary"}, []string{"userCertificate;binary"}},
		{[]string{"usercertificate"}, []string{"userCertificate;binary"}},
		{[]string{"1.1"}, nil},
		{[]string{"uid", "UID", "userid"}, []string{"uid"}},
		{[]string{"createTimestamp"}, []string{"createTimestamp"}},
		{[]string{"nosuchattr", "sn"}, nil},
		{[]string{"hasSubordinates", "entryDN", "structuralObjectClass"}, []string{"structuralObjectClass", "entryDN", "hasSubordinates"}},
	} {
		res, err := search("uid=u01,ou=people,"+s.BaseDN, ldap.ScopeBaseObject, 0, "(objectClass=*)", tc.attrs...)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range res.Entries[0].Attributes {
			got = append(got, a.Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("attrs %v: got %v, want %v", tc.attrs, got, tc.want)
		}
	}
	res, _ = search("uid=u01,ou=people,"+s.BaseDN, ldap.ScopeBaseObject, 0, "(userCertificate;binary=*)", "userCertificate;binary")
	if len(res.Entries) != 1 || !bytes.Equal(res.Entries[0].GetRawAttributeValue("userCertificate;binary"), cert) {
		t.Error("certificate round trip")
	}
	// The root DSE and the subschema entry.
	res, err = search("", ldap.ScopeBaseObject, 0, "(objectClass=*)", "+")
	if err != nil || len(res.Entries) != 1 {
		t.Fatal(err)
	}
	root := res.Entries[0]
	if root.GetAttributeValue("namingContexts") != s.BaseDN || !slices.Contains(root.GetAttributeValues("supportedControl"), "1.2.840.113556.1.4.319") ||
		!slices.Contains(root.GetAttributeValues("supportedExtension"), "1.3.6.1.4.1.1466.20037") {
		t.Errorf("root DSE %v", root.Attributes)
	}
	res, err = search("cn=Subschema", ldap.ScopeBaseObject, 0, "(objectClass=subschema)", "attributeTypes", "objectClasses")
	if err != nil || len(res.Entries) != 1 {
		t.Fatal(err)
	}
	if at := res.Entries[0].GetAttributeValues("attributeTypes"); !slices.ContainsFunc(at, func(s string) bool {
		return strings.Contains(s, "1.2.840.113556.1.4.656 NAME 'userPrincipalName' EQUALITY caseIgnoreMatch")
	}) {
		t.Errorf("attributeTypes: %d values", len(at))
	}
	// Errors.
	if _, err := search("ou=nowhere,"+s.BaseDN, ldap.ScopeWholeSubtree, 0, "(objectClass=*)"); code(err) != ldap.LDAPResultNoSuchObject {
		t.Errorf("missing base: %v", err)
	}
	if _, err := search("not a dn", ldap.ScopeWholeSubtree, 0, "(objectClass=*)"); code(err) != ldap.LDAPResultInvalidDNSyntax {
		t.Errorf("bad base: %v", err)
	}
	// A critical control the server does not know.
	req := ldap.NewSearchRequest(s.BaseDN, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, []ldap.Control{ldap.NewControlString("1.2.3.4.5", true, "")})
	if _, err := c.Search(req); code(err) != ldap.LDAPResultUnavailableCriticalExtension {
		t.Errorf("critical control: %v", err)
	}
	// A tampered paging cookie.
	pc := ldap.NewControlPaging(5)
	pc.SetCookie([]byte("0123456789abcdef0123456789abcdef"))
	req = ldap.NewSearchRequest(s.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil, []ldap.Control{pc})
	if _, err := c.Search(req); code(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("forged cookie: %v", err)
	}
}

func mustCert(t *testing.T) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "u01"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestServerTLS(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{})
	if _, err := s.Store.CreateUser(directory.User{Name: "carol", UPN: "carol@example.test"}, []byte("carol-password")); err != nil {
		t.Fatal(err)
	}
	c, err := ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(s.ClientTLS))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind("carol@example.test", "carol-password"); err != nil {
		t.Fatal(err)
	}
	p := dial(t, s)
	if err := p.StartTLS(s.ClientTLS); err != nil {
		t.Fatal(err)
	}
	if err := p.StartTLS(s.ClientTLS); err == nil {
		t.Error("StartTLS twice")
	}
	if err := p.Bind("carol@example.test", "carol-password"); err != nil {
		t.Fatal(err)
	}
}

// rawConn speaks raw BER to the server.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// readNotice reads what the server sends before closing: a notice of
// disconnection with the given result code, then EOF.
func readNotice(t *testing.T, c net.Conn, want uint16) {
	t.Helper()
	p, err := ber.ReadPacket(c)
	if err != nil {
		t.Fatalf("no notice of disconnection: %v", err)
	}
	if len(p.Children) < 2 || p.Children[0].Value.(int64) != 0 {
		t.Fatalf("not an unsolicited notification: %s", ber.DescribePacket(p))
	}
	res := p.Children[1]
	if res.Tag != 24 || len(res.Children) < 4 || uint16(res.Children[0].Value.(int64)) != want || string(res.Children[3].Data.Bytes()) != "1.3.6.1.4.1.1466.20036" {
		t.Fatalf("notice: %s", ber.DescribePacket(p))
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection not closed: %v", err)
	}
}

func TestServerMalformed(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{Limits: directory.Limits{MaxPDU: 64 << 10}})
	// A client that stays connected throughout, to show nothing else is
	// affected.
	bystander := adminConn(t, s)
	check := func() {
		t.Helper()
		if _, err := bystander.WhoAmI(nil); err != nil {
			t.Fatalf("another connection suffered: %v", err)
		}
	}
	searchWithFilter := func(filter []byte) []byte {
		var b []byte
		b = append(b, 0x04, 0x00, 0x0a, 0x01, 0x02, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00)
		b = append(b, filter...)
		b = append(b, 0x30, 0x00)
		op := append([]byte{0x63}, berLen(len(b))...)
		op = append(op, b...)
		msg := append([]byte{0x02, 0x01, 0x07}, op...)
		return append(append([]byte{0x30}, berLen(len(msg))...), msg...)
	}
	deep := []byte{0x87, 0x02, 'c', 'n'}
	for i := 0; i < 100; i++ {
		deep = append(append([]byte{0xa2}, berLen(len(deep))...), deep...)
	}
	for _, tc := range []struct {
		name string
		pdu  []byte
	}{
		{"not a sequence", []byte{0x04, 0x01, 0x00}},
		{"indefinite length", []byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x42, 0x00, 0x00, 0x00}},
		{"oversized claim", []byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}},
		{"over the limit", append([]byte{0x30, 0x83, 0x01, 0x00, 0x01}, make([]byte, 100)...)},
		{"message ID zero", []byte{0x30, 0x05, 0x02, 0x01, 0x00, 0x42, 0x00}},
		{"unknown operation", []byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x5f, 0x00}},
		{"inner length overrun", []byte{0x30, 0x05, 0x02, 0x09, 0x01, 0x42, 0x00}},
		{"bad filter tag", searchWithFilter([]byte{0x8a, 0x01, 0x00})},
		{"empty substrings", searchWithFilter([]byte{0xa4, 0x06, 0x04, 0x02, 'c', 'n', 0x30, 0x00})},
		{"not with two", searchWithFilter([]byte{0xa2, 0x08, 0x87, 0x02, 'c', 'n', 0x87, 0x02, 'c', 'n'})},
		{"filter too deep", searchWithFilter(deep)},
		{"bind version as string", []byte{0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x04, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00}},
	} {
		c := rawConn(t, s.Addr)
		if _, err := c.Write(tc.pdu); err != nil {
			t.Fatal(err)
		}
		if tc.name == "over the limit" {
			// The server answers before reading the body.
			readNotice(t, c, ldap.LDAPResultProtocolError)
			check()
			continue
		}
		t.Run(tc.name, func(t *testing.T) { readNotice(t, c, ldap.LDAPResultProtocolError) })
		check()
	}
	// A well-formed search over raw BER still works on a fresh connection.
	c := rawConn(t, s.Addr)
	c.Write(searchWithFilter([]byte{0x87, 0x0b, 'o', 'b', 'j', 'e', 'c', 't', 'C', 'l', 'a', 's', 's'}))
	entries := 0
	for {
		p, err := ber.ReadPacket(c)
		if err != nil {
			t.Fatalf("raw search: %v", err)
		}
		if p.Children[1].Tag == 5 {
			break
		}
		entries++
	}
	if entries != 5 { // base, two ous, admins, admin
		t.Errorf("raw anonymous subtree search from the root: %d entries", entries)
	}
}

func berLen(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n < 0x100:
		return []byte{0x81, byte(n)}
	default:
		return []byte{0x82, byte(n >> 8), byte(n)}
	}
}

func TestServerLimits(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{Limits: directory.Limits{MaxConns: 3}})
	var conns []*ldap.Conn
	for i := 0; i < 3; i++ {
		conns = append(conns, dial(t, s))
	}
	for _, c := range conns {
		if _, err := c.WhoAmI(nil); err != nil {
			t.Fatal(err)
		}
	}
	extra := rawConn(t, s.Addr)
	readNotice(t, extra, ldap.LDAPResultBusy)
	conns[0].Close()
	// The server notices the close asynchronously; then there is room.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := ldap.DialURL(s.URL)
		if err == nil {
			_, err = c.WhoAmI(nil)
			c.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a connection closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServerShutdown(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{})
	c := adminConn(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WhoAmI(nil); err == nil {
		t.Error("a connection survived the shutdown")
	}
	if _, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		t.Error("still listening")
	}
}
