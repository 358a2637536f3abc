package station

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/internal/atomicfile"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

// Errors about the data directory's state.
var (
	ErrNoDataDir = errors.New("station: no data directory")
	ErrExists    = errors.New("station: data directory already exists")
	ErrNoCA      = errors.New("station: this station has no CA yet (run scstation ca init)")
	ErrCAPending = errors.New("station: the CA is waiting for its certificate (run scstation ca install-cert)")
	ErrCAExists  = errors.New("station: this station already has a CA")
)

// PassphraseFunc supplies the CA key passphrase; confirm asks for it twice
// when a new key is being protected. The caller owns the returned slice and
// the station wipes it after use.
type PassphraseFunc func(confirm bool) ([]byte, error)

// Files and directories in a data directory.
const (
	caDir        = "ca"
	caKeyFile    = "ca/ca.key"
	caChainFile  = "ca/chain.pem"
	caCSRFile    = "ca/ca.csr"
	caDBFile     = "ca/ca.db"
	caCRLFile    = "ca/ca.crl"
	templatesDir = "ca/templates"
	dirDBFile    = "directory/directory.db"
	publishedDir = "published"
)

// Station is an open data directory.
type Station struct {
	Dir    string
	Config *Config
	Log    *slog.Logger
	Now    func() time.Time
	// Actor is who the audit log says acts; empty means DefaultActor()
	// ("cli:<os user>"). The SSH front sets its own ("ssh:SHA256:...").
	// While an officer is signed in on this station, the officer acts
	// ("officer:alice") whatever Actor says.
	Actor string
	// RequireOfficer makes the actions that change a card's or a
	// certificate's status without the card (SuspendCard, ReinstateCard,
	// RevokeCard, Revoke, Release) refuse with ErrNotSignedIn unless an
	// officer is signed in, as enrollment and the actions on a card always
	// do. The kiosk sets it, so that nobody acts there anonymously; the
	// CLI and SSH fronts, whose users are authenticated otherwise, do not.
	RequireOfficer bool
	// CRLPassphrase, when set, unlocks an encrypted CA key without a
	// prompt so that card lifecycle actions can publish a fresh CRL.
	CRLPassphrase PassphraseFunc

	// The databases, shared with borrowed stations (see Borrow). A new
	// database (or any other state that must be one per process) goes into
	// stores, not here: a field here is not shared with forwarded commands.
	shared *stores
	// borrowed stations close nothing.
	borrowed bool

	mu sync.Mutex // guards ca and caKey
	ca *pki.CA
	// caKey is the CA key just made by InitCA, so that setting up the
	// station does not ask for its passphrase again.
	caKey crypto.Signer

	// The officer session is this station's own: a forwarded command
	// signs in with its own officer card (secrets.go, officer.go).
	enroll enrollState
}

// stores are the open databases of a data directory. A bbolt file belongs
// to one process, so they are opened once, lazily, and shared by everything
// in the process that works on the directory (the services, and commands
// forwarded over the control socket).
type stores struct {
	mu    sync.Mutex
	db    *pki.DB
	users *directory.Store
	kdc   *kdc.Store
	// extMu guards ext, the external directory client when configured
	// (not mu: connecting to it may take a while).
	extMu sync.Mutex
	ext   *directory.Client

	// recordsMu guards the lazy opening of inventory and audit (records.go).
	recordsMu sync.Mutex
	inventory *inventory.Store
	audit     *audit.Log

	// masterMu guards master, the station master secret once read (or
	// made: two commands must not make two).
	masterMu sync.Mutex
	master   []byte

	// crlMu keeps CRLs from being published out of order: the number is
	// taken in the database, the file written after.
	crlMu sync.Mutex
}

func newStation(dir string, cfg *Config, log *slog.Logger) *Station {
	return &Station{Dir: dir, Config: cfg, Log: logger(log), Now: time.Now, shared: &stores{}}
}

// Borrow returns a view of the station for one forwarded command: it
// shares the open databases (and the external directory client) and logs
// to log. What belongs to one command is its own: it acts as the user
// running commands (DefaultActor, "cli:<user>", whatever actor the holder
// has), no officer is signed in on it, and it must prove the CA
// passphrase itself (the CA unlocked for the services is not handed on).
// Closing it ends its own officer session and closes nothing else. The
// configuration is shared and must not be changed through it.
func (s *Station) Borrow(log *slog.Logger) *Station {
	return &Station{Dir: s.Dir, Config: s.Config, Log: logger(log), Now: s.Now, Actor: DefaultActor(), shared: s.shared, borrowed: true}
}

