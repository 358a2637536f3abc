package station

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/directory/ldaptest"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

func TestDirectoryConfigValidate(t *testing.T) {
	ok := DirectoryConfig{Mode: "ldap", URL: "ldaps://ldap.example.test", BindDN: "cn=station,dc=example,dc=test", BaseDN: "dc=example,dc=test", Flavor: "openldap"}
	for _, tc := range []struct {
		name string
		mod  func(*DirectoryConfig)
		want string // "" = valid
	}{
		{"ldap", func(*DirectoryConfig) {}, ""},
		{"embedded-default", func(d *DirectoryConfig) { *d = DirectoryConfig{} }, ""},
		{"embedded-with-url", func(d *DirectoryConfig) { d.Mode = "embedded" }, "are for mode"},
		{"bad-mode", func(d *DirectoryConfig) { d.Mode = "ad" }, `mode "ad"`},
		{"no-url", func(d *DirectoryConfig) { d.URL = "" }, "needs url"},
		{"http-url", func(d *DirectoryConfig) { d.URL = "http://x" }, "is not ldap://"},
		{"url-with-password", func(d *DirectoryConfig) { d.URL = "ldap://u:pw@host" }, "is not ldap://"},
		{"two-urls", func(d *DirectoryConfig) { d.URL = "ldaps://a ldaps://b:1636" }, ""},
		{"no-base", func(d *DirectoryConfig) { d.BaseDN = "" }, "needs base_dn"},
		{"bad-base", func(d *DirectoryConfig) { d.BaseDN = "example.test" }, "base_dn"},
		{"bad-bind", func(d *DirectoryConfig) { d.BindDN = "station" }, "bind_dn"},
		{"no-flavor", func(d *DirectoryConfig) { d.Flavor = "" }, "needs flavor"},
		{"bad-flavor", func(d *DirectoryConfig) { d.Flavor = "novell" }, `flavor "novell"`},
		{"no-credentials", func(d *DirectoryConfig) { d.BindDN = "" }, "needs bind_dn"},
		{"password-file-alone", func(d *DirectoryConfig) { d.BindDN = ""; d.PasswordFile = "pw" }, "password_file without bind_dn"},
		{"cert", func(d *DirectoryConfig) { d.BindDN = ""; d.ClientCert, d.ClientKey = "c.pem", "k.pem" }, ""},
		{"cert-without-key", func(d *DirectoryConfig) { d.BindDN = ""; d.ClientCert = "c.pem" }, "go together"},
		{"cert-and-bind-dn", func(d *DirectoryConfig) { d.ClientCert, d.ClientKey = "c.pem", "k.pem" }, "not both"},
		{"cert-in-the-clear", func(d *DirectoryConfig) {
			d.BindDN, d.URL = "", "ldap://ldap.example.test"
			d.ClientCert, d.ClientKey = "c.pem", "k.pem"
		}, "needs ldaps:// or start_tls"},
		{"cert-starttls", func(d *DirectoryConfig) {
			d.BindDN, d.URL, d.StartTLS = "", "ldap://ldap.example.test", true
			d.ClientCert, d.ClientKey = "c.pem", "k.pem"
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := ok
			tc.mod(&d)
			err := d.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestConfigRefusesDirectoryPassword(t *testing.T) {
	dir := t.TempDir()
	st, err := Init(dir, InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	cfg, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cfg, []byte("[directory]")) {
		t.Fatalf("config.toml has no [directory] section:\n%s", cfg)
	}
	bad := bytes.Replace(cfg, []byte("[directory]"), []byte("[directory]\n  password = \"s3cret\""), 1)
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, nil)
	if err == nil || !strings.Contains(err.Error(), "never goes in the configuration") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open: %v", err)
	}
}

// templatesWithoutSID rewrites the named default templates of st without
// the SID extension: OpenLDAP entries have no objectSid to fill it with.
func templatesWithoutSID(t *testing.T, st *Station, names ...string) {
	t.Helper()
	all := pki.DefaultTemplates()
	for _, name := range names {
		i := slices.IndexFunc(all, func(tmpl *pki.Template) bool { return tmpl.Name == name })
		if i < 0 {
			t.Fatalf("no default template %s", name)
		}
		tmpl := all[i]
		tmpl.SID = false
		if err := pki.WriteTemplate(filepath.Join(st.TemplatesDir(), name+".toml"), tmpl); err != nil {
			t.Fatal(err)
		}
	}
}

// externalStation is a station whose [directory] is a real slapd holding
// the users (with the UPN schema), reopened from its config.toml.
func externalStation(t *testing.T, users string) (*Station, *ldaptest.Slapd) {
	t.Helper()
	suffix := "dc=example,dc=test"
	slapd := ldaptest.NewSlapd(t, ldaptest.SlapdOptions{LDIF: "dn: " + suffix + "\nobjectClass: top\nobjectClass: domain\ndc: example\n\n" +
		"dn: ou=people," + suffix + "\nobjectClass: organizationalUnit\nou: people\n\n" + users})
	dir := t.TempDir()
	st, err := Init(dir, InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	st.Config.Directory = DirectoryConfig{Mode: DirectoryLDAP, URL: slapd.URL, BindDN: slapd.RootDN, PasswordFile: slapd.PasswordFile,
		BaseDN: suffix, UserBase: "ou=people," + suffix, Flavor: directory.ProfileOpenLDAP}
	if err := st.Config.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := saveConfig(dir, st.Config); err != nil {
		t.Fatal(err)
	}
	templatesWithoutSID(t, st, "smartcard-logon")
	st.Close()
	st, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, slapd
}

const erinLDIF = `dn: uid=erin,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: upnPrincipal
uid: erin
cn: Erin Example
sn: Example
displayName: Erin Example
mail: erin@example.test
userPrincipalName: erin@example.test

`

// TestExternalDirectory: with [directory] mode = "ldap" on a real slapd,
// the CA takes a user who exists only in slapd from slapd, publishes the
// certificate there, and the embedded KDC logs the user on with the
// mapping done through slapd.
func TestExternalDirectory(t *testing.T) {
	ldapsearch := testpeer.Path(t, "ldapsearch")
	st, slapd := externalStation(t, erinLDIF)
	if _, err := st.Directory(); !errors.Is(err, ErrExternalDirectory) {
		t.Fatalf("the embedded store is in use: %v", err)
	}
	ctx := context.Background()
	key, csr := pkitest.NewCSR(t, pki.P256)
	issued, err := st.Issue(ctx, nil, "smartcard-logon", csr, "erin", "")
	if err != nil {
		t.Fatal(err)
	}
	if issued.PublishErr != nil {
		t.Fatalf("publication: %v", issued.PublishErr)
	}
	cert := issued.Certificate
	san, _, err := pki.SubjectAltNamesOf(cert)
	if err != nil || san.UPN != "erin@example.test" {
		t.Fatalf("SAN %+v, %v", san, err)
	}
	if !strings.Contains(cert.Subject.String(), "CN=Erin Example") {
		t.Errorf("subject %s does not come from slapd", cert.Subject)
	}
	// The certificate is on erin's slapd entry, read back by ldapsearch.
	cmd := exec.Command(ldapsearch, "-LLL", "-x", "-H", slapd.URL, "-D", slapd.RootDN, "-w", slapd.RootPassword,
		"-b", "uid=erin,ou=people,dc=example,dc=test", "-s", "base", "(objectClass=*)", "userCertificate;binary")
	cmd.Env = slapd.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ldapsearch: %v\n%s", err, out)
	}
	unfolded := strings.ReplaceAll(string(out), "\n ", "")
	if !strings.Contains(unfolded, "userCertificate;binary:: "+base64.StdEncoding.EncodeToString(cert.Raw)) {
		t.Fatalf("the certificate is not on the slapd entry:\n%s", out)
	}

	// A user slapd does not have is refused, and nothing is issued.
	_, csr2 := pkitest.NewCSR(t, pki.P256)
	var pe *pki.PolicyError
	if _, err := st.Issue(ctx, nil, "smartcard-logon", csr2, "zed", ""); !errors.As(err, &pe) || !strings.Contains(err.Error(), "no such user") {
		t.Fatalf("issued for a user slapd does not have: %v", err)
	}

	// The embedded KDC maps erin through slapd.
	k, stop := serveKDC(t, st, KDCOptions{TCP: "127.0.0.1:0", UDP: "127.0.0.1:0"})
	defer stop()
	roots := caRoots(t, st)
	c := &kdc.Client{Realm: "EXAMPLE.TEST", KDC: k.TCPAddr().String(), Certificate: cert, Key: key, Roots: roots}
	if _, err := c.PKINIT(ctx, "erin", kdc.PKINITOptions{}); err != nil {
		t.Fatalf("logon: %v", err)
	}
	if _, err := c.PKINIT(ctx, "erin@example.test", kdc.PKINITOptions{Enterprise: true}); err != nil {
		t.Fatalf("logon by UPN: %v", err)
	}
	// MIT kinit, with the certificate and key as a FILE: identity.
	if err := kinitFile(t, k.TCPAddr().String(), caRoot(t, st), cert, key, "erin@EXAMPLE.TEST"); err != nil {
		t.Fatal(err)
	}

	// The KDC asks slapd each time: once erin's UPN changes there, the
	// certificate's UPN names nobody (the pkinit SAN still names erin),
	// and once erin is gone, erin cannot log on.
	l, err := ldap.DialURL(slapd.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Bind(slapd.RootDN, slapd.RootPassword); err != nil {
		t.Fatal(err)
	}
	mod := ldap.NewModifyRequest("uid=erin,ou=people,dc=example,dc=test", nil)
	mod.Replace("userPrincipalName", []string{"erin.example@example.test"})
	if err := l.Modify(mod); err != nil {
		t.Fatal(err)
	}
	var re *kdc.RemoteError
	if _, err := c.PKINIT(ctx, "erin@example.test", kdc.PKINITOptions{Enterprise: true}); !errors.As(err, &re) || re.Code != kdc.ErrCPrincipalUnknown {
		t.Fatalf("logon by a UPN slapd no longer has: %v", err)
	}
	if _, err := c.PKINIT(ctx, "erin", kdc.PKINITOptions{}); err != nil {
		t.Fatalf("logon by the pkinit SAN: %v", err)
	}
	if err := l.Del(ldap.NewDelRequest("uid=erin,ou=people,dc=example,dc=test", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PKINIT(ctx, "erin", kdc.PKINITOptions{}); !errors.As(err, &re) || re.Code != kdc.ErrCPrincipalUnknown {
		t.Fatalf("logon of a user deleted from slapd: %v", err)
	}
	if err := kinitFile(t, k.TCPAddr().String(), caRoot(t, st), cert, key, "erin@EXAMPLE.TEST"); err == nil || !strings.Contains(err.Error(), "not found in Kerberos database") {
		t.Fatalf("kinit of a user deleted from slapd: %v", err)
	}
}

// TestServeExternalBind: the station's LDAPS service takes SASL EXTERNAL
// binds with certificates from the station CA (ldapwhoami, the real
// client), and refuses them once revoked.
func TestServeExternalBind(t *testing.T) {
	whoami := testpeer.Path(t, "ldapwhoami")
	dir := t.TempDir()
	st, err := Init(dir, InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	users, err := st.Directory()
	if err != nil {
		t.Fatal(err)
	}
	alice, err := users.AddUser(directory.User{Name: "alice", UPN: "alice@example.test", DisplayName: "Alice"})
	if err != nil {
		t.Fatal(err)
	}
	key, csr := pkitest.NewCSR(t, pki.P256)
	issued, err := st.Issue(context.Background(), nil, "smartcard-logon", csr, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	chain, err := st.CAChain()
	if err != nil {
		t.Fatal(err)
	}
	certFile := pkitest.WritePEM(t, dir, "alice.pem", issued.Chain)
	keyFile := pkitest.WritePEM(t, dir, "alice.key", key)
	caFile := pkitest.WritePEM(t, dir, "ca.pem", chain[len(chain)-1])

	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 2)
	done := make(chan error, 1)
	go func() {
		done <- st.Serve(ctx, ServeOptions{LDAP: "127.0.0.1:0", LDAPS: "127.0.0.1:0", Ready: func(_, addr string) { addrs <- addr }})
	}()
	defer func() { cancel(); <-done }()
	ldapAddr, ldapsAddr := <-addrs, <-addrs
	port := func(a string) string { return a[strings.LastIndex(a, ":")+1:] }
	env := []string{"LDAPCONF=/dev/null", "LDAPRC=/dev/null", "HOME=" + dir, "LDAPTLS_CACERT=" + caFile, "LDAPTLS_REQCERT=demand",
		"LDAPTLS_CERT=" + certFile, "LDAPTLS_KEY=" + keyFile}
	run := func(args ...string) (int, string) {
		cmd := exec.Command(whoami, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	for _, args := range [][]string{{"-H", "ldaps://localhost:" + port(ldapsAddr)}, {"-H", "ldap://localhost:" + port(ldapAddr), "-ZZ"}} {
		code, out := run(append(args, "-Y", "EXTERNAL")...)
		if code != 0 || !strings.Contains(out, "dn:"+alice.DN) {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
	}
	if _, err := st.Revoke(issued.Certificate.SerialNumber, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if code, out := run("-H", "ldaps://localhost:"+port(ldapsAddr), "-Y", "EXTERNAL"); code != 49 {
		t.Fatalf("revoked certificate: exit %d\n%s", code, out)
	}
	// Password binds still work without a client certificate.
	if err := users.SetPassword("alice", []byte("alice-password-1")); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(chain[len(chain)-1])
	l, err := ldap.DialURL("ldaps://"+ldapsAddr, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: "localhost"}))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Bind(alice.DN, "alice-password-1"); err != nil {
		t.Fatal(err)
	}
}

// kinitFile logs principal on with MIT kinit against the KDC at addr; it
// returns kinit's refusal, if any.
func kinitFile(t *testing.T, addr string, root, cert *x509.Certificate, key crypto.Signer, principal string) error {
	t.Helper()
	dir := t.TempDir()
	ident := "FILE:" + pkitest.WritePEM(t, dir, "user.pem", cert) + "," + pkitest.WritePEM(t, dir, "user.key", key)
	_, cache, err := mitKinit(t, nil, addr, pkitest.WritePEM(t, dir, "root.pem", root), ident, "", principal)
	if err != nil {
		return err
	}
	if st, err := os.Stat(cache); err != nil || st.Size() == 0 {
		t.Fatalf("kinit wrote no credential cache: %v", err)
	}
	return nil
}

// TestExternalDirectoryCertificateBind: the station binds to slapd with a
// client certificate from its own CA (SASL EXTERNAL; [directory]
// client_cert and client_key, relative to the data directory), and still
// issues from and publishes to slapd.
func TestExternalDirectoryCertificateBind(t *testing.T) {
	dir := t.TempDir()
	st, err := Init(dir, InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close() }()
	chain, err := st.CAChain()
	if err != nil {
		t.Fatal(err)
	}
	suffix := "dc=example,dc=test"
	stationDN := "uid=station,ou=people," + suffix
	slapd := ldaptest.NewSlapd(t, ldaptest.SlapdOptions{
		TLS: true, ClientCAs: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[len(chain)-1].Raw}),
		// Logon certificates from the station CA name dc=test,dc=example,cn=NAME.
		AuthzRegexp: [][2]string{{"^cn=([^,]+),dc=example,dc=test$", "ldap:///ou=people,dc=example,dc=test??one?(cn=$1)"}},
		Database:    []string{`access to * by dn.exact="` + stationDN + `" write by * read`},
		LDIF: "dn: " + suffix + "\nobjectClass: top\nobjectClass: domain\ndc: example\n\n" +
			"dn: ou=people," + suffix + "\nobjectClass: organizationalUnit\nou: people\n\n" + erinLDIF +
			"dn: " + stationDN + "\nobjectClass: inetOrgPerson\nobjectClass: upnPrincipal\nuid: station\ncn: Station Service\nsn: Service\n" +
			"userPrincipalName: station@example.test\n\n",
	})
	templatesWithoutSID(t, st, "smartcard-logon")
	// First with a password, to issue the station its own certificate
	// (the CA takes the station's entry from slapd too).
	st.Config.Directory = DirectoryConfig{Mode: DirectoryLDAP, URL: slapd.LDAPSURL, CAFile: slapd.CACertFile,
		BindDN: slapd.RootDN, PasswordFile: slapd.PasswordFile, BaseDN: suffix, Flavor: directory.ProfileOpenLDAP}
	reopen := func() {
		t.Helper()
		if err := st.Config.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := saveConfig(dir, st.Config); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if st, err = Open(dir, nil); err != nil {
			t.Fatal(err)
		}
	}
	reopen()
	key, csr := pkitest.NewCSR(t, pki.P256)
	issued, err := st.Issue(context.Background(), nil, "smartcard-logon", csr, "station", "")
	if err != nil {
		t.Fatal(err)
	}
	pkitest.WritePEM(t, dir, "ldap-client.pem", issued.Chain)
	pkitest.WritePEM(t, dir, "ldap-client.key", key)
	st.Config.Directory.BindDN, st.Config.Directory.PasswordFile = "", ""
	st.Config.Directory.ClientCert, st.Config.Directory.ClientKey = "ldap-client.pem", "ldap-client.key"
	reopen()
	d, err := st.UserDirectory()
	if err != nil {
		t.Fatal(err)
	}
	id, err := d.(*directory.Client).WhoAmI(context.Background())
	if err != nil || id != "dn:"+stationDN {
		t.Fatalf("the station is bound as %q (%v), want dn:%s", id, err, stationDN)
	}
	_, csr2 := pkitest.NewCSR(t, pki.P256)
	issued, err = st.Issue(context.Background(), nil, "smartcard-logon", csr2, "erin", "")
	if err != nil || issued.PublishErr != nil {
		t.Fatalf("issue: %v; publication: %v", err, issued.PublishErr)
	}
	certs, err := d.UserCertificates(context.Background(), "erin")
	if err != nil || len(certs) != 1 || !bytes.Equal(certs[0], issued.Certificate.Raw) {
		t.Fatalf("certificates on erin's slapd entry: %d, %v", len(certs), err)
	}
}
