package directory_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/directory/ldaptest"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

// SASL EXTERNAL: clients bind with the TLS client certificate the station
// CA issued them; the server maps it to a user as the KDC does.

// extEnv is a test directory that accepts certificates from a pkitest CA
// (the real CA code, with the station's templates), with revocation from
// the CA database.
type extEnv struct {
	ca  *pkitest.Env
	srv *ldaptest.Server
}

func newExtEnv(t *testing.T) *extEnv {
	t.Helper()
	ca := pkitest.New(t, pkitest.Options{})
	root := ca.CA.Chain()[len(ca.CA.Chain())-1]
	pool := x509.NewCertPool()
	pool.AddCert(root)
	srv := ldaptest.New(t, ldaptest.Options{
		ClientCAs: pool,
		Revocation: func(c *x509.Certificate) (bool, string, error) {
			rec, err := ca.DB.Get(c.SerialNumber)
			if err != nil {
				return false, "", err
			}
			return rec.Status != pki.StatusValid, rec.Reason.String(), nil
		},
	})
	return &extEnv{ca: ca, srv: srv}
}

// user creates a directory user and issues them a smart-card logon
// certificate (UPN SAN, SID extension); it returns the PEM files.
func (e *extEnv) user(t *testing.T, name string) (u *directory.User, certFile, keyFile string, issued *pki.Issued) {
	t.Helper()
	u, err := e.srv.Store.AddUser(directory.User{Name: name, UPN: name + "@example.test", Mail: name + "@example.test", DisplayName: strings.ToUpper(name[:1]) + name[1:]})
	if err != nil {
		t.Fatal(err)
	}
	e.ca.Users.Put(&pki.User{Name: u.Name, UPN: u.UPN, Mail: u.Mail, DisplayName: u.DisplayName, SID: u.SID})
	issued, key := e.ca.Issue(t, "smartcard-logon", name, pki.P256)
	dir := t.TempDir()
	return u, pkitest.WritePEM(t, dir, name+".pem", issued.Chain), pkitest.WritePEM(t, dir, name+".key", key), issued
}

func whoami(t *testing.T, env []string, args ...string) peerResult {
	t.Helper()
	return runTool(t, env, "", "ldapwhoami", args...)
}