// DefaultDir is the data directory when neither --dir nor SCSTATION_DIR
// says otherwise: $XDG_DATA_HOME/scstation, else ~/.local/share/scstation.
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "scstation"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("station: no data directory given and no home directory: %w", err)
	}
	return filepath.Join(home, ".local", "share", "scstation"), nil
}

// InitOptions say how to create a data directory.
type InitOptions struct {
	Realm, Domain string
	Standalone    bool
	CA            CAOptions
	Log           *slog.Logger
}

// CAOptions say how to create the CA.
type CAOptions struct {
	KeyAlgorithm pki.KeyAlgorithm
	// Passphrase protects the key; nil stores it unencrypted (--no-passphrase).
	Passphrase PassphraseFunc
	// Subordinate writes a request for a parent CA instead of a root.
	Subordinate bool
	// Name is the CA's common name; empty means "<REALM> CA".
	Name     string
	Validity time.Duration
	BaseURL  string
}

// Init creates a data directory with its configuration, the CA (or the CA's
// request for a parent), and room for the directory, KDC and inventory. It
// refuses to touch a directory that already has anything in it.
func Init(dir string, opts InitOptions) (*Station, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%w: %s is not empty", ErrExists, dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if opts.Realm == "" && opts.Domain != "" {
		opts.Realm = upper(opts.Domain)
	}
	cfg := &Config{
		Realm: opts.Realm, Domain: opts.Domain, Standalone: opts.Standalone,
		CA: CAConfig{
			KeyAlgorithm: opts.CA.KeyAlgorithm,
			BaseURL:      opts.CA.BaseURL,
			CRLValidity:  pki.Duration(7 * 24 * time.Hour),
			Name:         opts.CA.Name,
		},
		KDC:      KDCConfig{StrongMapping: "compat"},
		Services: DefaultServices,
	}
	// Clients (and OpenLDAP's TLS check, which canonicalises the host
	// name) reach the station by its own name.
	if h, err := os.Hostname(); err == nil && h != "" {
		cfg.Services.Hostname = strings.ToLower(h)
	}
	if cfg.CA.KeyAlgorithm == "" {
		cfg.CA.KeyAlgorithm = pki.P256
	}
	if cfg.CA.BaseURL == "" {
		cfg.CA.BaseURL = "http://" + DefaultServices.HTTP
	}
	if cfg.CA.Name == "" {
		cfg.CA.Name = cfg.Realm + " CA"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{"", caDir, templatesDir, "directory", "kdc", "inventory", "audit", publishedDir, servicesDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	if err := saveConfig(dir, cfg); err != nil {
		return nil, err
	}
	s := newStation(dir, cfg, opts.Log)
	s.Actor = DefaultActor()
	if _, err := s.InitCA(opts.CA); err != nil {
		return nil, err
	}
	// Create the directory store now, so the domain SID exists from the start.
	if _, err := s.Directory(); err != nil {
		return nil, err
	}
	if s.CAState() == CAReady {
		if _, err := s.ServiceTLS(nil); err != nil {
			return nil, err
		}
	}
	// The master secret of the cards this station will manage.
	if _, err := s.masterSecret(); err != nil {
		return nil, err
	}
	s.Log.Info("data directory created", "dir", dir, "realm", cfg.Realm, "domain", cfg.Domain)
	return s, nil
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Open opens an existing data directory.
func Open(dir string, log *slog.Logger) (*Station, error) {
	cfg, err := loadConfig(dir)
	if err != nil {
		return nil, err
	}
	return newStation(dir, cfg, log), nil
}

// Close ends the officer session and closes whatever databases the
// station opened; on a borrowed station it only ends its own officer
// session and forgets the unlocked CA.
func (s *Station) Close() (err error) {
	s.SignOut()
	s.mu.Lock()
	s.ca, s.caKey = nil, nil
	s.mu.Unlock()
	if s.borrowed {
		return nil
	}
	defer func() { err = errors.Join(err, s.closeRecords()) }()
	sh := s.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var errs []error
	if sh.db != nil {
		errs = append(errs, sh.db.Close())
	}
	if sh.users != nil {
		errs = append(errs, sh.users.Close())
	}
	sh.db, sh.users, sh.kdc = nil, nil, nil
	sh.extMu.Lock()
	defer sh.extMu.Unlock()
	if sh.ext != nil {
		errs = append(errs, sh.ext.Close())
	}
	sh.ext = nil
	return errors.Join(errs...)
}

func (s *Station) path(p string) string { return filepath.Join(s.Dir, p) }

// CAState says how far the CA is set up.
type CAState int

const (
	CAMissing CAState = iota // no key yet
	CAPending                // key and request, waiting for the parent's certificate
	CAReady
)

// CAState reports how far the CA is set up.
func (s *Station) CAState() CAState {
	if _, err := os.Stat(s.path(caChainFile)); err == nil {
		return CAReady
	}
	if _, err := os.Stat(s.path(caKeyFile)); err == nil {
		return CAPending
	}
	return CAMissing
}

// InitResult tells what InitCA made.
type InitResult struct {
	// Certificate is the new root; nil for a subordinate CA.
	Certificate *x509.Certificate
	// CSRPath is where the request for the parent CA was written.
	CSRPath string
}

// InitCA creates the CA key and either a self-signed root or a request for a
// parent CA.
func (s *Station) InitCA(opts CAOptions) (*InitResult, error) {
	if s.CAState() != CAMissing {
		return nil, ErrCAExists
	}
	alg := opts.KeyAlgorithm
	if alg == "" {
		alg = s.Config.CA.KeyAlgorithm
	}
	key, err := pki.GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	name := pki.CAName{CommonName: s.Config.CA.Name, Organization: s.Config.Realm}
	var keyPEM []byte
	if opts.Passphrase != nil {
		pass, err := opts.Passphrase(true)
		if err != nil {
			return nil, err
		}
		keyPEM, err = pki.MarshalEncryptedPrivateKey(key, pass)
		clear(pass)
		if err != nil {
			return nil, err
		}
	} else {
		if keyPEM, err = pki.MarshalPrivateKey(key); err != nil {
			return nil, err
		}
	}
	s.Config.CA.KeyAlgorithm = alg
	s.Config.CA.KeyEncrypted = opts.Passphrase != nil
	if err := os.MkdirAll(s.path(caDir), 0o700); err != nil {
		return nil, err
	}
	res := &InitResult{}
	if opts.Subordinate {
		csr, err := pki.CreateCARequest(key, name)
		if err != nil {
			return nil, err
		}
		res.CSRPath = s.path(caCSRFile)
		if err := atomicfile.Write(res.CSRPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o644); err != nil {
			return nil, err
		}
	} else {
		validity := opts.Validity
		if validity == 0 {
			validity = 10 * 365 * 24 * time.Hour
		}
		root, err := pki.CreateRoot(key, name, validity, s.Now())
		if err != nil {
			return nil, err
		}
		res.Certificate = root
		if err := atomicfile.Write(s.path(caChainFile), encodeCerts(root), 0o644); err != nil {
			return nil, err
		}
	}
	// The key goes last: its presence marks the CA as (at least) pending.
	if err := atomicfile.Write(s.path(caKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.caKey = key
	s.mu.Unlock()
	if err := saveConfig(s.Dir, s.Config); err != nil {
		return nil, err
	}
	s.Log.Info("CA key created", "algorithm", alg, "encrypted", opts.Passphrase != nil, "subordinate", opts.Subordinate)
	return res, nil
}

func encodeCerts(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// ParseCertificates reads every CERTIFICATE block in PEM data, or one DER
// certificate.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, errors.New("station: no certificate found (want PEM or DER)")
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// InstallCACert finishes a subordinate CA's setup with the certificate the
// parent CA issued and the parent's chain up to the root.
func (s *Station) InstallCACert(cert *x509.Certificate, parents []*x509.Certificate) ([]*x509.Certificate, error) {
	switch s.CAState() {
	case CAMissing:
		return nil, ErrNoCA
	case CAReady:
		return nil, ErrCAExists
	}
	csrPEM, err := os.ReadFile(s.path(caCSRFile))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil {
		return nil, errors.New("station: the CA request file is damaged")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	chain, err := pki.CheckCACertificate(cert, csr.PublicKey, parents, s.Now())
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(s.path(caChainFile), encodeCerts(chain...), 0o644); err != nil {
		return nil, err
	}
	s.Log.Info("CA certificate installed", "subject", cert.Subject.String(), "root", chain[len(chain)-1].Subject.String())
	return chain, nil
}

// CAChain returns the CA certificate and its issuers up to the root.
func (s *Station) CAChain() ([]*x509.Certificate, error) {
	switch s.CAState() {
	case CAMissing:
		return nil, ErrNoCA
	case CAPending:
		return nil, ErrCAPending
	}
	data, err := os.ReadFile(s.path(caChainFile))
	if err != nil {
		return nil, err
	}
	return ParseCertificates(data)
}

// CSRPath is where a subordinate CA's request is.
func (s *Station) CSRPath() string { return s.path(caCSRFile) }

// CRLPath is where the current CRL is published.
func (s *Station) CRLPath() string { return s.path(caCRLFile) }

// CADB opens the issued-certificate database (without the CA key).
func (s *Station) CADB() (*pki.DB, error) {
	sh := s.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.db == nil {
		db, err := pki.OpenDB(s.path(caDBFile))
		if err != nil {
			return nil, err
		}
		sh.db = db
	}
	return sh.db, nil
}

// Directory opens the embedded directory store. A station configured with
// an external directory has none in use: ErrExternalDirectory (see
// UserDirectory).
func (s *Station) Directory() (*directory.Store, error) {
	if s.Config.Directory.External() {
		return nil, ErrExternalDirectory
	}
	sh := s.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.users == nil {
		if err := os.MkdirAll(s.path("directory"), 0o700); err != nil {
			return nil, err
		}
		u, err := directory.Open(s.path(dirDBFile), directory.Options{Domain: s.Config.Domain})
		if err != nil {
			return nil, err
		}
		sh.users = u
	}
	return sh.users, nil
}

// CA unlocks the CA key (asking pass for the passphrase if it is encrypted)
// and returns the CA.
func (s *Station) CA(pass PassphraseFunc) (*pki.CA, error) {
	s.mu.Lock()
	ca, key := s.ca, s.caKey
	s.mu.Unlock()
	if ca != nil {
		return ca, nil
	}
	// The lock is not held while the passphrase is asked for: a prompt
	// may wait on a person.
	chain, err := s.CAChain()
	if err != nil {
		return nil, err
	}
	if key == nil {
		if key, err = s.loadKey(pass); err != nil {
			return nil, err
		}
		if s.Config.CA.KeyEncrypted {
			// Unlocked in an officer session: forgotten when it ends.
			s.enroll.mu.Lock()
			if o := s.enroll.officer; o != nil {
				o.unlockedCA = true
			}
			s.enroll.mu.Unlock()
		}
	}
	db, err := s.CADB()
	if err != nil {
		return nil, err
	}
	users, err := s.UserDirectory()
	if err != nil {
		return nil, err
	}
	templates, err := pki.LoadTemplates(s.path(templatesDir))
	if err != nil {
		return nil, err
	}
	var pub pki.Publisher = directoryPublisher{users}
	if s.Config.Standalone {
		pub = pki.FilePublisher{Dir: s.path(publishedDir)}
	}
	base := s.Config.CA.BaseURL
	ca, err = pki.New(pki.Config{
		Signer: key, Chain: chain, DB: db, Templates: templates,
		Users: userStore{users}, Publisher: pub,
		Realm: s.Config.Realm, Domain: s.Config.Domain,
		CRLURL: base + pki.PathCRL, IssuerURL: base + pki.PathCACert,
		CRLValidity: time.Duration(s.Config.CA.CRLValidity),
		Now:         s.Now,
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ca == nil {
		s.ca = ca
	}
	return s.ca, nil
}

// CAUnlocked reports whether the CA key can sign without a passphrase:
// it is not encrypted, or it was unlocked in this station (and not
// forgotten since, see UnlockCA).
func (s *Station) CAUnlocked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.Config.CA.KeyEncrypted || s.ca != nil || s.caKey != nil
}

// UnlockCA unlocks an encrypted CA key for the actions that need it, so
// that a front asks for the passphrase once (audited as ca.unlock; a wrong
// passphrase is ErrPassphrase and changes nothing). The passphrase itself
// is not kept, only the unlocked CA, as for the services; a key unlocked
// (here or by any action) in an officer session is forgotten again when
// the session ends.
func (s *Station) UnlockCA(pass PassphraseFunc) error {
	if s.CAUnlocked() {
		return nil
	}
	ar := audit.Record{Action: "ca.unlock"}
	if err := s.auditReady(ar.Action); err != nil {
		return err
	}
	_, err := s.CA(pass)
	return s.recordErr(ar, err)
}

// lockCA forgets the unlocked CA of an encrypted key.
func (s *Station) lockCA() {
	if !s.Config.CA.KeyEncrypted {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ca, s.caKey = nil, nil
}

// ErrPassphrase is returned when the CA key cannot be unlocked.
var ErrPassphrase = errors.New("station: wrong passphrase for the CA key")

func (s *Station) loadKey(pass PassphraseFunc) (crypto.Signer, error) {
	data, err := os.ReadFile(s.path(caKeyFile))
	if err != nil {
		return nil, err
	}
	var p []byte
	if pki.IsEncryptedPrivateKeyPEM(data) {
		if pass == nil {
			return nil, fmt.Errorf("station: the CA key is encrypted and no passphrase was given")
		}
		if p, err = pass(false); err != nil {
			return nil, err
		}
		defer clear(p)
	}
	key, err := pki.ParsePrivateKeyPEM(data, p)
	if errors.Is(err, pki.ErrIncorrectPassphrase) {
		return nil, ErrPassphrase
	}
	return key, err
}

// Issue issues a certificate from a request file's contents (PKCS#10 or
// enroll-on-behalf-of CMS) as the CA operator. Every attempt is audited
// (cert.issue); a certificate whose issuance cannot be recorded in the
// audit log is revoked again (cessationOfOperation) and Issue fails.
func (s *Station) Issue(ctx context.Context, pass PassphraseFunc, template string, request []byte, user, host string) (*pki.Issued, error) {
	ar := issueRecord(template, user, host)
	if err := s.auditReady(ar.Action); err != nil {
		return nil, err
	}
	req, err := pki.ParseRequest(request)
	if err != nil {
		return nil, s.recordErr(ar, err)
	}
	ca, err := s.CA(pass)
	if err != nil {
		return nil, s.recordErr(ar, err)
	}
	issued, err := ca.Issue(ctx, pki.IssueRequest{Template: template, Request: req, Requester: pki.RequesterOperator, User: user, Host: host})
	if err != nil {
		s.Log.Warn("request refused", "template", template, "user", user, "err", err)
		return nil, s.recordErr(ar, err)
	}
	s.Log.Info("certificate issued", "serial", fmt.Sprintf("%x", issued.Record.Serial), "template", template, "user", issued.Record.User, "agent", issued.Record.Agent)
	if issued.PublishErr != nil {
		s.Log.Error("publication failed", "serial", fmt.Sprintf("%x", issued.Record.Serial), "err", issued.PublishErr)
	}
	if err := s.recordIssued(ar, issued); err != nil {
		return nil, err
	}
	return issued, nil
}

func issueRecord(template, user, host string) audit.Record {
	ar := audit.Record{Action: "cert.issue", User: user, Detail: "template " + template}
	if host != "" {
		ar.Detail += ", host " + host
	}
	return ar
}

// recordIssued audits an issued certificate; if that fails, it revokes the
// certificate, so that none is valid without a record of it.
func (s *Station) recordIssued(ar audit.Record, issued *pki.Issued) error {
	ar.User, ar.Cert = issued.Record.User, hexSerial(issued.Record.Serial)
	if issued.Record.Agent != "" {
		ar.Detail += ", on behalf, agent " + issued.Record.Agent
	}
	if issued.PublishErr != nil {
		ar.Detail += ", not published: " + issued.PublishErr.Error()
	}
	err := s.recordErr(ar, nil)
	if err == nil {
		return nil
	}
	db, derr := s.CADB()
	if derr == nil {
		_, derr = s.revokeDB(db, issued.Record.Serial, pki.ReasonCessationOfOperation)
	}
	if derr != nil {
		return errors.Join(err, fmt.Errorf("station: and revoking the unrecorded certificate %x failed: %w", issued.Record.Serial, derr))
	}
	s.Log.Error("certificate revoked: its issuance could not be audited", "serial", ar.Cert)
	return fmt.Errorf("%w (certificate %s revoked again)", err, ar.Cert)
}

// Revoke revokes a certificate. It needs no CA key: the next CRL carries it.
// certificateHold puts it on hold (audited as cert.hold, else cert.revoke).
// A station with RequireOfficer refuses it while no officer is signed in.
func (s *Station) Revoke(serial *big.Int, reason pki.RevocationReason) (*pki.Record, error) {
	return s.revoke(serial, reason, true)
}

// revoke is Revoke; the station's own revocations (rolling back a failed
// enrollment, superseding a renewed certificate) pass officer false: they
// go ahead even when the officer's card has just gone.
func (s *Station) revoke(serial *big.Int, reason pki.RevocationReason, officer bool) (*pki.Record, error) {
	ar := audit.Record{Action: "cert.revoke", Cert: hexSerial(serial), Detail: reason.String()}
	if reason == pki.ReasonCertificateHold {
		ar.Action = "cert.hold"
	}
	return s.changeCert(ar, serial, officer, func(db *pki.DB) (*pki.Record, error) { return s.revokeDB(db, serial, reason) })
}

// Release lifts a certificateHold (audited as cert.release).
func (s *Station) Release(serial *big.Int) (*pki.Record, error) {
	ar := audit.Record{Action: "cert.release", Cert: hexSerial(serial)}
	return s.changeCert(ar, serial, true, func(db *pki.DB) (*pki.Record, error) { return db.Release(serial) })
}

func (s *Station) changeCert(ar audit.Record, serial *big.Int, officer bool, change func(db *pki.DB) (*pki.Record, error)) (*pki.Record, error) {
	if err := s.auditReady(ar.Action); err != nil {
		return nil, err
	}
	if officer {
		if err := s.needOfficer(ar); err != nil {
			return nil, err
		}
	}
	db, err := s.CADB()
	if err != nil {
		return nil, s.recordErr(ar, err)
	}
	if old, err := db.Get(serial); err == nil {
		ar.User = old.User
	}
	rec, err := change(db)
	if err != nil {
		return nil, s.recordErr(ar, err)
	}
	s.Log.Info("certificate status changed", "serial", ar.Cert, "status", rec.Status, "reason", rec.Reason.String())
	if err := s.recordErr(ar, nil); err != nil {
		return nil, err
	}
	return rec, nil
}

// PublishCRL signs a new CRL and writes it where the HTTP service serves it.
func (s *Station) PublishCRL(pass PassphraseFunc) (*x509.RevocationList, error) {
	ar := audit.Record{Action: "crl.publish"}
	if err := s.auditReady(ar.Action); err != nil {
		return nil, err
	}
	ca, err := s.CA(pass)
	if err != nil {
		return nil, s.recordErr(ar, err)
	}
	s.shared.crlMu.Lock()
	defer s.shared.crlMu.Unlock()
	crl, err := ca.CRL()
	if err != nil {
		return nil, s.recordErr(ar, err)
	}
	if err := atomicfile.Write(s.CRLPath(), crl.Raw, 0o644); err != nil {
		return nil, s.recordErr(ar, err)
	}
	s.Log.Info("CRL published", "number", crl.Number.String(), "entries", len(crl.RevokedCertificateEntries), "next_update", crl.NextUpdate)
	ar.Detail = describeCRL(crl)
	if err := s.recordErr(ar, nil); err != nil {
		return nil, err
	}
	return crl, nil
}

// userStore adapts the directory to the CA's UserStore.
type userStore struct{ d directory.Directory }

func (u userStore) LookupUser(ctx context.Context, name string) (*pki.User, error) {
	e, err := u.d.LookupUser(ctx, name)
	if errors.Is(err, directory.ErrNoSuchUser) {
		return nil, pki.ErrUnknownUser
	}
	if err != nil {
		return nil, err
	}
	return &pki.User{Name: e.Name, UPN: e.UPN, Mail: e.Mail, DisplayName: e.DisplayName, SID: e.SID}, nil
}

// directoryPublisher puts certificates on the user's entry (userCertificate).
type directoryPublisher struct{ d directory.Directory }

func (p directoryPublisher) Publish(ctx context.Context, user *pki.User, rec *pki.Record) error {
	return p.d.PublishCertificate(ctx, user.Name, rec.DER)
}

// TemplatesDir holds the site's template files (*.toml).
func (s *Station) TemplatesDir() string { return s.path(templatesDir) }
