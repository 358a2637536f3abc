package station

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

// CardRef names the card an action needs: in a PC/SC reader, or a card
// already connected (Reader then only names it). The station closes Card
// when the action ends.
type CardRef struct {
	Reader string
	Card   card.Card
}

// NotManagedError is a card this station has no inventory record of: it
// cannot know its management key or PUK.
type NotManagedError struct{ ID string }

func (e *NotManagedError) Error() string {
	if e.ID == "" {
		return "station: the card has no CHUID: this station did not enroll it"
	}
	return fmt.Sprintf("station: card %s is not in this station's inventory", e.ID)
}

// managedCard is an open card the inventory knows.
type managedCard struct {
	p       *card.PIV
	id      string
	rec     *inventory.Card
	release func()
}

func (m *managedCard) close() {
	if m.p != nil {
		m.p.Close()
	}
	if m.release != nil {
		m.release()
	}
}

// openManaged opens the card of ref and finds its inventory record.
func (s *Station) openManaged(ref CardRef) (*managedCard, error) {
	m := &managedCard{}
	c := ref.Card
	if c == nil {
		pc, err := card.EstablishContext()
		if err != nil {
			return nil, err
		}
		m.release = func() { pc.Release() }
		if c, err = pc.Connect(ref.Reader); err != nil {
			m.close()
			return nil, err
		}
	}
	p, err := card.OpenPIV(c)
	if err != nil {
		c.Close()
		m.close()
		return nil, err
	}
	m.p = p
	serial, _ := p.Serial()
	chuid, err := p.CHUID()
	if errors.Is(err, card.ErrNotFound) {
		m.close()
		return nil, &NotManagedError{}
	}
	if err != nil {
		m.close()
		return nil, err
	}
	m.id = inventory.CardID(chuid.GUID[:], serial)
	inv, err := s.Inventory()
	if err != nil {
		m.close()
		return nil, err
	}
	if m.rec, err = inv.Get(m.id); errors.Is(err, inventory.ErrNotFound) {
		m.close()
		return nil, &NotManagedError{ID: m.id}
	} else if err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

// authenticate proves to the card that this station manages it.
func (s *Station) authenticate(m *managedCard) error {
	alg, err := m.p.ManagementKeyAlgorithm()
	if errors.Is(err, card.ErrNotSupported) {
		alg = card.MgmtTDES
	} else if err != nil {
		return err
	}
	k, err := s.CardManagementKey(m.id, alg, m.rec.MgmtKeyVersion)
	if err != nil {
		return err
	}
	err = m.p.AuthenticateManagementKey(alg, k)
	if errors.Is(err, card.ErrWrongManagementKey) && m.rec.State == inventory.Uninitialized {
		// An enrollment that stopped before the station's key was set.
		err = m.p.AuthenticateManagementKey(alg, card.DefaultManagementKey)
	}
	if errors.Is(err, card.ErrWrongManagementKey) {
		return fmt.Errorf("%w: the card %s does not have this station's management key", err, m.id)
	}
	return err
}

func requireState(c *inventory.Card, want string, states ...inventory.State) error {
	for _, st := range states {
		if c.State == st {
			return nil
		}
	}
	return &CardStateError{ID: c.ID, State: c.State, Owner: c.Owner, Want: want}
}

// UnblockRequest asks for a card's PIN to be set again with its stored PUK.
type UnblockRequest struct {
	CardRef
	// PIN is the new PIN (CheckPIN); RandomPIN makes one instead, returned
	// once in the result.
	PIN       string
	RandomPIN bool
}

// UnblockResult is an unblocked card.
type UnblockResult struct {
	Card *inventory.Card
	// PIN is the random new PIN, when asked for: show it once.
	PIN string
}

// UnblockCard sets a new PIN on an active or suspended card with the PUK
// the station keeps sealed for it, which also unblocks a blocked PIN. The
// signed-in officer vouches for the holder's identity. A PUK the card
// refuses is audited as pin.failed with the tries left.
func (s *Station) UnblockCard(ctx context.Context, req UnblockRequest) (res *UnblockResult, err error) {
	o, err := s.Officer()
	if err != nil {
		closeRef(req.CardRef)
		return nil, err
	}
	base := audit.Record{Actor: o.Actor(), Action: "card.unblock"}
	defer func() {
		if err != nil {
			base.Outcome, base.Detail = outcome(err), err.Error()
			err = errors.Join(err, s.recordOrNil(base))
		}
	}()
	pin := req.PIN
	if req.RandomPIN {
		if pin, err = RandomPIN(); err != nil {
			closeRef(req.CardRef)
			return nil, err
		}
	} else if err := CheckPIN(pin); err != nil {
		closeRef(req.CardRef)
		return nil, err
	}
	m, err := s.openManaged(req.CardRef)
	if err != nil {
		return nil, err
	}
	defer m.close()
	base.Card, base.User = m.id, m.rec.Owner
	if err := requireState(m.rec, "only an active or suspended card is unblocked", inventory.Active, inventory.Suspended); err != nil {
		return nil, err
	}
	puk, err := s.OpenPUK(m.id, m.rec.SealedPUK)
	if err != nil {
		return nil, err
	}
	if err := m.p.Unblock(puk, pin); err != nil {
		if isAuthError(err) {
			if aerr := s.recordPINFailure(o.Actor(), m.rec.Owner, m.id, req.Reader, "unblock with the stored PUK", err); aerr != nil {
				return nil, errors.Join(err, aerr)
			}
		}
		return nil, err
	}
	inv, _ := s.Inventory()
	c, err := inv.Update(m.id, func(c *inventory.Card) error {
		c.History = append(c.History, inventory.Event{Time: s.Now(), Actor: o.Actor(), Action: "card.unblock", From: c.State, To: c.State, Detail: "PIN set with the stored PUK"})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.Record(audit.Record{Actor: o.Actor(), Action: "card.unblock", User: m.rec.Owner, Card: m.id, Outcome: audit.OK, Detail: "PIN set with the stored PUK"}); err != nil {
		return nil, err
	}
	res = &UnblockResult{Card: c}
	if req.RandomPIN {
		res.PIN = pin
	}
	return res, nil
}

// recordOrNil appends a failure record; it is used where the action has
// failed already and only the audit failure is added to the error.
func (s *Station) recordOrNil(r audit.Record) error {
	if r.Outcome == "" {
		r.Outcome = audit.Failed
	}
	return s.Record(r)
}

func closeRef(r CardRef) {
	if r.Card != nil {
		r.Card.Close()
	}
}

// ResetCard returns a card this station enrolled to blank: its
// certificates are revoked (cessationOfOperation, the card record then
// revoked), the card's PIV application reset to factory state (keys and
// certificates erased, default PIN, PUK and management key) with a new
// CHUID, so that it comes back as a new card, and the record terminated.
// A reset that fails after the revocation can be run again.
func (s *Station) ResetCard(ctx context.Context, ref CardRef, detail string) (res *CardResult, err error) {
	o, err := s.Officer()
	if err != nil {
		closeRef(ref)
		return nil, err
	}
	base := audit.Record{Actor: o.Actor(), Action: "card.reset", Detail: detail}
	defer func() {
		if err != nil {
			base.Outcome, base.Detail = outcome(err), strings.TrimPrefix(detail+": "+err.Error(), ": ")
			err = errors.Join(err, s.recordOrNil(base))
		}
	}()
	m, err := s.openManaged(ref)
	if err != nil {
		return nil, err
	}
	defer m.close()
	base.Card, base.User = m.id, m.rec.Owner
	if m.rec.State == inventory.Terminated {
		return nil, &CardStateError{ID: m.id, State: m.rec.State, Owner: m.rec.Owner, Want: "it is no longer this station's card; use scstation card reset"}
	}
	if !m.p.Yubico() {
		return nil, fmt.Errorf("%w: the card cannot be reset to factory state (no Yubico extensions)", card.ErrNotSupported)
	}
	// The card must prove it is ours before its certificates go.
	if err := s.authenticate(m); err != nil {
		return nil, err
	}
	res = &CardResult{}
	if m.rec.State == inventory.Active || m.rec.State == inventory.Suspended {
		r, err := s.RevokeCard(ctx, m.id, pki.ReasonCessationOfOperation)
		if err != nil {
			return nil, err
		}
		res = r
	}
	if err := m.p.Reset(); err != nil {
		return nil, err
	}
	// The card is blank: its record ends now, whatever happens next.
	inv, _ := s.Inventory()
	if res.Card, err = inv.Transition(m.id, inventory.Terminated, o.Actor(), "card.reset", detail); err != nil {
		return nil, err
	}
	// A new CHUID, so that the blank card comes back as a new card even
	// where a reset keeps the old one (YubiKeys and the emulator drop or
	// renew it; the enrollment writes one to a card without).
	if err := s.newCHUID(m.p); err != nil {
		s.Log.Warn("reset card: no new CHUID written", "card", m.id, "err", err)
		detail = strings.TrimPrefix(detail+"; no new CHUID written: "+err.Error(), "; ")
	}
	base.Outcome, base.Detail = audit.OK, strings.TrimPrefix(detail+": card erased, record terminated", ": ")
	if err := s.Record(base); err != nil {
		return nil, err
	}
	return res, nil
}

// newCHUID writes a fresh CHUID to a card with the factory management key.
func (s *Station) newCHUID(p *card.PIV) error {
	alg, err := p.ManagementKeyAlgorithm()
	if errors.Is(err, card.ErrNotSupported) {
		alg = card.MgmtTDES
	} else if err != nil {
		return err
	}
	if err := p.AuthenticateManagementKey(alg, card.DefaultManagementKey); err != nil {
		return err
	}
	chuid, err := card.NewCHUID()
	if err != nil {
		return err
	}
	return p.SetCHUID(chuid)
}

// RenewRequest asks for new keys and certificates on an active card.
type RenewRequest struct {
	CardRef
	// PIN is the card holder's PIN: the new keys sign their requests.
	PIN        string
	Passphrase PassphraseFunc
	Progress   func(Step)
}

// RenewCard renews an active card before its certificates expire: for
// each certificate the inventory lists, a new key of the same algorithm is
// generated in the same slot, the CA issues from the same template on the
// officer's enroll-on-behalf-of request, the certificate is written, and
// then the old certificates are revoked as superseded. If it fails part-way
// the certificates issued in the attempt are revoked and the record keeps
// the old ones (whose keys may already be replaced: renew again).
func (s *Station) RenewCard(ctx context.Context, req RenewRequest) (res *EnrollResult, err error) {
	o, err := s.Officer()
	if err != nil {
		closeRef(req.CardRef)
		return nil, err
	}
	start := time.Now()
	res = &EnrollResult{}
	var issued []*pki.Issued
	base := audit.Record{Actor: o.Actor(), Action: "card.renew"}
	step := "card"
	defer func() {
		if err == nil {
			return
		}
		var revoked []string
		for _, is := range issued {
			if r, rerr := s.revoke(is.Record.Serial, pki.ReasonCessationOfOperation, false); rerr == nil {
				revoked = append(revoked, fmt.Sprintf("%x", r.Serial))
			} else if !errors.Is(rerr, pki.ErrAlreadyRevoked) {
				err = errors.Join(err, rerr)
			}
		}
		err = &EnrollError{Step: step, Err: err, Revoked: revoked, CardID: base.Card}
		base.Outcome, base.Detail = outcome(err), err.Error()
		base.Cert = strings.Join(revoked, ",")
		if aerr := s.Record(base); aerr != nil {
			err = errors.Join(err, aerr)
		}
	}()
	progress := func(name, detail string, t0 time.Time) {
		st := Step{Name: name, Detail: detail, Took: time.Since(t0)}
		res.Steps = append(res.Steps, st)
		if req.Progress != nil {
			req.Progress(st)
		}
	}
	t0 := time.Now()
	m, err := s.openManaged(req.CardRef)
	if err != nil {
		return nil, err
	}
	defer m.close()
	base.Card, base.User = m.id, m.rec.Owner
	res.CardID, res.Owner, res.Serial, res.GUID = m.id, m.rec.Owner, m.rec.Serial, m.rec.GUID
	if err := requireState(m.rec, "only an active card is renewed", inventory.Active); err != nil {
		return nil, err
	}
	if len(m.rec.Certificates) == 0 {
		return nil, fmt.Errorf("station: card %s lists no certificates to renew", m.id)
	}
	if err := s.authenticate(m); err != nil {
		return nil, err
	}
	if err := m.p.VerifyPIN(req.PIN); err != nil {
		if IsPINFailure(err) {
			if aerr := s.recordPINFailure(o.Actor(), m.rec.Owner, m.id, req.Reader, "renewal", err); aerr != nil {
				return nil, errors.Join(err, aerr)
			}
		}
		return nil, err
	}
	progress("card", "card "+m.id+" of "+m.rec.Owner, t0)
	db, err := s.CADB()
	if err != nil {
		return nil, err
	}
	ca, err := s.CA(req.Passphrase)
	if err != nil {
		return nil, err
	}
	var refs []inventory.CertRef
	var old []*big.Int
	for _, ref := range m.rec.Certificates {
		step = "renew " + ref.Slot
		t0 := time.Now()
		serial, ok := new(big.Int).SetString(ref.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("station: card %s lists a bad serial %q", m.id, ref.Serial)
		}
		oldRec, err := db.Get(serial)
		if err != nil {
			return nil, err
		}
		oldCert, err := oldRec.Certificate()
		if err != nil {
			return nil, err
		}
		ka, err := pki.KeyAlgorithmOf(oldCert.PublicKey)
		if err != nil {
			return nil, err
		}
		alg, err := cardAlgorithm(ka)
		if err != nil {
			return nil, err
		}
		var slot card.Slot
		if _, err := fmt.Sscanf(ref.Slot, "%x", &slot); err != nil {
			return nil, fmt.Errorf("station: card %s lists a bad slot %q", m.id, ref.Slot)
		}
		pub, err := m.p.GenerateKey(slot, alg, card.KeyPolicy{})
		if err != nil {
			return nil, err
		}
		k, err := m.p.PrivateKey(slot, pub, card.KeyAuth{PIN: req.PIN})
		if err != nil {
			return nil, err
		}
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k.(crypto.Signer))
		if err != nil {
			return nil, err
		}
		cms, err := pki.EnrollOnBehalfOf(csr, o.Certificate, o.Signer(), ca.NetBIOSName()+`\`+m.rec.Owner)
		if err != nil {
			return nil, err
		}
		tc := time.Now()
		is, err := s.Issue(ctx, req.Passphrase, ref.Template, cms, m.rec.Owner, "")
		res.CATime += time.Since(tc)
		if err != nil {
			return nil, err
		}
		issued = append(issued, is)
		if is.PublishErr != nil {
			return nil, fmt.Errorf("issued but not published to the directory: %w", is.PublishErr)
		}
		if err := m.p.SetCertificate(slot, is.Certificate); err != nil {
			return nil, err
		}
		res.Certificates = append(res.Certificates, is.Certificate)
		res.Slots = append(res.Slots, slot)
		refs = append(refs, inventory.CertRef{Slot: ref.Slot, Serial: fmt.Sprintf("%x", is.Record.Serial), Template: ref.Template, NotAfter: is.Certificate.NotAfter})
		old = append(old, serial)
		progress(step, fmt.Sprintf("%s: new %s key, certificate %x", ref.Template, ka, is.Record.Serial), t0)
	}
	step = "record"
	inv, _ := s.Inventory()
	var oldSerials []string
	for _, serial := range old {
		oldSerials = append(oldSerials, fmt.Sprintf("%x", serial))
	}
	detail := "renewed; superseded " + strings.Join(oldSerials, ", ")
	if _, err := inv.Update(m.id, func(c *inventory.Card) error {
		c.Certificates = refs
		c.History = append(c.History, inventory.Event{Time: s.Now(), Actor: o.Actor(), Action: "card.renew", From: c.State, To: c.State, Detail: detail})
		return nil
	}); err != nil {
		return nil, err
	}
	issued = nil // recorded on the card and in the inventory: kept from here on
	for _, serial := range old {
		if _, err := s.revoke(serial, pki.ReasonSuperseded, false); err != nil && !errors.Is(err, pki.ErrAlreadyRevoked) {
			return nil, err
		}
	}
	base.Outcome, base.Detail = audit.OK, detail
	var newSerials []string
	for _, r := range refs {
		newSerials = append(newSerials, r.Serial)
	}
	base.Cert = strings.Join(newSerials, ",")
	if err := s.Record(base); err != nil {
		return nil, err
	}
	res.Total = time.Since(start)
	return res, nil
}

// ReplaceCard replaces a lost or broken card: the lost card's certificates
// are revoked with reason (its record revoked, then terminated), and a new
// card is enrolled for the same owner with req (by default the templates
// the lost card had).
func (s *Station) ReplaceCard(ctx context.Context, lostID string, reason pki.RevocationReason, req EnrollRequest) (res *EnrollResult, err error) {
	o, err := s.Officer()
	if err != nil {
		if req.Card != nil {
			req.Card.Close()
		}
		return nil, err
	}
	base := audit.Record{Actor: o.Actor(), Action: "card.replace", Card: lostID}
	defer func() {
		if err != nil {
			base.Outcome, base.Detail = outcome(err), err.Error()
			err = errors.Join(err, s.recordOrNil(base))
		}
	}()
	inv, err := s.Inventory()
	if err != nil {
		return nil, err
	}
	lost, err := inv.Get(lostID)
	if err != nil {
		closeRef(CardRef{Card: req.Card})
		return nil, err
	}
	base.User = lost.Owner
	if err := requireState(lost, "only an active, suspended or revoked card is replaced", inventory.Active, inventory.Suspended, inventory.Revoked); err != nil {
		closeRef(CardRef{Card: req.Card})
		return nil, err
	}
	if req.User == "" {
		req.User = lost.Owner
	}
	if req.User != lost.Owner {
		closeRef(CardRef{Card: req.Card})
		return nil, fmt.Errorf("station: card %s belongs to %s, not %s", lostID, lost.Owner, req.User)
	}
	if len(req.Templates) == 0 {
		for _, c := range lost.Certificates {
			req.Templates = append(req.Templates, c.Template)
		}
	}
	if lost.State != inventory.Revoked {
		if _, err := s.RevokeCard(ctx, lostID, reason); err != nil {
			closeRef(CardRef{Card: req.Card})
			return nil, err
		}
	}
	if _, err := inv.Transition(lostID, inventory.Terminated, o.Actor(), "card.replace", "replaced"); err != nil {
		closeRef(CardRef{Card: req.Card})
		return nil, err
	}
	res, err = s.Enroll(ctx, req)
	if err != nil {
		return nil, err
	}
	base.Outcome, base.Detail = audit.OK, fmt.Sprintf("card %s (%s) replaced by %s", lostID, reason, res.CardID)
	if err := s.Record(base); err != nil {
		return nil, err
	}
	return res, nil
}

// outcome is Outcome, plus the refusals of card actions: a wrong PIN or
// PUK, the PIN policy, a card in the wrong state or not this station's, an
// officer not accepted.
func outcome(err error) string {
	var (
		ae  *card.AuthError
		cse *CardStateError
		nme *NotManagedError
		age *AgentError
	)
	switch {
	case errors.As(err, &ae), errors.As(err, &cse), errors.As(err, &nme), errors.As(err, &age),
		errors.Is(err, card.ErrWeakPIN), errors.Is(err, card.ErrBlocked), errors.Is(err, ErrNotSignedIn),
		errors.Is(err, card.ErrWrongManagementKey):
		return audit.Refused
	}
	return Outcome(err)
}
