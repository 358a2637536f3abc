package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// User is what the CA needs to know about a directory user. Subject names
// and SANs are built from it, never from the request.
type User struct {
	Name        string // login name (sAMAccountName / uid)
	UPN         string // userPrincipalName
	Mail        string
	DisplayName string
	SID         string // objectSid in text form, "" when the directory has none
}

// UserStore finds users by login name or UPN. The directory implements it.
type UserStore interface {
	LookupUser(ctx context.Context, name string) (*User, error)
}

// ErrUnknownUser is what a UserStore returns for a user it does not have.
var ErrUnknownUser = errors.New("pki: unknown user")

// Publisher makes an issued certificate available: to the user's directory
// entry (enterprise mode) or to files (standalone).
type Publisher interface {
	Publish(ctx context.Context, user *User, rec *Record) error
}

// Config is what New needs to run a CA.
type Config struct {
	// Signer holds the CA private key: a key file, a token, or a card.
	Signer crypto.Signer
	// Chain is the CA certificate first, then its issuers up to and
	// including the root.
	Chain []*x509.Certificate
	DB    *DB
	// Templates by name; nil means DefaultTemplates.
	Templates map[string]*Template
	Users     UserStore
	// Publisher may be nil: nothing is published.
	Publisher Publisher
	// Realm is the Kerberos realm for id-pkinit-san names.
	Realm string
	// Domain is the DNS domain; it also gives the subject's DC components
	// and the NetBIOS-style name agents may write as "DOMAIN\user".
	Domain string
	// CRLURL and IssuerURL go into the CRL distribution point and AIA
	// caIssuers extensions of every certificate issued; empty leaves them out.
	CRLURL, IssuerURL string
	// CRLValidity is the time from one CRL to its nextUpdate (default 7 days).
	CRLValidity time.Duration
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// CA issues and revokes certificates.
type CA struct {
	cfg       Config
	cert      *x509.Certificate
	roots     *x509.CertPool
	inters    *x509.CertPool
	templates map[string]*Template
	// dcRDNs is the DER of the subject's DC RDNs, most significant first,
	// and dcString their RFC 4514 form (",DC=example,DC=test"): the same in
	// every user certificate, so built once.
	dcRDNs   []byte
	dcString string
	// writer encodes and signs the certificates (tbs.go).
	writer *certWriter
}

// New checks the configuration (the key matches the certificate, the chain
// verifies to its root, the certificate may sign certificates) and returns a
// CA.
func New(cfg Config) (*CA, error) {
	if cfg.Signer == nil || len(cfg.Chain) == 0 || cfg.DB == nil || cfg.Users == nil {
		return nil, errors.New("pki: CA needs a signer, a certificate chain, a database and a user store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CRLValidity <= 0 {
		cfg.CRLValidity = 7 * 24 * time.Hour
	}
	if cfg.Templates == nil {
		cfg.Templates = make(map[string]*Template)
		for _, t := range DefaultTemplates() {
			cfg.Templates[t.Name] = t
		}
	}
	cert := cfg.Chain[0]
	if !publicKeysEqual(cfg.Signer.Public(), cert.PublicKey) {
		return nil, errors.New("pki: the CA key does not match the CA certificate")
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("pki: the CA certificate may not sign certificates")
	}
	ca := &CA{cfg: cfg, cert: cert, templates: cfg.Templates}
	if err := ca.buildDCs(); err != nil {
		return nil, err
	}
	var err error
	if ca.writer, err = newCertWriter(cfg.Signer, cert, cfg.CRLURL, cfg.IssuerURL); err != nil {
		return nil, err
	}
	ca.roots, ca.inters = x509.NewCertPool(), x509.NewCertPool()
	root := cfg.Chain[len(cfg.Chain)-1]
	ca.roots.AddCert(root)
	for i := 1; i < len(cfg.Chain)-1; i++ {
		ca.inters.AddCert(cfg.Chain[i])
	}
	if _, err := VerifyChain(cfg.Chain, cfg.Now()); err != nil {
		return nil, err
	}
	return ca, nil
}

// VerifyChain checks that chain (a CA certificate first, root last) verifies
// to its root for certificate signing at time t.
func VerifyChain(chain []*x509.Certificate, t time.Time) ([][]*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("pki: empty certificate chain")
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	root := chain[len(chain)-1]
	if err := root.CheckSignatureFrom(root); err != nil || !bytes.Equal(root.RawIssuer, root.RawSubject) {
		return nil, errors.New("pki: the last certificate of the chain is not a self-signed root")
	}
	roots.AddCert(root)
	for _, c := range chain[1:] {
		inters.AddCert(c)
	}
	chains, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: t, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, fmt.Errorf("pki: CA chain does not verify: %w", err)
	}
	return chains, nil
}

// Certificate returns the CA's own certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Chain returns the CA certificate and its issuers up to the root.
func (ca *CA) Chain() []*x509.Certificate { return slices.Clone(ca.cfg.Chain) }

// Root returns the trust anchor.
func (ca *CA) Root() *x509.Certificate { return ca.cfg.Chain[len(ca.cfg.Chain)-1] }

// Template returns a template by name.
func (ca *CA) Template(name string) (*Template, error) {
	t, ok := ca.templates[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTemplate, name)
	}
	return t, nil
}

