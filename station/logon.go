package station

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/pki"
)

// LogonOptions describe one smart-card (or key file) logon: who, against
// which KDC, with which identity, and what to get.
type LogonOptions struct {
	// User is the login name (alice), alice@REALM, or a UPN
	// (alice@example.test, sent as an enterprise name).
	User string
	// Realm and KDC (a TCP address) to log on to.
	Realm, KDC string
	// Roots verify the KDC's certificate.
	Roots *x509.CertPool

	// Reader is a PC/SC reader with a PIV card: its key and certificate
	// in slot 9A (PIV Authentication) are used, with PIN.
	Reader string
	PIN    string
	// Card, when set, is the card named Reader, held in this process (a
	// virtual card) rather than reached through PC/SC; Logon closes it.
	Card card.Card
	// Otherwise Certificate and Key (and intermediates in Chain) are used.
	Certificate *x509.Certificate
	Chain       []*x509.Certificate
	Key         crypto.Signer

	// Mode is "dh" (Diffie-Hellman, the default) or "rsa" (public-key
	// encryption mode: the KDC encrypts the reply key to the certificate).
	Mode string
	// Service, when set, is a service principal (host/station.example.test)
	// to get a ticket for with the TGT.
	Service string
	// ServiceKeys, when set, decrypt the service ticket as the service
	// would (from its keytab, see KeytabKeys).
	ServiceKeys []kdc.Key
	// CCache, when set, is the file the TGT (and service ticket) are
	// written to, as an MIT credential cache.
	CCache string

	// Step is called after each step, for output as the logon goes.
	Step func(LogonStep)
	// Timeout bounds each exchange with the KDC (default 10 s).
	Timeout time.Duration

	// pinFailed, set by Station.Logon, audits a PIN the card refuses.
	pinFailed func(p *card.PIV, err error) error
	// revokedOn, set by Station.Logon, says when and why the station's CA
	// revoked cert, so that a refusal for revocation can say so (the KDC
	// tells the client only "certificate revoked").
	revokedOn func(cert *x509.Certificate) (time.Time, string, bool)
}

// LogonStep is one step of a logon and how long it took.
type LogonStep struct {
	Name   string
	Detail string
	Took   time.Duration
}

// LogonReport is what a logon did and got.
type LogonReport struct {
	Steps  []LogonStep
	TGT    *kdc.Credential
	Ticket *kdc.Credential // the service ticket, with Service
	Total  time.Duration
}

// LogonError is a failed logon: the step it failed in, the reason in
// plain words, and whether it is a refusal (the KDC said no, a wrong PIN)
// rather than an environment error (no reader, no KDC, bad input).
type LogonError struct {
	Step    string
	Reason  string
	Refused bool
	Err     error
}

func (e *LogonError) Error() string { return e.Step + ": " + e.Reason }
func (e *LogonError) Unwrap() error { return e.Err }

// Logon logs a user on with PKINIT, step by step, and reports each step
// with its timing. Errors are *LogonError.
func Logon(ctx context.Context, opts LogonOptions) (*LogonReport, error) {
	if opts.Card != nil {
		defer opts.Card.Close()
	}
	l := &logon{opts: opts, report: &LogonReport{}, start: time.Now()}
	err := l.run(ctx)
	l.report.Total = time.Since(l.start)
	var le *LogonError
	var re *kdc.RemoteError
	if opts.revokedOn != nil && l.cert != nil && errors.As(err, &le) && errors.As(err, &re) && re.Code == kdc.ErrRevokedCertificate {
		if when, why, ok := opts.revokedOn(l.cert); ok {
			le.Reason = fmt.Sprintf("certificate revoked on %s (%s); the KDC refused it (%s)", when.UTC().Format(time.DateOnly), why, kdc.ErrorName(re.Code))
		}
	}
	return l.report, err
}

type logon struct {
	opts   LogonOptions
	report *LogonReport
	start  time.Time
	last   time.Time
	cert   *x509.Certificate // the client certificate, once known
}

func (l *logon) step(name, detail string) {
	now := time.Now()
	if l.last.IsZero() {
		l.last = l.start
	}
	s := LogonStep{Name: name, Detail: detail, Took: now.Sub(l.last)}
	l.last = now
	l.report.Steps = append(l.report.Steps, s)
	if l.opts.Step != nil {
		l.opts.Step(s)
	}
}

func envErr(step string, err error) *LogonError {
	return &LogonError{Step: step, Reason: err.Error(), Err: err}
}

// kdcErr sorts an error of an exchange with the KDC.
func kdcErr(step string, err error) error {
	return &LogonError{Step: step, Reason: kdc.Explain(err), Refused: kdc.Refused(err), Err: err}
}

