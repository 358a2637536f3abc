package ldaptest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/internal/testpeer"
)

// SlapdOptions adjust a slapd peer.
type SlapdOptions struct {
	// Suffix is the database suffix (default dc=example,dc=test).
	Suffix string
	// LDIF is loaded with slapadd before slapd starts (it should hold the
	// suffix entry); empty: slapd starts with an empty database.
	LDIF string
	// TLS adds an LDAPS listener and StartTLS, with a test CA.
	TLS bool
	// MemberOf loads the memberof overlay (memberOf on members).
	MemberOf bool
	// Indexes are slapd.conf index lines (default: the embedded
	// directory's equality indexes that OpenLDAP's schema has).
	Indexes []string
	// Threads is slapd's thread count (0: slapd's default).
	Threads int
	// Database holds more slapd.conf lines for the database (access,
	// limits, ...).
	Database []string
	// ClientCAs (PEM, with TLS) are CAs whose client certificates slapd
	// accepts (TLSVerifyClient try): clients may then bind with SASL
	// EXTERNAL, as the certificate's subject DN, which AuthzRegexp maps
	// to an entry.
	ClientCAs []byte
	// AuthzRegexp are authz-regexp rules, each a match and a replacement
	// (slapd.conf(5)), such as {"^cn=([^,]+)$",
	// "ldap:///ou=people,dc=example,dc=test??one?(uid=$1)"}.
	AuthzRegexp [][2]string
}

// Slapd is a running OpenLDAP slapd (back-mdb) on loopback, the peer the
// client is tested against (REFERENCE.md §6). It is stopped when the test
// ends. A missing slapd skips the test (fails it with CI=true).
type Slapd struct {
	URL, LDAPSURL string
	Suffix        string
	// RootDN may write; RootPassword is also in PasswordFile.
	RootDN, RootPassword, PasswordFile string
	// CACertFile trusts the server certificate (TLS only); ClientTLS too.
	CACertFile string
	ClientTLS  *tls.Config
	// Dir holds slapd.conf (ConfFile), the database and the logs.
	Dir, ConfFile string
	cmd           *exec.Cmd
	done          chan struct{}
}

// DefaultSlapdIndexes are the indexes of the benchmark and the tests: the
// same equality indexes the embedded store keeps.
var DefaultSlapdIndexes = []string{"objectClass,uid,mail,cn,sn,givenName,displayName,userPrincipalName,member eq"}