// Templates returns every template, sorted by name.
func (ca *CA) Templates() []*Template {
	out := make([]*Template, 0, len(ca.templates))
	for _, t := range ca.templates {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *Template) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// DB returns the issued-certificate database.
func (ca *CA) DB() *DB { return ca.cfg.DB }

// IssueRequest asks the CA for a certificate.
type IssueRequest struct {
	Template string
	// Request is a parsed PKCS#10 or enroll-on-behalf-of request.
	Request *Request
	// Requester is who is asking when the request is not an
	// enroll-on-behalf-of one: the CA operator or the user themself.
	Requester Requester
	// User names the subject for operator and self requests. For
	// enroll-on-behalf-of it must be empty or equal the agent's target.
	User string
	// Host is the DNS name for host templates (kdc, server); AltHosts are
	// more DNS names for the same host.
	Host     string
	AltHosts []string
}

// Issued is a certificate that is recorded in the database.
type Issued struct {
	Certificate *x509.Certificate
	// Chain is the certificate, then the CA chain up to the root.
	Chain  []*x509.Certificate
	Record *Record
	// PublishErr is set when the certificate was issued but could not be
	// published; the certificate is valid and recorded.
	PublishErr error
}

// PolicyError is a refusal: the request is well-formed but the CA's rules
// do not allow it.
type PolicyError struct{ Reason string }

func (e *PolicyError) Error() string { return "pki: refused: " + e.Reason }

func refuse(format string, args ...any) error {
	return &PolicyError{Reason: fmt.Sprintf(format, args...)}
}

// Issue checks a request against the template and the CA's rules, signs the
// certificate, records it durably, and only then returns it (and publishes
// it, when the template says so).
func (ca *CA) Issue(ctx context.Context, ir IssueRequest) (*Issued, error) {
	p, err := ca.prepare(ctx, ir)
	if err != nil {
		return nil, err
	}
	rec, cert, err := ca.signAndRecord(p.tmpl, p.pub, p.spki, p.rec)
	if err != nil {
		return nil, err
	}
	out := &Issued{Certificate: cert, Chain: append([]*x509.Certificate{cert}, ca.cfg.Chain...), Record: rec}
	if p.template.Publish && ca.cfg.Publisher != nil && p.user != nil {
		if err := ca.cfg.Publisher.Publish(ctx, p.user, rec); err != nil {
			out.PublishErr = fmt.Errorf("pki: certificate %x issued but not published: %w", rec.Serial, err)
		}
	}
	return out, nil
}

// prepared is a checked request, ready to be signed.
type prepared struct {
	template *Template
	user     *User // nil for host templates
	tmpl     *x509.Certificate
	pub      crypto.PublicKey
	spki     []byte // pub as a DER SubjectPublicKeyInfo
	rec      *Record
}

// prepare checks a request against the template and the CA's rules and
// builds the certificate template and the record, all but the serial.
func (ca *CA) prepare(ctx context.Context, ir IssueRequest) (*prepared, error) {
	t, err := ca.Template(ir.Template)
	if err != nil {
		return nil, err
	}
	req := ir.Request
	if req == nil || req.CSR == nil {
		return nil, badRequest("no request", nil)
	}
	now := ca.cfg.Now()
	agentName := ""
	userName := ir.User
	if req.Agent != nil {
		if !t.allows(RequesterAgent) {
			return nil, refuse("template %s may not be requested by an enrollment agent", t.Name)
		}
		agentName, err = ca.checkAgent(req, t, now)
		if err != nil {
			return nil, err
		}
		target, err := ca.targetUser(req.OnBehalfOf)
		if err != nil {
			return nil, err
		}
		if userName != "" && !strings.EqualFold(userName, target) {
			return nil, refuse("the agent signed a request for %q, not %q", target, userName)
		}
		userName = target
	} else {
		switch ir.Requester {
		case RequesterOperator, RequesterSelf:
		default:
			return nil, refuse("a bare PKCS#10 needs an operator or self requester")
		}
		if !t.allows(ir.Requester) {
			return nil, refuse("template %s may not be requested by %s", t.Name, ir.Requester)
		}
	}
	keyAlg, err := KeyAlgorithmOf(req.CSR.PublicKey)
	if err != nil {
		return nil, refuse("%v", err)
	}
	if !slices.Contains(t.KeyAlgorithms, keyAlg) {
		return nil, refuse("template %s does not allow %s keys", t.Name, keyAlg)
	}
	var user *User
	var tmpl *x509.Certificate
	var subject string // for the record, as x509's Name.String would print it
	if t.Host {
		if ir.Host == "" {
			return nil, refuse("template %s needs a host name", t.Name)
		}
		tmpl, err = ca.hostTemplate(t, append([]string{ir.Host}, ir.AltHosts...))
		userName = ir.Host
		subject = "CN=" + escapeRDNValue(ir.Host)
	} else {
		if userName == "" {
			return nil, refuse("template %s needs a user", t.Name)
		}
		user, err = ca.cfg.Users.LookupUser(ctx, userName)
		if err != nil {
			if errors.Is(err, ErrUnknownUser) {
				return nil, refuse("no such user %q in the directory", userName)
			}
			return nil, fmt.Errorf("pki: looking up %q: %w", userName, err)
		}
		tmpl, subject, err = ca.userTemplate(t, user)
		userName = user.Name
	}
	if err != nil {
		return nil, err
	}
	// RFC 5280 4.2.1.2: end-entity certificates SHOULD carry a subject key
	// identifier; AD-style X509:<SKI> mappings name certificates by it.
	var spki []byte
	spki, tmpl.SubjectKeyId, err = subjectKeyInfo(req.CSR.PublicKey)
	if err != nil {
		return nil, refuse("%v", err)
	}
	if ca.cert.NotAfter.Before(now) {
		return nil, refuse("the CA certificate expired on %s", ca.cert.NotAfter.Format(time.DateOnly))
	}
	tmpl.NotBefore = now.Add(-5 * time.Minute).UTC().Truncate(time.Second)
	tmpl.NotAfter = now.Add(time.Duration(t.Validity)).UTC().Truncate(time.Second)
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	tmpl.KeyUsage = t.keyUsage(keyAlg)
	tmpl.ExtKeyUsage, tmpl.UnknownExtKeyUsage = t.extKeyUsage()
	tmpl.BasicConstraintsValid = true
	if ca.cfg.CRLURL != "" {
		tmpl.CRLDistributionPoints = []string{ca.cfg.CRLURL}
	}
	if ca.cfg.IssuerURL != "" {
		tmpl.IssuingCertificateURL = []string{ca.cfg.IssuerURL}
	}
	return &prepared{
		template: t, user: user, tmpl: tmpl, pub: req.CSR.PublicKey, spki: spki,
		rec: &Record{Template: t.Name, User: userName, Agent: agentName, Subject: subject, IssuedAt: now},
	}, nil
}

// signAndRecord signs the certificate for pub (spki in DER) with a fresh
// random serial and records rec with it (rec gets the serial, DER,
// validity and status). A serial that collides with a recorded one is
// never reused: the certificate is signed again with a new one.
//
// The signature is checked against the CA key, as x509.CreateCertificate
// does, so that a faulty signer (a glitching card or HSM) cannot hand out a
// bad certificate. An RSA signature is checked before anything is written:
// one faulty RSA-CRT signature reveals the CA key (Boneh, DeMillo and
// Lipton), so it must not reach even the database. One faulty ECDSA
// signature made with a fresh random nonce gives no such shortcut to the
// key, and checking it costs a P-256 CA more than a third of an issuance,
// so it is checked while the record is being committed, on CPU time the
// fsync would leave idle; if it fails, the recorded certificate, never
// handed out, is revoked. The *x509.Certificate is made in that time too
// (certificateOf); if that fails, the same happens. Before recording, a
// cheap check that the DER is one Certificate SEQUENCE stands in for both.
func (ca *CA) signAndRecord(tmpl *x509.Certificate, pub crypto.PublicKey, spki []byte, rec *Record) (*Record, *x509.Certificate, error) {
	_, checkFirst := ca.writer.signer.Public().(*rsa.PublicKey)
	for range 3 {
		serial, err := randomSerial()
		if err != nil {
			return nil, nil, err
		}
		tmpl.SerialNumber = serial
		tbs, err := ca.writer.tbsCertificate(tmpl, spki)
		if err != nil {
			return nil, nil, err
		}
		der, sig, err := ca.writer.sign(tbs)
		if err != nil {
			return nil, nil, err
		}
		if checkFirst {
			if err := ca.writer.verify(tbs, sig); err != nil {
				return nil, nil, err
			}
		}
		if err := checkCertificateFrame(der); err != nil {
			return nil, nil, fmt.Errorf("pki: the CA produced a malformed certificate: %w", err)
		}
		// The certificate carries the template's times in UTC, to the
		// second, as Issue has already made them.
		rec.Serial, rec.DER, rec.NotBefore, rec.NotAfter, rec.Status = serial, der, tmpl.NotBefore.UTC(), tmpl.NotAfter.UTC(), StatusValid
		done, err := ca.cfg.DB.recordStart(rec)
		if err != nil {
			return nil, nil, err
		}
		var sigErr error
		if !checkFirst {
			sigErr = ca.writer.verify(tbs, sig)
		}
		cert, parseErr := ca.writer.certificateOf(der, tmpl, pub)
		err = <-done
		if errors.Is(err, ErrSerialExists) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if sigErr != nil {
			_, revErr := ca.cfg.DB.Revoke(serial, ReasonUnspecified, time.Time{})
			return nil, nil, errors.Join(fmt.Errorf("%w (serial %x, recorded and revoked)", sigErr, serial), revErr)
		}
		if parseErr == nil && (!cert.NotBefore.Equal(rec.NotBefore) || !cert.NotAfter.Equal(rec.NotAfter)) {
			parseErr = errors.New("its validity is not the one recorded")
		}
		if parseErr != nil {
			_, revErr := ca.cfg.DB.Revoke(serial, ReasonUnspecified, time.Time{})
			return nil, nil, errors.Join(fmt.Errorf("pki: the CA produced a certificate it cannot parse (serial %x, recorded and revoked): %w", serial, parseErr), revErr)
		}
		return rec, cert, nil
	}
	return nil, nil, errors.New("pki: could not find an unused serial number")
}

// checkCertificateFrame checks that der is exactly one DER SEQUENCE of a
// SEQUENCE (the TBSCertificate), a SEQUENCE (the signature algorithm) and
// a BIT STRING (the signature).
func checkCertificateFrame(der []byte) error {
	body, rest, err := expect(der, 0x30)
	if err == nil && len(rest) > 0 {
		err = errors.New("trailing data")
	}
	for _, id := range []byte{0x30, 0x30, 0x03} {
		if err == nil {
			_, body, err = expect(body, id)
		}
	}
	if err == nil && len(body) > 0 {
		err = errors.New("trailing data in the certificate")
	}
	return err
}

// randomSerial returns a positive 16-octet serial: the issuance time in
// nanoseconds (63 bits), then 64 random bits, as the CA/B Forum asks. RFC
// 5280 allows 20 octets. The time prefix makes serials ascend, so the
// database appends to its B+trees instead of touching a random page per
// certificate, which keeps durable issuance close to the raw signing rate.
func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(time.Now().UnixNano()))
	if _, err := rand.Read(b[8:]); err != nil {
		return nil, err
	}
	b[0] = b[0]&0x7f | 0x40 // positive, and always 16 octets
	return new(big.Int).SetBytes(b), nil
}

