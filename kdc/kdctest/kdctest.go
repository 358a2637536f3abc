// Package kdctest runs a KDC for tests, the way net/http/httptest runs an
// HTTP server: a test CA (pki/pkitest) with a KDC certificate from its
// "kdc" template, a key store in a temporary directory, an in-memory
// directory of users, a service principal, and UDP and TCP listeners on a
// loopback port. StartMITKDC runs MIT's krb5kdc as the peer to compare
// with or to test our client against. Everything is torn down when the
// test ends.
package kdctest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

// Realm and Domain of every test realm (those of pkitest).
const (
	Realm  = pkitest.Realm
	Domain = pkitest.Domain
	// Service is the service principal every test realm has.
	Service = "host/station.example.test"
	// WindowsLogon is a template with only the UPN SAN and the smart card
	// logon and client authentication EKUs, as an AD CS "Smartcard Logon"
	// certificate has (no id-pkinit-san, no id-pkinit-KPClientAuth).
	WindowsLogon = "windows-logon"
	// NoLogonEKU is a template for a user certificate without any logon EKU.
	NoLogonEKU = "no-logon-eku"
)

// Options vary the realm.
type Options struct {
	// KeyAlgorithm of the CA and the KDC certificate (default P-256).
	KeyAlgorithm pki.KeyAlgorithm
	// CANow is the CA's clock (default time.Now), e.g. to issue expired
	// certificates.
	CANow func() time.Time
	// Now is the KDC's clock (default time.Now).
	Now func() time.Time
	// StrongMapping is the KDC's mapping mode.
	StrongMapping kdc.MappingMode
	// RequireFreshness is passed to the KDC.
	RequireFreshness bool
	// ExtraRoots are more trust anchors for the KDC.
	ExtraRoots []*x509.Certificate
	// NoServe builds the KDC without starting its listeners.
	NoServe bool
}

// Server is a running test realm.
type Server struct {
	CA      *pkitest.Env
	KDC     *kdc.KDC
	Store   *kdc.Store
	Users   *Users
	KDCCert *x509.Certificate
	KDCKey  crypto.Signer
	// Addr is the KDC's address, the same port for TCP and UDP.
	Addr string
	Dir  string
	Log  *LogBuffer
}

// New starts a test realm; it fails the test on any error.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.KeyAlgorithm == "" {
		opts.KeyAlgorithm = pki.P256
	}
	templates, err := pki.LoadTemplates(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	win := *templates["smartcard-logon"]
	win.Name, win.Description = WindowsLogon, "Smart card logon, Windows form (UPN only)"
	win.SubjectAltNames = []string{"upn"}
	win.ExtKeyUsage = []string{"smartcardLogon", "clientAuth"}
	win.SID = false
	noEKU := *templates["smartcard-logon"]
	noEKU.Name, noEKU.Description = NoLogonEKU, "User certificate without a logon EKU"
	noEKU.ExtKeyUsage = []string{"clientAuth", "emailProtection"}
	for _, t := range []*pki.Template{&win, &noEKU} {
		if err := t.Validate(); err != nil {
			tb.Fatal(err)
		}
		templates[t.Name] = t
	}
	ca := pkitest.New(tb, pkitest.Options{KeyAlgorithm: opts.KeyAlgorithm, Templates: templates, Now: opts.CANow})
	s := &Server{CA: ca, Users: &Users{}, Dir: tb.TempDir(), Log: &LogBuffer{}}
	issued, key := ca.Issue(tb, "kdc", "kdc.example.test", opts.KeyAlgorithm)
	s.KDCCert, s.KDCKey = issued.Certificate, key
	s.Store, err = kdc.OpenStore(filepath.Join(s.Dir, "kdc"), Realm)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Store.AddService(Service); err != nil {
		tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.CA.Root())
	for _, r := range opts.ExtraRoots {
		roots.AddCert(r)
	}
	var logOut = slog.New(slog.NewTextHandler(s.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	k, err := kdc.New(kdc.Config{
		Realm: Realm, Store: s.Store, Principals: kdc.Stores{s.Store, s.Users},
		Certificate: s.KDCCert, Key: s.KDCKey, Roots: roots,
		Revocation:    RevocationFromDB(ca.DB),
		StrongMapping: opts.StrongMapping, RequireFreshness: opts.RequireFreshness,
		UDP: "127.0.0.1:0", TCP: "127.0.0.1:0",
		Now: opts.Now, Log: logOut,
	})
	if err != nil {
		tb.Fatal(err)
	}
	s.KDC = k
	if _, fuzz := tb.(*testing.F); !fuzz { // F may not log from the fuzz target's cleanup
		tb.Cleanup(func() {
			if tb.Failed() {
				tb.Logf("KDC log:\n%s", s.Log.String())
			}
		})
	}
	if opts.NoServe {
		return s
	}
	Serve(tb, k)
	s.Addr = k.TCPAddr().String()
	return s
}

// Serve opens k's listeners and serves until stop or the end of the test;
// an error from Serve fails the test. stop may be called more than once,
// so that a test can stop the KDC before what it reads from closes.
func Serve(tb testing.TB, k *kdc.KDC) (stop func()) {
	tb.Helper()
	if err := k.Listen(); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Serve(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("KDC Serve: %v", err)
		}
	})
	tb.Cleanup(stop)
	return stop
}