func TestExternalBindOpenLDAP(t *testing.T) {
	testpeer.Require(t, "ldapwhoami")
	e := newExtEnv(t)
	alice, aliceCert, aliceKey, _ := e.user(t, "alice")
	e.user(t, "bob")
	withCert := func(cert, key string) []string {
		return append(e.srv.Env(), "LDAPTLS_CERT="+cert, "LDAPTLS_KEY="+key)
	}
	for _, tr := range []struct {
		name string
		h    []string
	}{{"ldaps", []string{"-H", e.srv.LDAPSURL}}, {"starttls", []string{"-H", e.srv.URL, "-ZZ"}}} {
		t.Run(tr.name, func(t *testing.T) {
			ext := append(append([]string{}, tr.h...), "-Y", "EXTERNAL")
			r := mustPeer(t, 0, whoami(t, withCert(aliceCert, aliceKey), ext...))
			if got := strings.TrimSpace(r.stdout); got != "dn:"+alice.DN {
				t.Errorf("ldapwhoami -Y EXTERNAL = %q, want dn:%s", got, alice.DN)
			}
			// An authorization identity naming the same user, either way.
			for _, authz := range []string{"dn:" + alice.DN, "u:alice", "u:alice@example.test"} {
				r := mustPeer(t, 0, whoami(t, withCert(aliceCert, aliceKey), append(ext, "-X", authz)...))
				if got := strings.TrimSpace(r.stdout); got != "dn:"+alice.DN {
					t.Errorf("-X %s: %q", authz, got)
				}
			}
			// Someone else's: inappropriateAuthentication (48).
			for _, authz := range []string{"u:bob", "dn:uid=bob,ou=people,dc=example,dc=test", "u:nobody"} {
				r := whoami(t, withCert(aliceCert, aliceKey), append(ext, "-X", authz)...)
				if r.code != 48 || strings.Contains(r.stdout, "dn:") {
					t.Errorf("-X %s: exit %d, want 48\n%s%s", authz, r.code, r.stdout, r.stderr)
				}
			}
			// No certificate: the client cannot do EXTERNAL, and nothing
			// is authenticated.
			r = whoami(t, e.srv.Env(), ext...)
			if r.code == 0 || strings.Contains(r.stdout, "dn:") {
				t.Errorf("EXTERNAL without a certificate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
	t.Run("foreign-ca", func(t *testing.T) {
		other := pkitest.New(t, pkitest.Options{})
		other.Users.Put(&pki.User{Name: "alice", UPN: alice.UPN, Mail: alice.Mail, SID: alice.SID})
		issued, key := other.Issue(t, "smartcard-logon", "alice", pki.P256)
		dir := t.TempDir()
		cert, keyf := pkitest.WritePEM(t, dir, "c.pem", issued.Chain), pkitest.WritePEM(t, dir, "k.pem", key)
		for _, h := range [][]string{{"-H", e.srv.LDAPSURL}, {"-H", e.srv.URL, "-ZZ"}} {
			r := whoami(t, withCert(cert, keyf), append(h, "-Y", "EXTERNAL")...)
			if r.code == 0 || strings.Contains(r.stdout, "dn:") {
				t.Errorf("%v: a certificate from a foreign CA was accepted: exit %d\n%s%s", h, r.code, r.stdout, r.stderr)
			}
		}
	})
	t.Run("revoked", func(t *testing.T) {
		_, cert, key, issued := e.user(t, "carol")
		mustPeer(t, 0, whoami(t, withCert(cert, key), "-H", e.srv.LDAPSURL, "-Y", "EXTERNAL"))
		if _, err := e.ca.CA.Revoke(issued.Certificate.SerialNumber, pki.ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
		r := whoami(t, withCert(cert, key), "-H", e.srv.LDAPSURL, "-Y", "EXTERNAL")
		if r.code != 49 {
			t.Errorf("revoked certificate: exit %d, want 49\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("no-user", func(t *testing.T) {
		// A valid certificate whose user is gone from the directory.
		_, cert, key, _ := e.user(t, "dave")
		if err := e.srv.Store.DeleteUser("dave"); err != nil {
			t.Fatal(err)
		}
		r := whoami(t, withCert(cert, key), "-H", e.srv.LDAPSURL, "-Y", "EXTERNAL")
		if r.code != 49 {
			t.Errorf("certificate of a deleted user: exit %d, want 49\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

func keyPair(t *testing.T, issued *pki.Issued, key any) tls.Certificate {
	t.Helper()
	var chain [][]byte
	for _, c := range issued.Chain {
		chain = append(chain, c.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: issued.Certificate}
}

func TestExternalBindResults(t *testing.T) {
	e := newExtEnv(t)
	alice, _, _, _ := e.user(t, "alice")
	issued, key := e.ca.Issue(t, "smartcard-logon", "alice", pki.P256)
	kp := keyPair(t, issued, key)
	ctls := e.srv.ClientTLS.Clone()
	ctls.Certificates = []tls.Certificate{kp}

	t.Run("ldaps", func(t *testing.T) {
		c, err := ldap.DialURL(e.srv.LDAPSURL, ldap.DialWithTLSConfig(ctls))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.ExternalBind(); err != nil {
			t.Fatal(err)
		}
		r, err := c.WhoAmI(nil)
		if err != nil || r.AuthzID != "dn:"+alice.DN {
			t.Fatalf("WhoAmI = %+v, %v", r, err)
		}
		// A failed bind makes the connection anonymous again.
		if err := c.Bind(alice.DN, "wrong"); code(err) != 49 {
			t.Fatalf("bad password: %v", err)
		}
		if r, err := c.WhoAmI(nil); err != nil || r.AuthzID != "" {
			t.Fatalf("after a failed bind WhoAmI = %+v, %v", r, err)
		}
	})
	t.Run("starttls", func(t *testing.T) {
		c := dial(t, e.srv)
		if err := c.StartTLS(ctls); err != nil {
			t.Fatal(err)
		}
		if err := c.ExternalBind(); err != nil {
			t.Fatal(err)
		}
		if r, err := c.WhoAmI(nil); err != nil || r.AuthzID != "dn:"+alice.DN {
			t.Fatalf("WhoAmI = %+v, %v", r, err)
		}
	})
	t.Run("plain", func(t *testing.T) {
		c := dial(t, e.srv)
		if err := c.ExternalBind(); code(err) != ldap.LDAPResultInappropriateAuthentication {
			t.Fatalf("EXTERNAL in the clear: %v", err)
		}
	})
	t.Run("tls-without-certificate", func(t *testing.T) {
		c, err := ldap.DialURL(e.srv.LDAPSURL, ldap.DialWithTLSConfig(e.srv.ClientTLS))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.ExternalBind(); code(err) != ldap.LDAPResultInappropriateAuthentication {
			t.Fatalf("EXTERNAL without a certificate: %v", err)
		}
		if r, err := c.WhoAmI(nil); err != nil || r.AuthzID != "" {
			t.Fatalf("WhoAmI = %+v, %v", r, err)
		}
	})
	t.Run("unknown-mechanism", func(t *testing.T) {
		c, err := ldap.DialURL(e.srv.LDAPSURL, ldap.DialWithTLSConfig(ctls))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.DigestMD5Bind(&ldap.DigestMD5BindRequest{Username: "alice", Password: "x"})
		if code(err) != ldap.LDAPResultAuthMethodNotSupported {
			t.Fatalf("DIGEST-MD5: %v", err)
		}
	})
	t.Run("root-dse", func(t *testing.T) {
		c := dial(t, e.srv)
		r, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"supportedSASLMechanisms"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Entries[0].GetAttributeValues("supportedSASLMechanisms"); len(got) != 1 || got[0] != "EXTERNAL" {
			t.Fatalf("supportedSASLMechanisms = %q", got)
		}
	})
	t.Run("not-offered", func(t *testing.T) {
		// Without client CAs the server neither asks for certificates
		// nor offers EXTERNAL.
		s := ldaptest.New(t, ldaptest.Options{})
		c, err := ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(s.ClientTLS))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.ExternalBind(); code(err) != ldap.LDAPResultAuthMethodNotSupported {
			t.Fatalf("EXTERNAL not configured: %v", err)
		}
	})
}

// testCA issues certificates with any names, for the mapping rules.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	n    int64
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Mapping CA", Organization: []string{"EXAMPLE.TEST"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key, n: 0x1000}
}

func (ca *testCA) issue(t *testing.T, san *pki.SubjectAltNames, sid string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.n++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: "someone"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		SubjectKeyId: []byte{1, 2, 3, byte(ca.n)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if san != nil {
		ext, err := san.Extension()
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ext)
	}
	if sid != "" {
		ext, err := pki.SIDExtension(sid)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ext)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCertificateUser(t *testing.T) {
	s, err := directory.Open(filepath.Join(t.TempDir(), "d.db"), directory.Options{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	users := map[string]*directory.User{}
	for _, n := range []string{"alice", "bob", "carol", "dave"} {
		u, err := s.AddUser(directory.User{Name: n, UPN: n + "@example.test"})
		if err != nil {
			t.Fatal(err)
		}
		users[n] = u
	}
	ca := newTestCA(t)
	setAlt := func(user string, ids ...string) {
		t.Helper()
		if _, err := s.Modify("", users[user].DN, []directory.Modification{{Op: directory.ModReplace, Attr: directory.Attribute{Name: "altSecurityIdentities", Values: byteValues(ids)}}}); err != nil {
			t.Fatal(err)
		}
	}
	princ := func(realm string, comps ...string) []pki.Principal {
		return []pki.Principal{{Realm: realm, Components: comps}}
	}
	noNames := ca.issue(t, nil, "")
	bySKI := ca.issue(t, nil, "")
	byIssuerSerial := ca.issue(t, nil, "")
	bySHA1 := ca.issue(t, nil, "")
	sum := sha1.Sum(bySHA1.Raw)
	ambiguous := ca.issue(t, &pki.SubjectAltNames{UPN: "alice@example.test"}, "")
	setAlt("carol", "X509:<SKI>"+hex.EncodeToString(bySKI.SubjectKeyId),
		// AD's way: issuer most significant first, serial bytes reversed.
		"X509:<I>O=EXAMPLE.TEST,CN=Mapping CA<SR>"+reversedHex(byIssuerSerial.SerialNumber),
		"X509:<SHA1-PUKEY>"+hex.EncodeToString(sum[:]),
		// Weak forms map nothing.
		"X509:<I>O=EXAMPLE.TEST,CN=Mapping CA<S>CN=someone", "X509:<S>CN=someone")
	setAlt("dave", "X509:<SKI>"+hex.EncodeToString(ambiguous.SubjectKeyId))

	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		want string // user, or "" for a refusal
		is   error
	}{
		{"upn", ca.issue(t, &pki.SubjectAltNames{UPN: "ALICE@example.test"}, ""), "alice", nil},
		{"upn-sid", ca.issue(t, &pki.SubjectAltNames{UPN: "alice@example.test"}, users["alice"].SID), "alice", nil},
		{"upn-wrong-sid", ca.issue(t, &pki.SubjectAltNames{UPN: "alice@example.test"}, users["bob"].SID), "", nil},
		{"pkinit-san", ca.issue(t, &pki.SubjectAltNames{Principals: princ("EXAMPLE.TEST", "bob")}, ""), "bob", nil},
		{"pkinit-san-upn", ca.issue(t, &pki.SubjectAltNames{Principals: princ("example.test", "bob")}, ""), "bob", nil},
		{"pkinit-san-other-realm", ca.issue(t, &pki.SubjectAltNames{Principals: princ("OTHER.TEST", "bob")}, ""), "", directory.ErrNoSuchUser},
		{"pkinit-san-service", ca.issue(t, &pki.SubjectAltNames{Principals: princ("EXAMPLE.TEST", "host", "bob")}, ""), "", directory.ErrNoSuchUser},
		{"upn-and-pkinit-same", ca.issue(t, &pki.SubjectAltNames{UPN: "bob@example.test", Principals: princ("EXAMPLE.TEST", "bob")}, ""), "bob", nil},
		{"upn-and-pkinit-differ", ca.issue(t, &pki.SubjectAltNames{UPN: "bob@example.test", Principals: princ("EXAMPLE.TEST", "alice")}, ""), "", directory.ErrAmbiguous},
		{"alt-ski", bySKI, "carol", nil},
		{"alt-issuer-serial", byIssuerSerial, "carol", nil},
		{"alt-sha1", bySHA1, "carol", nil},
		{"alt-and-upn-differ", ambiguous, "", directory.ErrAmbiguous},
		{"no-names", noNames, "", directory.ErrNoSuchUser},
		{"unknown-upn", ca.issue(t, &pki.SubjectAltNames{UPN: "zed@example.test"}, ""), "", directory.ErrNoSuchUser},
		// A UPN that spells a DN is a UPN, never a DN.
		{"dn-as-upn", ca.issue(t, &pki.SubjectAltNames{UPN: users["alice"].DN + "@x"}, ""), "", directory.ErrNoSuchUser},
		{"email-is-not-a-mapping", ca.issue(t, &pki.SubjectAltNames{Emails: []string{"alice@example.test"}}, ""), "", directory.ErrNoSuchUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := s.CertificateUser(tc.cert, "")
			if tc.want == "" {
				if err == nil {
					t.Fatalf("mapped to %s, want a refusal", u.DN)
				}
				if directory.CodeOf(err) != directory.ResultInvalidCredentials {
					t.Errorf("code %v, want invalidCredentials: %v", directory.CodeOf(err), err)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("error %v is not %v", err, tc.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Name != tc.want {
				t.Fatalf("mapped to %s, want %s", u.Name, tc.want)
			}
		})
	}
}

func byteValues(ss []string) [][]byte {
	var out [][]byte
	for _, s := range ss {
		out = append(out, []byte(s))
	}
	return out
}

func reversedHex(n *big.Int) string {
	b := n.Bytes()
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return hex.EncodeToString(b)
}

// slapdUsersLDIF is a base, ou=people and users NAME with cn Name (the CN
// the station CA puts in logon certificates).
func slapdUsersLDIF(suffix string, names ...string) string {
	var b strings.Builder
	b.WriteString("dn: " + suffix + "\nobjectClass: top\nobjectClass: domain\ndc: example\n\n")
	b.WriteString("dn: ou=people," + suffix + "\nobjectClass: organizationalUnit\nou: people\n\n")
	for _, n := range names {
		cn := strings.ToUpper(n[:1]) + n[1:]
		b.WriteString("dn: uid=" + n + ",ou=people," + suffix + "\nobjectClass: inetOrgPerson\nobjectClass: upnPrincipal\n" +
			"uid: " + n + "\ncn: " + cn + "\nsn: " + cn + "\nmail: " + n + "@example.test\nuserPrincipalName: " + n + "@example.test\n\n")
	}
	return b.String()
}

func TestClientExternal(t *testing.T) {
	e := newExtEnv(t)
	alice, cert, key, _ := e.user(t, "alice")
	ours := func(url string, startTLS bool) directory.ClientConfig {
		return directory.ClientConfig{URLs: []string{url}, StartTLS: startTLS, CAFile: e.srv.CACertFile,
			ClientCert: cert, ClientKey: key, BaseDN: e.srv.BaseDN, Profile: directory.ProfileEmbedded}
	}
	for _, tc := range []struct {
		name string
		cfg  directory.ClientConfig
	}{{"ldaps", ours(e.srv.LDAPSURL, false)}, {"starttls", ours(e.srv.URL, true)}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.cfg)
			id, err := c.WhoAmI(context.Background())
			if err != nil || id != "dn:"+alice.DN {
				t.Fatalf("WhoAmI = %q, %v", id, err)
			}
			// Bound, it reads what anonymous clients may not (objectSid).
			u, err := c.LookupUser(context.Background(), "alice")
			if err != nil || u.SID != alice.SID {
				t.Fatalf("LookupUser = %+v, %v", u, err)
			}
		})
	}
	t.Run("config", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			mod  func(*directory.ClientConfig)
			want string
		}{
			{"plain", func(c *directory.ClientConfig) { c.URLs = []string{e.srv.URL} }, "needs ldaps:// or StartTLS"},
			{"no-key", func(c *directory.ClientConfig) { c.ClientKey = "" }, "both a certificate file and a key file"},
			{"bad-key", func(c *directory.ClientConfig) { c.ClientKey = cert }, "client certificate"},
		} {
			cfg := ours(e.srv.LDAPSURL, false)
			tc.mod(&cfg)
			_, err := directory.NewClient(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
			}
		}
	})
	t.Run("slapd", func(t *testing.T) {
		root := e.ca.CA.Chain()[len(e.ca.CA.Chain())-1]
		suffix := "dc=example,dc=test"
		s := ldaptest.NewSlapd(t, ldaptest.SlapdOptions{
			TLS: true, ClientCAs: pemCert(root), LDIF: slapdUsersLDIF(suffix, "alice"),
			// The certificate's subject is dc=test,dc=example,cn=Alice:
			// slapd names it cn=alice,dc=example,dc=test.
			AuthzRegexp: [][2]string{{"^cn=([^,]+),dc=example,dc=test$", "ldap:///ou=people,dc=example,dc=test??one?(cn=$1)"}},
		})
		for _, tc := range []struct {
			name     string
			url      string
			startTLS bool
		}{{"ldaps", s.LDAPSURL, false}, {"starttls", s.URL, true}} {
			t.Run(tc.name, func(t *testing.T) {
				c := newClient(t, directory.ClientConfig{URLs: []string{tc.url}, StartTLS: tc.startTLS, CAFile: s.CACertFile,
					ClientCert: cert, ClientKey: key, BaseDN: suffix, Profile: directory.ProfileOpenLDAP})
				id, err := c.WhoAmI(context.Background())
				if want := "dn:uid=alice,ou=people," + suffix; err != nil || id != want {
					t.Fatalf("WhoAmI = %q, %v; want %s", id, err, want)
				}
				if u, err := c.LookupUser(context.Background(), "alice@example.test"); err != nil || u.Name != "alice" {
					t.Fatalf("LookupUser = %+v, %v", u, err)
				}
			})
		}
		// A certificate of another CA: slapd refuses the handshake.
		other := pkitest.New(t, pkitest.Options{})
		other.Users.Put(&pki.User{Name: "alice", UPN: alice.UPN, Mail: alice.Mail, DisplayName: "Alice", SID: alice.SID})
		issued, okey := other.Issue(t, "smartcard-logon", "alice", pki.P256)
		dir := t.TempDir()
		_, err := directory.NewClient(context.Background(), directory.ClientConfig{URLs: []string{s.LDAPSURL}, CAFile: s.CACertFile,
			ClientCert: pkitest.WritePEM(t, dir, "c.pem", issued.Chain), ClientKey: pkitest.WritePEM(t, dir, "k.pem", okey),
			BaseDN: suffix, Profile: directory.ProfileOpenLDAP})
		if err == nil {
			t.Fatal("slapd accepted a certificate from a foreign CA")
		}
	})
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
