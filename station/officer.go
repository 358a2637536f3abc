package station

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/audit"
)

// ErrNotSignedIn is returned for an action that needs an enrollment officer
// while none is signed in (or the officer's card went away).
var ErrNotSignedIn = errors.New("station: no enrollment officer is signed in (insert the officer card and sign in)")

// ErrNoAgentCertificate is returned by SignIn for a card without a valid
// enrollment-agent certificate of this station's CA.
var ErrNoAgentCertificate = errors.New("station: the card holds no enrollment-agent certificate")

// AgentError is a card whose enrollment-agent certificate this station does
// not accept: not from its CA, expired, revoked, or without the EKU.
type AgentError struct{ Reason string }

func (e *AgentError) Error() string { return "station: enrollment agent refused: " + e.Reason }

// agentSlots are where an officer card may hold its agent key, in the order
// they are searched; bootstrap puts it in 9A.
var agentSlots = []card.Slot{card.SlotAuthentication, card.SlotSignature, card.SlotKeyManagement}

// Officer is a signed-in enrollment officer: the agent certificate and the
// agent key, which stays on the officer's card.
type Officer struct {
	// User is the directory user the agent certificate was issued to.
	User        string
	Certificate *x509.Certificate
	Slot        card.Slot
	Reader      string

	piv     *card.PIV
	key     crypto.Signer
	release func()
	// unlockedCA: the CA key was unlocked in this session (guarded by
	// the station's enroll.mu).
	unlockedCA bool
}

// Actor is how the audit log names the officer.
func (o *Officer) Actor() string { return "officer:" + o.User }

// Signer is the agent key on the officer's card.
func (o *Officer) Signer() crypto.Signer { return o.key }

// SignIn opens the officer's card in a PC/SC reader and signs the officer
// in; see SignInCard.
func (s *Station) SignIn(ctx context.Context, reader, pin string) (*Officer, error) {
	pc, err := card.EstablishContext()
	if err != nil {
		return nil, err
	}
	c, err := pc.Connect(reader)
	if err != nil {
		pc.Release()
		return nil, err
	}
	o, err := s.SignInCard(ctx, c, reader, pin)
	if err != nil {
		pc.Release()
		return nil, err
	}
	prev := o.release
	o.release = func() { prev(); pc.Release() }
	return o, nil
}