// cardErr explains a card error: a wrong PIN is a refusal.
func cardErr(step string, err error) *LogonError {
	var ae *card.AuthError
	switch {
	case errors.As(err, &ae) && ae.Retries > 0:
		tries := fmt.Sprintf("%d tries left", ae.Retries)
		if ae.Retries == 1 {
			tries = "1 try left"
		}
		return &LogonError{Step: step, Reason: "wrong PIN — " + tries, Refused: true, Err: err}
	case errors.Is(err, card.ErrBlocked):
		return &LogonError{Step: step, Reason: "the PIN is blocked — unblock it with the PUK", Refused: true, Err: err}
	}
	return envErr(step, err)
}

func (l *logon) run(ctx context.Context) error {
	o := &l.opts
	user, enterprise, err := logonName(o.User, o.Realm)
	if err != nil {
		return envErr("user", err)
	}
	var publicKeyMode bool
	switch o.Mode {
	case "", "dh":
	case "rsa":
		publicKeyMode = true
	default:
		return envErr("mode", fmt.Errorf("mode %q: want dh or rsa", o.Mode))
	}
	cert, key := o.Certificate, o.Key
	if o.Reader != "" || o.Card != nil {
		c, k, release, err := l.openCard()
		if err != nil {
			return err
		}
		defer release()
		cert, key = c, k
	}
	if cert == nil || key == nil {
		return envErr("identity", errors.New("no card reader and no certificate and key"))
	}
	l.cert = cert
	if publicKeyMode {
		if _, ok := key.(crypto.Decrypter); !ok {
			return envErr("identity", errors.New("public-key (rsa) mode needs a key that can decrypt (an RSA key)"))
		}
	}
	client := &kdc.Client{Realm: o.Realm, KDC: o.KDC, Certificate: cert, Key: key, Chain: o.Chain, Roots: o.Roots, Timeout: o.Timeout}

	fresh, err := client.Probe(ctx, user, enterprise)
	if err != nil {
		return kdcErr("AS-REQ without pre-authentication", err)
	}
	detail := "PREAUTH_REQUIRED, PKINIT offered"
	if fresh != nil {
		detail += ", freshness token"
	}
	l.step("KDC asked for pre-authentication", detail+" ("+o.KDC+")")

	req, err := client.NewPKINITRequest(user, kdc.PKINITOptions{Enterprise: enterprise, Freshness: fresh, PublicKeyMode: publicKeyMode})
	if err != nil {
		if o.Reader != "" {
			return cardErr("signing the AS-REQ on the card", err)
		}
		return envErr("signing the AS-REQ", err)
	}
	mode := "Diffie-Hellman"
	if publicKeyMode {
		mode = "public-key (RSA) mode"
	}
	l.step("AS-REQ signed", fmt.Sprintf("PKINIT %s, %d bytes", mode, len(req.Raw)))

	reply, err := client.Exchange(ctx, req.Raw)
	if err != nil {
		return kdcErr("AS-REQ sent", err)
	}
	l.step("AS-REQ sent, reply received", fmt.Sprintf("%d bytes", len(reply)))

	tgt, err := client.ReadASReply(req, reply)
	if err != nil {
		if o.Reader != "" && publicKeyMode && !kdc.Refused(err) {
			var ae *card.AuthError
			if errors.As(err, &ae) || errors.Is(err, card.ErrBlocked) {
				return cardErr("decrypting the reply key on the card", err)
			}
		}
		return kdcErr("reply verified", err)
	}
	how := "KDC certificate verified, DH reply key derived"
	if publicKeyMode {
		how = "KDC certificate verified, reply key decrypted"
	}
	l.step("reply verified", how)
	l.report.TGT = tgt
	l.step("TGT", describe(tgt))

	if o.Service != "" {
		st, err := client.ServiceTicket(ctx, tgt, o.Service)
		if err != nil {
			return kdcErr("TGS-REQ for "+o.Service, err)
		}
		l.step("TGS-REQ sent, reply received", o.Service)
		l.report.Ticket = st
		l.step("service ticket", describe(st))
		if len(o.ServiceKeys) > 0 {
			part, err := kdc.DecryptTicket(st.Ticket, o.ServiceKeys)
			if err != nil {
				return envErr("ticket decrypted with the service key", err)
			}
			l.step("ticket decrypted with the service key", fmt.Sprintf("client %s@%s, kvno %d", strings.Join(part.CName.NameString, "/"), part.CRealm, st.Ticket.EncPart.KVNO))
		}
	}
	if o.CCache != "" {
		creds := []*kdc.Credential{tgt}
		if l.report.Ticket != nil {
			creds = append(creds, l.report.Ticket)
		}
		if err := kdc.WriteCCache(o.CCache, creds...); err != nil {
			return envErr("credential cache", err)
		}
		l.step("credential cache written", o.CCache)
	}
	return nil
}

