// Package pkitest sets up certificate authorities for tests, the way
// net/http/httptest sets up servers: a CA with a fresh key, a database in a
// temporary directory, and an in-memory user store.
package pkitest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scstation/scstation/pki"
)

// Realm and Domain of every test CA.
const (
	Realm  = "EXAMPLE.TEST"
	Domain = "example.test"
)

// Users is an in-memory pki.UserStore.
type Users struct {
	mu    sync.Mutex
	users map[string]*pki.User
	next  int
}

// Add creates name@example.test with a mail address and a SID.
func (u *Users) Add(name string) *pki.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.users == nil {
		u.users = make(map[string]*pki.User)
	}
	u.next++
	usr := &pki.User{
		Name: name, UPN: name + "@" + Domain, Mail: name + "@" + Domain,
		DisplayName: strings.ToUpper(name[:1]) + name[1:],
		SID:         fmt.Sprintf("S-1-5-21-1004336348-1177238915-682003330-%d", 1100+u.next),
	}
	u.users[strings.ToLower(name)] = usr
	return usr
}

// Put stores a user as given.
func (u *Users) Put(usr *pki.User) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.users == nil {
		u.users = make(map[string]*pki.User)
	}
	u.users[strings.ToLower(usr.Name)] = usr
}

// LookupUser implements pki.UserStore by login name or UPN.
func (u *Users) LookupUser(_ context.Context, name string) (*pki.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if usr, ok := u.users[strings.ToLower(name)]; ok {
		c := *usr
		return &c, nil
	}
	for _, usr := range u.users {
		if strings.EqualFold(usr.UPN, name) {
			c := *usr
			return &c, nil
		}
	}
	return nil, pki.ErrUnknownUser
}

// Env is a running test CA.
type Env struct {
	CA    *pki.CA
	Key   crypto.Signer
	DB    *pki.DB
	Users *Users
	Dir   string
}

// Options vary the test CA.
type Options struct {
	KeyAlgorithm pki.KeyAlgorithm // default P-256
	Templates    map[string]*pki.Template
	Publisher    pki.Publisher
	Now          func() time.Time
}

// New makes a root CA in a temporary directory; it is closed when the test
// ends.
func New(tb testing.TB, opts Options) *Env {
	tb.Helper()
	if opts.KeyAlgorithm == "" {
		opts.KeyAlgorithm = pki.P256
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	key, err := pki.GenerateKey(opts.KeyAlgorithm)
	if err != nil {
		tb.Fatal(err)
	}
	root, err := pki.CreateRoot(key, pki.CAName{CommonName: Realm + " Test CA", Organization: Realm}, 10*365*24*time.Hour, now())
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	db, err := pki.OpenDB(filepath.Join(dir, "ca.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	users := &Users{}
	ca, err := pki.New(pki.Config{
		Signer: key, Chain: []*x509.Certificate{root}, DB: db, Templates: opts.Templates,
		Users: users, Publisher: opts.Publisher, Realm: Realm, Domain: Domain,
		CRLURL: "http://127.0.0.1:1080" + pki.PathCRL, IssuerURL: "http://127.0.0.1:1080" + pki.PathCACert,
		Now: opts.Now,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return &Env{CA: ca, Key: key, DB: db, Users: users, Dir: dir}
}

// NewCSR makes a key and a PKCS#10 request for it, with a subject the CA
// must ignore.
func NewCSR(tb testing.TB, alg pki.KeyAlgorithm) (crypto.Signer, []byte) {
	tb.Helper()
	key, err := pki.GenerateKey(alg)
	if err != nil {
		tb.Fatal(err)
	}
	return key, csrFor(tb, key)
}

// csrFor is a PKCS#10 request signed by key, with a subject the CA must
// ignore.
func csrFor(tb testing.TB, key crypto.Signer) []byte {
	tb.Helper()
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "Mallory", Organization: []string{"Not From The Directory"}},
		EmailAddresses: []string{"mallory@evil.test"},
	}, key)
	if err != nil {
		tb.Fatal(err)
	}
	return csr
}

// Issue issues a certificate for a new key as the CA operator.
func (e *Env) Issue(tb testing.TB, template, user string, alg pki.KeyAlgorithm) (*pki.Issued, crypto.Signer) {
	tb.Helper()
	key, err := pki.GenerateKey(alg)
	if err != nil {
		tb.Fatal(err)
	}
	return e.IssueKey(tb, template, user, key), key
}

// IssueKey issues a certificate for key (one on a card, say) as the CA
// operator, from a request key signs.
func (e *Env) IssueKey(tb testing.TB, template, user string, key crypto.Signer) *pki.Issued {
	tb.Helper()
	req, err := pki.ParseRequest(csrFor(tb, key))
	if err != nil {
		tb.Fatal(err)
	}
	ir := pki.IssueRequest{Template: template, Request: req, Requester: pki.RequesterOperator, User: user}
	if t, err := e.CA.Template(template); err == nil && t.Host {
		ir.User, ir.Host = "", user
	}
	issued, err := e.CA.Issue(context.Background(), ir)
	if err != nil {
		tb.Fatalf("issuing %s for %s: %v", template, user, err)
	}
	return issued
}

// Agent creates a user and issues them an enrollment agent certificate.
func (e *Env) Agent(tb testing.TB, name string) (*x509.Certificate, crypto.Signer) {
	tb.Helper()
	if _, err := e.Users.LookupUser(context.Background(), name); err != nil {
		e.Users.Add(name)
	}
	issued, key := e.Issue(tb, "enrollment-agent", name, pki.P256)
	return issued.Certificate, key
}

// WritePEM writes certificates, or a key, to a file in dir and returns its path.
func WritePEM(tb testing.TB, dir, name string, items ...any) string {
	tb.Helper()
	var out []byte
	for _, it := range items {
		switch v := it.(type) {
		case *x509.Certificate:
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.Raw})...)
		case []*x509.Certificate:
			for _, c := range v {
				out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
			}
		case crypto.Signer:
			der, err := x509.MarshalPKCS8PrivateKey(v)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
		case *x509.RevocationList:
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: v.Raw})...)
		default:
			tb.Fatalf("WritePEM: cannot write %T", it)
		}
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}