// NewSlapd writes a configuration, loads opts.LDIF with slapadd and starts
// slapd.
func NewSlapd(tb testing.TB, opts SlapdOptions) *Slapd {
	tb.Helper()
	paths := testpeer.Require(tb, "slapd", "slapadd", "slaptest")
	slapd, slapadd, slaptest := paths[0], paths[1], paths[2]
	if opts.Suffix == "" {
		opts.Suffix = "dc=example,dc=test"
	}
	if opts.Indexes == nil {
		opts.Indexes = DefaultSlapdIndexes
	}
	dir := tb.TempDir()
	s := &Slapd{Suffix: opts.Suffix, RootDN: "cn=admin," + opts.Suffix, RootPassword: directory.GeneratePassword(), Dir: dir}
	s.PasswordFile = filepath.Join(dir, "rootpw")
	must(tb, os.WriteFile(s.PasswordFile, []byte(s.RootPassword+"\n"), 0o600))
	must(tb, os.MkdirAll(filepath.Join(dir, "db"), 0o700))
	must(tb, os.WriteFile(filepath.Join(dir, "upn.schema"), []byte(directory.OpenLDAPSchema), 0o644))

	var conf strings.Builder
	for _, sch := range []string{"core", "cosine", "nis", "inetorgperson"} {
		fmt.Fprintf(&conf, "include /etc/ldap/schema/%s.schema\n", sch)
	}
	fmt.Fprintf(&conf, "include %s/upn.schema\n", dir)
	fmt.Fprintf(&conf, "pidfile %s/slapd.pid\nargsfile %s/slapd.args\n", dir, dir)
	fmt.Fprintf(&conf, "modulepath %s\nmoduleload back_mdb\n", moduleDir())
	if opts.MemberOf {
		conf.WriteString("moduleload memberof\n")
	}
	if opts.Threads > 0 {
		fmt.Fprintf(&conf, "threads %d\n", opts.Threads)
	}
	if opts.TLS {
		ca, cert, key, client := tlsFiles(tb, dir)
		s.CACertFile, s.ClientTLS = ca, client
		if len(opts.ClientCAs) > 0 {
			// One file holds the CA of slapd's own certificate and the CAs
			// it accepts client certificates from.
			caPEM, err := os.ReadFile(ca)
			must(tb, err)
			ca = filepath.Join(dir, "trusted-cas.pem")
			must(tb, os.WriteFile(ca, append(append(caPEM, '\n'), opts.ClientCAs...), 0o644))
		}
		fmt.Fprintf(&conf, "TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n", ca, cert, key)
		if len(opts.ClientCAs) > 0 {
			conf.WriteString("TLSVerifyClient try\n")
		}
	}
	for _, r := range opts.AuthzRegexp {
		fmt.Fprintf(&conf, "authz-regexp %q %q\n", r[0], r[1])
	}
	fmt.Fprintf(&conf, "database mdb\nmaxsize 4294967296\nsuffix %q\nrootdn %q\nrootpw %s\ndirectory %s/db\n", opts.Suffix, s.RootDN, s.RootPassword, dir)
	for _, ix := range opts.Indexes {
		fmt.Fprintf(&conf, "index %s\n", ix)
	}
	for _, l := range opts.Database {
		conf.WriteString(l + "\n")
	}
	if opts.MemberOf {
		conf.WriteString("overlay memberof\n")
	}
	s.ConfFile = filepath.Join(dir, "slapd.conf")
	must(tb, os.WriteFile(s.ConfFile, []byte(conf.String()), 0o600))
	if out, err := exec.Command(slaptest, "-f", s.ConfFile, "-u").CombinedOutput(); err != nil {
		tb.Fatalf("slaptest: %v\n%s\n%s", err, out, conf.String())
	}
	if opts.LDIF != "" {
		ldif := filepath.Join(dir, "load.ldif")
		must(tb, os.WriteFile(ldif, []byte(opts.LDIF), 0o600))
		if out, err := exec.Command(slapadd, "-q", "-f", s.ConfFile, "-l", ldif).CombinedOutput(); err != nil {
			tb.Fatalf("slapadd: %v\n%s", err, out)
		}
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if lastErr = s.start(tb, slapd, opts.TLS); lastErr == nil {
			tb.Cleanup(s.Stop)
			return s
		}
	}
	tb.Fatalf("slapd did not start: %v", lastErr)
	return nil
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// moduleDir is where Debian keeps slapd's modules (back_mdb.la).
func moduleDir() string {
	for _, d := range []string{"/usr/lib/ldap", "/usr/lib/x86_64-linux-gnu/ldap", "/usr/lib/aarch64-linux-gnu/ldap", "/usr/local/libexec/openldap"} {
		if _, err := os.Stat(filepath.Join(d, "back_mdb.la")); err == nil {
			return d
		}
	}
	return "/usr/lib/ldap"
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *Slapd) start(tb testing.TB, slapd string, useTLS bool) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", port)
	urls := s.URL + "/"
	if useTLS {
		tport, err := freePort()
		if err != nil {
			return err
		}
		s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", tport)
		urls += " " + s.LDAPSURL + "/"
	}
	// -d 0: stay in the foreground (slapd does not fork with -d).
	cmd := exec.Command(slapd, "-d", "0", "-f", s.ConfFile, "-h", urls)
	var logBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("slapd exited: %s", logBuf.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.URL[len("ldap://"):], 200*time.Millisecond); err == nil {
			c.Close()
			s.cmd, s.done = cmd, done
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-done
	return fmt.Errorf("slapd did not listen on %s: %s", s.URL, logBuf.String())
}

// Stop stops slapd (SIGINT, then SIGKILL after 5 s).
func (s *Slapd) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Env is the environment for OpenLDAP's clients against this slapd.
func (s *Slapd) Env() []string {
	env := []string{"LDAPCONF=/dev/null", "LDAPRC=/dev/null", "HOME=" + s.Dir, "PATH=" + os.Getenv("PATH")}
	if s.CACertFile != "" {
		env = append(env, "LDAPTLS_CACERT="+s.CACertFile, "LDAPTLS_REQCERT=demand")
	}
	return env
}

// tlsFiles writes a test CA, a server certificate for 127.0.0.1 and its
// key (PKCS #8) as PEM files.
func tlsFiles(tb testing.TB, dir string) (caFile, certFile, keyFile string, client *tls.Config) {
	tb.Helper()
	server, client, caPEM := newTLS(tb)
	cert := server.Certificates[0]
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	must(tb, err)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	must(tb, os.WriteFile(caFile, caPEM, 0o644))
	must(tb, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644))
	must(tb, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return caFile, certFile, keyFile, client
}