// RevocationFromDB is a revocation checker backed by a CA database, as the
// station uses: a certificate the database does not know is of unknown
// status.
func RevocationFromDB(db *pki.DB) kdc.RevocationChecker {
	return func(cert *x509.Certificate) (bool, string, error) {
		rec, err := db.Get(cert.SerialNumber)
		if err != nil {
			return false, "", err
		}
		if !bytes.Equal(rec.DER, cert.Raw) {
			return false, "", errors.New("the CA database holds another certificate with this serial number")
		}
		if rec.Status != pki.StatusValid {
			return true, rec.Reason.String(), nil
		}
		return false, "", nil
	}
}

// AddUser creates a user in the CA's user store and in the directory, with
// UPN name@example.test and a SID.
func (s *Server) AddUser(name string) *kdc.Principal {
	u := s.CA.Users.Add(name)
	p := &kdc.Principal{Name: u.Name, UPN: u.UPN, SID: u.SID}
	s.Users.Put(p)
	return p
}

// Issue issues a certificate from a template to a user (or host).
func (s *Server) Issue(tb testing.TB, template, user string, alg pki.KeyAlgorithm) (*x509.Certificate, crypto.Signer) {
	tb.Helper()
	issued, key := s.CA.Issue(tb, template, user, alg)
	return issued.Certificate, key
}

// Client returns a PKINIT client for the realm with a certificate and key.
func (s *Server) Client(cert *x509.Certificate, key crypto.Signer) *kdc.Client {
	roots := x509.NewCertPool()
	roots.AddCert(s.CA.CA.Root())
	return &kdc.Client{Realm: Realm, KDC: s.Addr, Certificate: cert, Key: key, Roots: roots}
}

// ServiceKeys returns the keys of a service principal.
func (s *Server) ServiceKeys(tb testing.TB, name string) []kdc.Key {
	tb.Helper()
	p, err := s.Store.LookupService(context.Background(), name)
	if err != nil {
		tb.Fatal(err)
	}
	return p.Keys
}

// WriteKrb5Conf writes an MIT krb5.conf for the realm into dir, with the
// CA root as pkinit_anchors, and returns its path. TCP only. libdefaults
// are more [libdefaults] lines, such as "kdc_timesync = 0".
func (s *Server) WriteKrb5Conf(tb testing.TB, dir string, libdefaults ...string) string {
	tb.Helper()
	root := pkitest.WritePEM(tb, dir, "kdc-root.pem", s.CA.CA.Root())
	var extra string
	for _, l := range libdefaults {
		extra += "\t" + l + "\n"
	}
	conf := fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	udp_preference_limit = 1
	forwardable = true
%[5]s
[realms]
	%[1]s = {
		kdc = %[2]s
		pkinit_anchors = FILE:%[3]s
	}

[domain_realm]
	.%[4]s = %[1]s
	%[4]s = %[1]s
`, Realm, s.Addr, root, Domain, extra)
	p := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// Users is an in-memory kdc.PrincipalStore of directory users (no
// services), found by login name or UPN, case-insensitively.
type Users struct {
	mu    sync.Mutex
	users map[string]*kdc.Principal
}

// Put stores a user as given.
func (u *Users) Put(p *kdc.Principal) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.users == nil {
		u.users = map[string]*kdc.Principal{}
	}
	c := *p
	u.users[strings.ToLower(p.Name)] = &c
}

// Delete removes a user.
func (u *Users) Delete(name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.users, strings.ToLower(name))
}

// LookupUser implements kdc.PrincipalStore.
func (u *Users) LookupUser(_ context.Context, name string) (*kdc.Principal, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if p, ok := u.users[strings.ToLower(name)]; ok {
		c := *p
		return &c, nil
	}
	for _, p := range u.users {
		if p.UPN != "" && strings.EqualFold(p.UPN, name) {
			c := *p
			return &c, nil
		}
	}
	return nil, kdc.ErrUnknownPrincipal
}

// LookupService implements kdc.PrincipalStore: the directory has none.
func (u *Users) LookupService(context.Context, string) (*kdc.Principal, error) {
	return nil, kdc.ErrUnknownPrincipal
}

// LogBuffer collects the KDC's log, safe for concurrent use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