// buildDCs encodes the subject's DC components (the domain's labels, most
// significant first) once, for subjectFor.
func (ca *CA) buildDCs() error {
	labels := strings.Split(ca.cfg.Domain, ".")
	slices.Reverse(labels)
	var seq, display pkix.RDNSequence
	for _, label := range labels {
		if label != "" {
			seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: oidDomainComponent, Value: asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(label)}}})
			display = append(display, pkix.RelativeDistinguishedNameSET{{Type: oidDomainComponent, Value: label}})
		}
	}
	if len(seq) == 0 {
		return nil
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		return fmt.Errorf("pki: domain %q as subject DCs: %w", ca.cfg.Domain, err)
	}
	rdns, rest, err := expect(der, 0x30)
	if err != nil || len(rest) != 0 {
		return fmt.Errorf("pki: domain %q as subject DCs: bad encoding", ca.cfg.Domain)
	}
	ca.dcRDNs, ca.dcString = rdns, ","+display.String()
	return nil
}

// subjectFor builds a directory-style subject, most significant first:
// DC=test, DC=example, CN=name (pkix.Name would put the CN first), and its
// string form as x509's Name.String prints it ("CN=name,DC=example,DC=test").
func (ca *CA) subjectFor(cn string) ([]byte, string, error) {
	// The CN as encoding/asn1 writes a Go string: PrintableString when every
	// character allows it, else UTF8String.
	tag := byte(asn1.TagPrintableString)
	for i := 0; i < len(cn); i++ {
		if !isPrintableStringChar(cn[i]) {
			if !utf8.ValidString(cn) {
				return nil, "", fmt.Errorf("pki: common name %q is not valid UTF-8", cn)
			}
			tag = asn1.TagUTF8String
			break
		}
	}
	var buf [64]byte
	atv := appendTLV(buf[:0], 0x06, oidCommonNameDER)
	atv = appendTLV(atv, tag, []byte(cn))
	rdn := appendTLV(nil, 0x30, atv)
	rdn = appendTLV(make([]byte, 0, len(rdn)+6), 0x31, rdn)
	seq := make([]byte, 0, len(ca.dcRDNs)+len(rdn)+6)
	seq = appendTLV(seq, 0x30, append(append(make([]byte, 0, len(ca.dcRDNs)+len(rdn)), ca.dcRDNs...), rdn...))
	return seq, "CN=" + escapeRDNValue(cn) + ca.dcString, nil
}