// SignInCard signs an officer in with a card already connected (a PC/SC
// card or an in-process virtual card; the Station closes it at SignOut):
// the PIN is verified on the card (a wrong one is audited as pin.failed and
// returned as *card.AuthError), the enrollment-agent certificate is read and
// checked against this station's CA (chain, EKU, the CA's record, not
// revoked), and the card proves it holds the agent key. A new sign-in ends
// the previous session.
func (s *Station) SignInCard(ctx context.Context, c card.Card, reader, pin string) (*Officer, error) {
	p, err := card.OpenPIV(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	o, err := s.signIn(ctx, p, reader, pin)
	if err != nil {
		p.Close()
		return nil, err
	}
	o.release = func() { p.Close() }
	s.SignOut()
	s.enroll.mu.Lock()
	s.enroll.officer = o
	s.enroll.mu.Unlock()
	return o, nil
}

func (s *Station) signIn(_ context.Context, p *card.PIV, reader, pin string) (*Officer, error) {
	cert, slot, err := findAgentCert(p)
	if err != nil {
		s.Record(audit.Record{Actor: s.processActor(), Action: "officer.signin", Outcome: "refused", Detail: "no enrollment-agent certificate on the card in " + reader})
		return nil, err
	}
	user, err := s.checkAgent(cert)
	if err != nil {
		s.Record(audit.Record{Actor: s.processActor(), Action: "officer.signin", Cert: fmt.Sprintf("%x", cert.SerialNumber), Outcome: "refused", Detail: err.Error()})
		return nil, err
	}
	actor := "officer:" + user
	if err := p.VerifyPIN(pin); err != nil {
		if IsPINFailure(err) {
			if aerr := s.recordPINFailure(actor, user, cardIdentity(p), reader, "officer sign-in", err); aerr != nil {
				return nil, errors.Join(err, aerr)
			}
		}
		return nil, err
	}
	k, err := p.PrivateKey(slot, cert.PublicKey, card.KeyAuth{PIN: pin})
	if err != nil {
		return nil, err
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("station: the agent key in slot %v cannot sign", slot)
	}
	// The card proves it holds the key of the certificate, so a copied
	// certificate on another card does not sign anyone in.
	if err := proveKey(key, cert); err != nil {
		s.Record(audit.Record{Actor: actor, Action: "officer.signin", User: user, Cert: fmt.Sprintf("%x", cert.SerialNumber), Outcome: "refused", Detail: err.Error()})
		return nil, err
	}
	if err := s.Record(audit.Record{Actor: actor, Action: "officer.signin", User: user, Cert: fmt.Sprintf("%x", cert.SerialNumber), Outcome: "ok", Detail: "agent card in " + reader}); err != nil {
		return nil, err
	}
	return &Officer{User: user, Certificate: cert, Slot: slot, Reader: reader, piv: p, key: key}, nil
}

func findAgentCert(p *card.PIV) (*x509.Certificate, card.Slot, error) {
	for _, slot := range agentSlots {
		c, err := p.Certificate(slot)
		if errors.Is(err, card.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if slices.ContainsFunc(c.UnknownExtKeyUsage, pki.OIDCertificateRequestAgent.Equal) {
			return c, slot, nil
		}
	}
	return nil, 0, ErrNoAgentCertificate
}

// checkAgent checks an agent certificate as the CA will: issued by this
// CA, valid now, the Certificate Request Agent EKU, recorded and not
// revoked. It returns the agent's user name.
func (s *Station) checkAgent(cert *x509.Certificate) (string, error) {
	chain, err := s.CAChain()
	if err != nil {
		return "", err
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(chain[len(chain)-1])
	for _, c := range chain[:len(chain)-1] {
		inter.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: s.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return "", &AgentError{fmt.Sprintf("the certificate does not chain to this station's CA: %v", err)}
	}
	if !slices.ContainsFunc(cert.UnknownExtKeyUsage, pki.OIDCertificateRequestAgent.Equal) {
		return "", &AgentError{"no Certificate Request Agent EKU"}
	}
	db, err := s.CADB()
	if err != nil {
		return "", err
	}
	rec, err := db.Get(cert.SerialNumber)
	if errors.Is(err, pki.ErrNotFound) {
		return "", &AgentError{fmt.Sprintf("certificate %x is not in this CA's records", cert.SerialNumber)}
	}
	if err != nil {
		return "", err
	}
	if string(rec.DER) != string(cert.Raw) {
		return "", &AgentError{"the certificate does not match the CA's record"}
	}
	if rec.Status != pki.StatusValid {
		return "", &AgentError{fmt.Sprintf("certificate %x is %s (%s)", cert.SerialNumber, rec.Status, rec.Reason)}
	}
	return rec.User, nil
}

func proveKey(key crypto.Signer, cert *x509.Certificate) error {
	challenge := make([]byte, 32)
	if _, err := rand.Read(challenge); err != nil {
		return err
	}
	digest := sha256.Sum256(challenge)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return err
	}
	alg := x509.ECDSAWithSHA256
	if _, ok := cert.PublicKey.(interface{ Size() int }); ok {
		alg = x509.SHA256WithRSA
	}
	if err := cert.CheckSignature(alg, challenge, sig); err != nil {
		return &AgentError{"the card does not hold the key of its agent certificate"}
	}
	return nil
}

// Officer returns the signed-in officer, checking that the officer's card
// is still there; when it has gone the session ends (audited) and the
// error is ErrNotSignedIn.
func (s *Station) Officer() (*Officer, error) {
	s.enroll.mu.Lock()
	o := s.enroll.officer
	s.enroll.mu.Unlock()
	if o == nil {
		return nil, ErrNotSignedIn
	}
	if _, _, err := o.piv.PINStatus(); err != nil {
		s.signOut(o, "the officer card went away: "+err.Error())
		return nil, fmt.Errorf("%w: %v", ErrNotSignedIn, err)
	}
	return o, nil
}

// SignOut ends the officer session, if any.
func (s *Station) SignOut() { s.signOut(nil, "signed out") }

func (s *Station) signOut(only *Officer, detail string) {
	s.enroll.mu.Lock()
	o := s.enroll.officer
	if o == nil || (only != nil && only != o) {
		s.enroll.mu.Unlock()
		return
	}
	s.enroll.officer = nil
	unlocked := o.unlockedCA
	s.enroll.mu.Unlock()
	if o.release != nil {
		o.release()
	}
	if unlocked {
		// What the officer unlocked goes with the officer.
		s.lockCA()
	}
	if err := s.Record(audit.Record{Actor: o.Actor(), Action: "officer.signout", User: o.User, Outcome: "ok", Detail: detail}); err != nil {
		s.Log.Error("audit of officer sign-out failed", "err", err)
	}
}

// CardGone tells the station that the card in reader was removed (the
// front that runs the card.Monitor calls it on CardRemoved): when it was
// the officer's card, the session ends at once, audited.
func (s *Station) CardGone(reader string) {
	s.enroll.mu.Lock()
	o := s.enroll.officer
	s.enroll.mu.Unlock()
	if o != nil && o.Reader == reader {
		s.signOut(o, "the officer card was removed from "+reader)
	}
}
