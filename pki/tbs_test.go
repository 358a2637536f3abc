package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// mapUsers is a UserStore for the tests in package pki.
type mapUsers map[string]*User

func (m mapUsers) LookupUser(_ context.Context, name string) (*User, error) {
	if u, ok := m[name]; ok {
		return u, nil
	}
	return nil, ErrUnknownUser
}

// writerCA is a CA for the certWriter tests, valid from 1949 to 2229 so
// that both UTCTime and GeneralizedTime validities can be issued, and
// whose clock the tests set through *now.
type writerCA struct {
	ca    *CA
	users mapUsers
	now   *time.Time
}

var writerCAKeys = map[KeyAlgorithm]crypto.Signer{}
var writerCAKeysMu sync.Mutex

// writerKey returns a key of alg, the same one for every test of the run
// (RSA-3072 keys are slow to make).
func writerKey(t testing.TB, alg KeyAlgorithm) crypto.Signer {
	writerCAKeysMu.Lock()
	defer writerCAKeysMu.Unlock()
	if k, ok := writerCAKeys[alg]; ok {
		return k
	}
	k, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	writerCAKeys[alg] = k
	return k
}

func newWriterCA(t testing.TB, alg KeyAlgorithm, signer crypto.Signer, urls bool) *writerCA {
	t.Helper()
	key := writerKey(t, alg)
	start := time.Date(1949, 6, 1, 0, 0, 0, 0, time.UTC)
	root, err := CreateRoot(key, CAName{CommonName: "Writer Test Root", Organization: "Ex & Co"}, 280*365*24*time.Hour, start)
	if err != nil {
		t.Fatal(err)
	}
	db, err := OpenDB(filepath.Join(t.TempDir(), "certs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if signer == nil {
		signer = key
	}
	w := &writerCA{users: mapUsers{}, now: new(time.Time)}
	*w.now = time.Now()
	cfg := Config{Signer: signer, Chain: []*x509.Certificate{root}, DB: db, Users: w.users,
		Realm: "EXAMPLE.TEST", Domain: "example.test", Now: func() time.Time { return *w.now }}
	if urls {
		cfg.CRLURL, cfg.IssuerURL = "http://ca.example.test/ca.crl", "http://ca.example.test/ca.crt"
	}
	if w.ca, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return w
}

// compare checks, for one prepared request, that certWriter writes the
// TBSCertificate x509.CreateCertificate writes, that its certificate
// verifies under the CA key, and that certificateOf returns what
// x509.ParseCertificate does.
func (w *writerCA) compare(t testing.TB, p *prepared) {
	t.Helper()
	serial, err := randomSerial()
	if err != nil {
		t.Fatal(err)
	}
	p.tmpl.SerialNumber = serial
	want, err := x509.CreateCertificate(rand.Reader, p.tmpl, w.ca.cert, p.pub, w.ca.cfg.Signer)
	if err != nil {
		t.Fatalf("x509.CreateCertificate: %v", err)
	}
	wantCert, err := x509.ParseCertificate(want)
	if err != nil {
		t.Fatal(err)
	}
	// p.spki is subjectKeyInfo's: x509.CreateCertificate encodes the key
	// itself, so the comparison covers it.
	tbs, err := w.ca.writer.tbsCertificate(p.tmpl, p.spki)
	if err != nil {
		t.Fatalf("tbsCertificate: %v", err)
	}
	if !bytes.Equal(tbs, wantCert.RawTBSCertificate) {
		t.Fatalf("the TBSCertificate differs from crypto/x509's:\n got %x\nwant %x", tbs, wantCert.RawTBSCertificate)
	}
	der, sig, err := w.ca.writer.sign(tbs)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ca.writer.verify(tbs, sig); err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing our certificate: %v", err)
	}
	if err := parsed.CheckSignatureFrom(w.ca.cert); err != nil {
		t.Fatalf("our certificate's signature: %v", err)
	}
	fast, ok := w.ca.writer.fastCertificate(der, p.tmpl, p.pub)
	if !ok {
		t.Fatal("certificateOf took the slow path for a certificate Issue makes")
	}
	if !reflect.DeepEqual(fast, parsed) {
		t.Fatalf("certificateOf differs from x509.ParseCertificate:\n got %+v\nwant %+v", fast, parsed)
	}
}

func (w *writerCA) prepare(t testing.TB, template, user string, pub crypto.PublicKey) (*prepared, error) {
	t.Helper()
	ir := IssueRequest{Template: template, Request: &Request{CSR: &x509.CertificateRequest{PublicKey: pub}}, Requester: RequesterOperator, User: user}
	if tm, err := w.ca.Template(template); err == nil && tm.Host {
		ir.Host, ir.AltHosts, ir.User = user, []string{"alt." + user}, ""
	}
	return w.ca.prepare(context.Background(), ir)
}