// isPrintableStringChar reports whether encoding/asn1 would keep c in a
// PrintableString (X.680's set, without '*' and '&').
func isPrintableStringChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		'\'' <= c && c <= ')' || '+' <= c && c <= '/' || c == ' ' || c == ':' || c == '=' || c == '?'
}

// escapeRDNValue escapes an attribute value as pkix.RDNSequence.String does.
func escapeRDNValue(v string) string {
	if !strings.ContainsAny(v, ",+\"\\<>; #") && utf8.ValidString(v) {
		return v
	}
	var b strings.Builder
	for k, c := range v {
		escape := false
		switch c {
		case ',', '+', '"', '\\', '<', '>', ';':
			escape = true
		case ' ':
			escape = k == 0 || k == len(v)-1
		case '#':
			escape = k == 0
		}
		if escape {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

var (
	oidDomainComponent = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidCommonName      = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidCommonNameDER   = []byte{2*40 + 5, 4, 3}
)

// userTemplate returns the template for a user's certificate and its
// subject in string form.
func (ca *CA) userTemplate(t *Template, u *User) (*x509.Certificate, string, error) {
	cn := u.DisplayName
	if cn == "" {
		cn = u.Name
	}
	rawSubject, subject, err := ca.subjectFor(cn)
	if err != nil {
		return nil, "", err
	}
	tmpl := &x509.Certificate{RawSubject: rawSubject}
	var san SubjectAltNames
	for _, s := range t.SubjectAltNames {
		switch s {
		case "upn":
			if u.UPN == "" {
				return nil, "", refuse("template %s needs a userPrincipalName and %s has none", t.Name, u.Name)
			}
			san.UPN = u.UPN
		case "pkinit":
			p, err := ca.userPrincipal(u)
			if err != nil {
				return nil, "", err
			}
			san.Principals = append(san.Principals, p)
		case "email":
			if u.Mail == "" {
				return nil, "", refuse("template %s needs a mail address and %s has none", t.Name, u.Name)
			}
			san.Emails = append(san.Emails, u.Mail)
		default:
			return nil, "", refuse("template %s: SAN %q is not for users", t.Name, s)
		}
	}
	if err := ca.addSAN(tmpl, san); err != nil {
		return nil, "", err
	}
	if t.SID {
		if u.SID == "" {
			return nil, "", refuse("template %s carries the user's SID and %s has none", t.Name, u.Name)
		}
		ext, err := SIDExtension(u.SID)
		if err != nil {
			return nil, "", err
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ext)
	}
	return tmpl, subject, nil
}

// userPrincipal is the user's Kerberos name: the login name in the CA's realm.
func (ca *CA) userPrincipal(u *User) (Principal, error) {
	if ca.cfg.Realm == "" {
		return Principal{}, refuse("no Kerberos realm configured")
	}
	return Principal{Realm: ca.cfg.Realm, NameType: NameTypePrincipal, Components: []string{u.Name}}, nil
}

func (ca *CA) hostTemplate(t *Template, hosts []string) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: hosts[0]}}
	var san SubjectAltNames
	for _, s := range t.SubjectAltNames {
		switch s {
		case "dns":
			san.DNSNames = append(san.DNSNames, hosts...)
		case "krbtgt":
			if ca.cfg.Realm == "" {
				return nil, refuse("no Kerberos realm configured")
			}
			san.Principals = append(san.Principals, Principal{Realm: ca.cfg.Realm, NameType: NameTypeSrvInst, Components: []string{"krbtgt", ca.cfg.Realm}})
		default:
			return nil, refuse("template %s: SAN %q is not for hosts", t.Name, s)
		}
	}
	return tmpl, ca.addSAN(tmpl, san)
}

