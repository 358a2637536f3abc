// Package ldaptest starts the embedded directory's LDAP server for tests,
// the way net/http/httptest starts an HTTP server: a fresh store in a
// temporary directory, an administrator with a random password, a test CA
// and a server certificate for 127.0.0.1, and listeners for LDAP (with
// StartTLS) and LDAPS on loopback ports. Everything is torn down when the
// test ends.
package ldaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scstation/scstation/directory"
)

// Options adjust the server.
type Options struct {
	// Domain is the directory's domain (default example.test).
	Domain string
	// NoTLS starts no LDAPS listener and offers no StartTLS.
	NoTLS bool
	// Limits are passed to the server.
	Limits directory.Limits
	// Log receives the server's log (default: discarded).
	Log *slog.Logger
	// AllowInsecureBind is passed to the server.
	AllowInsecureBind bool
	// ClientCAs, Revocation and Realm are passed to the server: with
	// ClientCAs, clients may bind with SASL EXTERNAL and a certificate
	// from one of these CAs.
	ClientCAs  *x509.CertPool
	Revocation func(*x509.Certificate) (bool, string, error)
	Realm      string
}

// Server is a running test directory.
type Server struct {
	// URL is ldap://127.0.0.1:PORT; LDAPSURL is ldaps://127.0.0.1:PORT
	// ("" with NoTLS).
	URL, LDAPSURL string
	Addr, TLSAddr string
	BaseDN        string
	// AdminDN belongs to the admin group; AdminPassword is random.
	AdminDN, AdminPassword string
	// CACertFile is the PEM file of the CA that issued the server
	// certificate, for LDAPTLS_CACERT; ClientTLS trusts it.
	CACertFile string
	ClientTLS  *tls.Config
	Store      *directory.Store
	Server     *directory.Server
	// Dir is a scratch directory that lives as long as the server.
	Dir string
}

// New starts a server; it fails the test on any error.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Domain == "" {
		opts.Domain = "example.test"
	}
	dir := tb.TempDir()
	store, err := directory.Open(filepath.Join(dir, "directory.db"), directory.Options{Domain: opts.Domain})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	pw := directory.GeneratePassword()
	admin, err := store.CreateUser(directory.User{Name: "admin", UPN: "admin@" + opts.Domain, DisplayName: "Directory Administrator"}, []byte(pw))
	if err != nil {
		tb.Fatal(err)
	}
	if err := store.AddMember(directory.AdminGroup, "admin"); err != nil {
		tb.Fatal(err)
	}
	s := &Server{BaseDN: store.BaseDN(), AdminDN: admin.DN, AdminPassword: pw, Store: store, Dir: dir}
	cfg := directory.Config{Store: store, Limits: opts.Limits, Log: opts.Log, AllowInsecureBind: opts.AllowInsecureBind,
		ClientCAs: opts.ClientCAs, Revocation: opts.Revocation, Realm: opts.Realm}
	if !opts.NoTLS {
		serverTLS, clientTLS, caPEM := newTLS(tb)
		cfg.TLSConfig, s.ClientTLS = serverTLS, clientTLS
		s.CACertFile = filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(s.CACertFile, caPEM, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	srv, err := directory.NewServer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	s.Server = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	s.URL = "ldap://" + s.Addr
	go srv.Serve(ln)
	if !opts.NoTLS {
		tln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		s.TLSAddr = tln.Addr().String()
		s.LDAPSURL = "ldaps://" + s.TLSAddr
		go srv.ServeTLS(tln)
	}
	tb.Cleanup(func() { srv.Close() })
	return s
}

// Env is the environment for OpenLDAP's command-line clients: the test CA
// as LDAPTLS_CACERT, and no system or user ldap.conf.
func (s *Server) Env() []string {
	env := []string{"LDAPCONF=/dev/null", "LDAPRC=/dev/null", "HOME=" + s.Dir, "PATH=" + os.Getenv("PATH")}
	if s.CACertFile != "" {
		env = append(env, "LDAPTLS_CACERT="+s.CACertFile, "LDAPTLS_REQCERT=demand")
	}
	return env
}

// newTLS makes a CA and a server certificate for 127.0.0.1 and localhost.
func newTLS(tb testing.TB) (server, client *tls.Config, caPEM []byte) {
	tb.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ldaptest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der, caDER}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return server, client, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}