// TestCertWriterMatchesCreateCertificate: for every built-in template, CA
// key and subject key type, with and without the CA's URLs, the
// TBSCertificate is byte for byte crypto/x509's for the same inputs, and
// the *x509.Certificate Issue returns is the parsed one, field for field.
func TestCertWriterMatchesCreateCertificate(t *testing.T) {
	for _, caAlg := range []KeyAlgorithm{RSA2048, RSA3072, P256, P384} {
		for _, urls := range []bool{true, false} {
			w := newWriterCA(t, caAlg, nil, urls)
			w.users["alice"] = &User{Name: "alice", UPN: "alice@example.test", Mail: "alice@example.test", DisplayName: "Alice Ö. Example", SID: "S-1-5-21-1-2-3-1104"}
			for _, tmpl := range DefaultTemplates() {
				for _, subAlg := range []KeyAlgorithm{RSA2048, P256, P384} {
					t.Run(fmt.Sprintf("ca=%s/urls=%v/%s/%s", caAlg, urls, tmpl.Name, subAlg), func(t *testing.T) {
						user := "alice"
						if tmpl.Host {
							user = "kdc.example.test"
						}
						p, err := w.prepare(t, tmpl.Name, user, writerKey(t, subAlg).Public())
						if err != nil {
							t.Fatal(err)
						}
						w.compare(t, p)
					})
				}
			}
		}
	}
}

// TestCertWriterRandom is the same comparison over random users, SAN
// contents and clocks (UTCTime and GeneralizedTime validities, long names
// whose lengths need more octets), as FuzzCertWriter does with the fuzzer's
// inputs.
func TestCertWriterRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("random inputs from seed %d", seed)
		}
	})
	rng := mrand.New(mrand.NewPCG(1, seed))
	for _, caAlg := range []KeyAlgorithm{P256, RSA2048} {
		w := newWriterCA(t, caAlg, nil, rng.IntN(2) == 0)
		compared := 0
		for range 300 {
			in := certWriterInput{
				name:    randomString(rng, 300),
				upn:     randomString(rng, 40) + "@" + randomString(rng, 20),
				mail:    randomString(rng, 40) + "@example.test",
				host:    strings.ToLower(randomLabel(rng)) + ".example.test",
				seconds: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + rng.Int64N(230*365*24*3600),
				tmpl:    uint8(rng.IntN(256)),
				keyAlg:  uint8(rng.IntN(3)),
			}
			if w.compareInput(t, in) {
				compared++
			}
		}
		if compared < 100 {
			t.Errorf("ca=%s: only %d of 300 random requests were acceptable", caAlg, compared)
		}
	}
}

// FuzzCertWriter compares certWriter with crypto/x509 on users, SANs and
// clocks the fuzzer makes up.
func FuzzCertWriter(f *testing.F) {
	f.Add("Alice", "alice@example.test", "alice@example.test", "kdc.example.test", time.Now().Unix(), uint8(0), uint8(1))
	f.Add("Ünïcødé, \"quoted\" + <more>; #x ", "u@x", "m@y.test", "h.test", int64(2524608000), uint8(6), uint8(0)) // 2050
	f.Add(strings.Repeat("x", 200), "a@b", "c@d", "a.b", int64(-631152000), uint8(3), uint8(2))                    // 1950
	// One CA for all inputs: making one per input would leave the fuzzer
	// little time for anything else. A worker calls the function for one
	// input at a time.
	w := newWriterCA(f, P256, nil, true)
	f.Fuzz(func(t *testing.T, name, upn, mail, host string, seconds int64, tmpl, keyAlg uint8) {
		w.compareInput(t, certWriterInput{name, upn, mail, host, seconds, tmpl, keyAlg})
	})
}

type certWriterInput struct {
	name, upn, mail, host string
	seconds               int64
	tmpl, keyAlg          uint8
}

// compareInput prepares a request from in and compares; it reports
// whether the CA accepted the request (a refusal is not a failure).
func (w *writerCA) compareInput(t testing.TB, in certWriterInput) bool {
	t.Helper()
	templates := DefaultTemplates()
	tmpl := templates[int(in.tmpl)%len(templates)]
	alg := []KeyAlgorithm{P256, RSA2048, P384}[int(in.keyAlg)%3]
	now := time.Unix(in.seconds, 0)
	if now.Year() < 1950 || now.Year() > 2200 {
		return false
	}
	user := &User{Name: "u", UPN: in.upn, Mail: in.mail, DisplayName: in.name, SID: "S-1-5-21-7-8-9-500"}
	w.users["u"] = user
	*w.now = now
	name := "u"
	if tmpl.Host {
		name = in.host
	}
	p, err := w.prepare(t, tmpl.Name, name, writerKey(t, alg).Public())
	if err != nil {
		var pe *PolicyError
		if errors.As(err, &pe) || strings.Contains(err.Error(), "subjectAltName") || strings.Contains(err.Error(), "UTF-8") {
			return false
		}
		t.Fatalf("prepare: %v", err)
	}
	w.compare(t, p)
	return true
}