func (ca *CA) addSAN(tmpl *x509.Certificate, san SubjectAltNames) error {
	if san.UPN == "" && len(san.Principals) == 0 && len(san.Emails) == 0 && len(san.DNSNames) == 0 {
		return nil
	}
	ext, err := san.Extension()
	if err != nil {
		return err
	}
	// A subject that is only DCs and a CN is still a subject, so the SAN
	// need not be critical.
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ext)
	return nil
}

// checkAgent checks the enroll-on-behalf-of signer: issued by this CA and
// recorded, valid now, Certificate Request Agent EKU, not revoked, and allowed
// to use this template. It returns the agent's user name.
func (ca *CA) checkAgent(req *Request, t *Template, now time.Time) (string, error) {
	agent := req.Agent
	inters := ca.inters.Clone()
	for _, c := range req.AgentChain {
		inters.AddCert(c)
	}
	if _, err := agent.Verify(x509.VerifyOptions{Roots: ca.roots, Intermediates: inters, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return "", refuse("the enrollment agent certificate is not trusted: %v", err)
	}
	if !slices.ContainsFunc(agent.UnknownExtKeyUsage, OIDCertificateRequestAgent.Equal) {
		return "", refuse("the signer's certificate is not an enrollment agent certificate (no Certificate Request Agent EKU)")
	}
	if !bytes.Equal(agent.RawIssuer, ca.cert.RawSubject) {
		return "", refuse("the enrollment agent certificate was not issued by this CA")
	}
	rec, err := ca.cfg.DB.Get(agent.SerialNumber)
	if errors.Is(err, ErrNotFound) {
		return "", refuse("the enrollment agent certificate %x is not in this CA's records", agent.SerialNumber)
	}
	if err != nil {
		return "", err
	}
	if !bytes.Equal(rec.DER, agent.Raw) {
		return "", refuse("the enrollment agent certificate does not match this CA's record")
	}
	if rec.Status != StatusValid {
		return "", refuse("the enrollment agent certificate is revoked (%s)", rec.Reason)
	}
	if len(t.Agents) > 0 && !slices.ContainsFunc(t.Agents, func(a string) bool { return strings.EqualFold(a, rec.User) }) {
		return "", refuse("enrollment agent %s may not use template %s", rec.User, t.Name)
	}
	return rec.User, nil
}

// targetUser reduces "DOMAIN\user" or "user@domain" to the user name, after
// checking that any domain given is ours.
func (ca *CA) targetUser(name string) (string, error) {
	if dom, user, ok := strings.Cut(name, `\`); ok {
		if !strings.EqualFold(dom, ca.netbiosName()) && !strings.EqualFold(dom, ca.cfg.Domain) {
			return "", refuse("the request is for domain %q, this CA serves %q", dom, ca.netbiosName())
		}
		name = user
	}
	if name == "" {
		return "", refuse("the request names no user")
	}
	return name, nil
}

// netbiosName is the short domain name agents write before a backslash.
func (ca *CA) netbiosName() string {
	first, _, _ := strings.Cut(ca.cfg.Domain, ".")
	return strings.ToUpper(first)
}

// NetBIOSName is the short domain name ("EXAMPLE" for example.test) that
// enroll-on-behalf-of requests put before the user name.
func (ca *CA) NetBIOSName() string { return ca.netbiosName() }

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

// subjectKeyInfo returns the DER SubjectPublicKeyInfo of a certificate's
// subject key, as crypto/x509 writes it, and its RFC 5280 method-1 key
// identifier (SHA-1 of the subjectPublicKey BIT STRING contents). For an
// EC key both come from one encoding of the point: x509.MarshalPKIXPublicKey
// and the identifier would each encode (and check) it again.
func subjectKeyInfo(pub crypto.PublicKey) (spki, keyID []byte, err error) {
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		var algID []byte
		switch k.Curve {
		case elliptic.P256():
			algID = algIDECP256
		case elliptic.P384():
			algID = algIDECP384
		case elliptic.P521():
			algID = algIDECP521
		}
		if algID != nil {
			point, err := k.Bytes()
			if err != nil {
				return nil, nil, fmt.Errorf("pki: subject key: %w", err)
			}
			h := sha1.Sum(point)
			bits := appendTLV(make([]byte, 0, len(point)+4), 0x03, append([]byte{0}, point...))
			return appendTLV(make([]byte, 0, len(algID)+len(bits)+4), 0x30, append(slices.Clip(algID), bits...)), h[:], nil
		}
	}
	spki, err = x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: subject key: %w", err)
	}
	if k, ok := pub.(*rsa.PublicKey); ok {
		h := sha1.Sum(x509.MarshalPKCS1PublicKey(k))
		return spki, h[:], nil
	}
	keyID, err = subjectKeyID(pub)
	return spki, keyID, err
}

// The AlgorithmIdentifiers of EC subject keys: id-ecPublicKey with the
// named curve.
var (
	algIDECP256 = []byte{0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	algIDECP384 = []byte{0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}
	algIDECP521 = []byte{0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23}
)

// subjectKeyID computes the RFC 5280 method-1 key identifier.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	h := sha1.Sum(spki.Key.Bytes)
	return h[:], nil
}