// openCard verifies the PIN and reads the certificate and key of slot 9A.
func (l *logon) openCard() (*x509.Certificate, crypto.Signer, func(), error) {
	o := &l.opts
	c, release := o.Card, func() {} // Logon closes a held card
	if c == nil {
		ctx, err := card.EstablishContext()
		if err != nil {
			return nil, nil, nil, envErr("PC/SC", err)
		}
		pc, err := ctx.Connect(o.Reader)
		if err != nil {
			ctx.Release()
			return nil, nil, nil, envErr("card in "+o.Reader, err)
		}
		c, release = pc, func() { pc.Close(); ctx.Release() }
	}
	fail := func(err error) (*x509.Certificate, crypto.Signer, func(), error) {
		release()
		return nil, nil, nil, err
	}
	p, err := card.OpenPIV(c)
	if err != nil {
		return fail(envErr("PIV application", err))
	}
	if o.PIN == "" {
		return fail(envErr("PIN", errors.New("no PIN given")))
	}
	if err := p.VerifyPIN(o.PIN); err != nil {
		le := cardErr("PIN", err)
		if o.pinFailed != nil {
			if aerr := o.pinFailed(p, err); aerr != nil {
				le.Reason += " (and the failed attempt could not be audited: " + aerr.Error() + ")"
			}
		}
		return fail(le)
	}
	l.step("PIN verified on the card", o.Reader)
	cert, err := p.Certificate(card.SlotAuthentication)
	if err != nil {
		return fail(envErr("certificate in slot 9A", err))
	}
	l.step("certificate read", fmt.Sprintf("slot 9A: CN=%s, serial %x, until %s", cert.Subject.CommonName, cert.SerialNumber, cert.NotAfter.UTC().Format(time.DateOnly)))
	k, err := p.PrivateKey(card.SlotAuthentication, cert.PublicKey, card.KeyAuth{PIN: o.PIN})
	if err != nil {
		return fail(envErr("key in slot 9A", err))
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return fail(envErr("key in slot 9A", errors.New("the card key cannot sign")))
	}
	return cert, signer, release, nil
}

// Logon is Logon at this station: with a card (opts.Reader, opts.Card), a PIN the
// card refuses is audited (pin.failed, see PINFailed).
func (s *Station) Logon(ctx context.Context, opts LogonOptions) (*LogonReport, error) {
	if opts.Reader != "" || opts.Card != nil {
		during := "logon"
		if opts.User != "" {
			during += " as " + opts.User
		}
		opts.pinFailed = func(p *card.PIV, err error) error { return s.PINFailed(p, opts.Reader, during, err) }
	}
	opts.revokedOn = s.revokedOn
	return Logon(ctx, opts)
}

// revokedOn looks cert up in the CA database: when and why it was revoked,
// if this station's CA issued it and revoked it.
func (s *Station) revokedOn(cert *x509.Certificate) (time.Time, string, bool) {
	db, err := s.CADB()
	if err != nil {
		return time.Time{}, "", false
	}
	rec, err := db.Get(cert.SerialNumber)
	if err != nil || !bytes.Equal(rec.DER, cert.Raw) || rec.Status == pki.StatusValid {
		return time.Time{}, "", false
	}
	return rec.RevokedAt, rec.Reason.String(), true
}

// logonName splits user into the name to send and whether it is an
// enterprise (UPN) name.
func logonName(user, realm string) (string, bool, error) {
	if user == "" {
		return "", false, errors.New("no user given")
	}
	name, r, ok := strings.Cut(user, "@")
	if !ok {
		return user, false, nil
	}
	if r == realm {
		return name, false, nil
	}
	return user, true, nil
}

func describe(c *kdc.Credential) string {
	return fmt.Sprintf("%s@%s for %s@%s, %s, until %s", strings.Join(c.Client.NameString, "/"), c.Realm,
		strings.Join(c.Server.NameString, "/"), c.Realm, etypeName(c.SessionKey.KeyType), c.EndTime.UTC().Format(time.DateTime+" MST"))
}

func etypeName(id int32) string {
	switch id {
	case etypeID.AES256_CTS_HMAC_SHA1_96:
		return "aes256-cts-hmac-sha1-96"
	case etypeID.AES128_CTS_HMAC_SHA1_96:
		return "aes128-cts-hmac-sha1-96"
	case etypeID.AES256_CTS_HMAC_SHA384_192:
		return "aes256-cts-hmac-sha384-192"
	case etypeID.AES128_CTS_HMAC_SHA256_128:
		return "aes128-cts-hmac-sha256-128"
	}
	return fmt.Sprintf("enctype %d", id)
}

// KeytabKeys reads the keys of principal (service/host, with or without
// @REALM) from an MIT keytab.
func KeytabKeys(kt []byte, principal string) ([]kdc.Key, error) {
	var k keytab.Keytab
	if err := k.Unmarshal(kt); err != nil {
		return nil, fmt.Errorf("keytab: %w", err)
	}
	name, realm, _ := strings.Cut(principal, "@")
	var keys []kdc.Key
	for _, e := range k.Entries {
		if strings.Join(e.Principal.Components, "/") != name || (realm != "" && e.Principal.Realm != realm) {
			continue
		}
		kvno := int(e.KVNO)
		if kvno == 0 {
			kvno = int(e.KVNO8)
		}
		keys = append(keys, kdc.Key{KVNO: kvno, EType: e.Key.KeyType, Value: e.Key.KeyValue})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("the keytab has no keys for %s", principal)
	}
	return keys, nil
}