func randomString(rng *mrand.Rand, max int) string {
	pool := []rune("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 '()+,-./:=?*&\"\\<>;#_é中😀\u00a0")
	n := rng.IntN(max + 1)
	r := make([]rune, n)
	for i := range r {
		r[i] = pool[rng.IntN(len(pool))]
	}
	return string(r)
}

func randomLabel(rng *mrand.Rand) string {
	const pool = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 1+rng.IntN(60))
	for i := range b {
		b[i] = pool[rng.IntN(len(pool))]
	}
	return string(b)
}

// faultySigner returns signatures that do not verify: it signs a digest
// one bit off, as a glitching card might.
type faultySigner struct{ crypto.Signer }

func (f faultySigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	bad := bytes.Clone(digest)
	bad[0] ^= 1
	return f.Signer.Sign(r, bad, opts)
}

// TestFaultySigner: a certificate with a bad signature is never returned.
// With an RSA CA nothing is recorded (one faulty RSA-CRT signature gives
// the key away); with an ECDSA CA the certificate, checked while its
// record was committed, is recorded revoked.
func TestFaultySigner(t *testing.T) {
	for _, caAlg := range []KeyAlgorithm{RSA2048, P256, P384} {
		t.Run(string(caAlg), func(t *testing.T) {
			w := newWriterCA(t, caAlg, faultySigner{writerKey(t, caAlg)}, true)
			w.users["alice"] = &User{Name: "alice", UPN: "alice@example.test", DisplayName: "Alice", SID: "S-1-5-21-1-2-3-1104"}
			issued, err := w.ca.Issue(context.Background(), IssueRequest{Template: "smartcard-logon",
				Request: &Request{CSR: &x509.CertificateRequest{PublicKey: writerKey(t, P256).Public()}}, Requester: RequesterOperator, User: "alice"})
			if err == nil || issued != nil {
				t.Fatalf("Issue with a faulty signer = %v, %v", issued, err)
			}
			if !strings.Contains(err.Error(), "invalid signature") {
				t.Errorf("error %q", err)
			}
			all, err := w.ca.DB().List(Query{User: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			if caAlg.isRSA() {
				if len(all) != 0 {
					t.Fatalf("an RSA certificate with a bad signature was recorded: %v", all)
				}
				return
			}
			if len(all) != 1 || all[0].Status != StatusRevoked {
				t.Fatalf("records %v, want one revoked", all)
			}
			c, err := x509.ParseCertificate(all[0].DER)
			if err != nil {
				t.Fatal(err)
			}
			if c.CheckSignatureFrom(w.ca.cert) == nil {
				t.Error("the revoked certificate's signature verifies")
			}
		})
	}
}

// TestCertificateOfFallback: what fastCertificate was not written for is
// parsed by crypto/x509, and certificateOf still returns what it would.
func TestCertificateOfFallback(t *testing.T) {
	w := newWriterCA(t, P256, nil, true)
	w.users["alice"] = &User{Name: "alice", UPN: "alice@example.test", Mail: "alice@example.test", DisplayName: "Alice", SID: "S-1-5-21-1-2-3-1104"}
	p, err := w.prepare(t, "smartcard-user", "alice", writerKey(t, P256).Public())
	if err != nil {
		t.Fatal(err)
	}
	// A SAN with a URI, which x509 parses into a *url.URL.
	san := SubjectAltNames{Emails: []string{"alice@example.test"}, URIs: []string{"https://example.test/alice"}}
	ext, err := san.Extension()
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range p.tmpl.ExtraExtensions {
		if e.Id.Equal(OIDExtensionSubjectAltName) {
			p.tmpl.ExtraExtensions[i] = ext
		}
	}
	serial, _ := randomSerial()
	p.tmpl.SerialNumber = serial
	tbs, err := w.ca.writer.tbsCertificate(p.tmpl, p.spki)
	if err != nil {
		t.Fatal(err)
	}
	der, _, err := w.ca.writer.sign(tbs)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := w.ca.writer.fastCertificate(der, p.tmpl, p.pub); ok {
		t.Fatal("fastCertificate read a SAN with a URI")
	}
	got, err := w.ca.writer.certificateOf(der, p.tmpl, p.pub)
	want, wantErr := x509.ParseCertificate(der)
	if err != nil || wantErr != nil || !reflect.DeepEqual(got, want) || len(got.URIs) != 1 {
		t.Fatalf("certificateOf = %v, %v; x509 %v, %v", got, err, want, wantErr)
	}
}
