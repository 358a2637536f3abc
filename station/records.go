package station

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/user"
	"time"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

// Files of the card inventory and the audit log.
const (
	inventoryFile = "inventory/inventory.db"
	auditFile     = "audit/audit.db"
)

// DefaultActor names whoever runs this process, for the audit log:
// "cli:" and the operating-system user name.
func DefaultActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return "cli:" + n
	}
	return fmt.Sprintf("cli:uid%d", os.Getuid())
}

// actor is who the audit log says acts on this station: the officer
// signed in on it while there is one, so that everything done at the
// station in an officer session (a certificate issued inside an
// enrollment, a suspension, a CRL) names the officer; else processActor.
// The session is this station's own: commands forwarded over the control
// socket run on borrowed stations and keep their own actor.
func (s *Station) actor() string {
	s.enroll.mu.Lock()
	o := s.enroll.officer
	s.enroll.mu.Unlock()
	if o != nil {
		return o.Actor()
	}
	return s.processActor()
}

// processActor is who runs this station when no officer is signed in:
// Actor, or DefaultActor.
func (s *Station) processActor() string {
	if s.Actor == "" {
		return DefaultActor()
	}
	return s.Actor
}

// needOfficer refuses (audited, as ErrNotSignedIn) an action that a
// station with RequireOfficer takes only in an officer session.
func (s *Station) needOfficer(r audit.Record) error {
	if !s.RequireOfficer {
		return nil
	}
	if _, err := s.Officer(); err != nil {
		return s.recordErr(r, err)
	}
	return nil
}

// Inventory opens the card inventory.
func (s *Station) Inventory() (*inventory.Store, error) {
	sh := s.shared
	sh.recordsMu.Lock()
	defer sh.recordsMu.Unlock()
	if sh.inventory == nil {
		if err := os.MkdirAll(s.path("inventory"), 0o700); err != nil {
			return nil, err
		}
		inv, err := inventory.Open(s.path(inventoryFile))
		if err != nil {
			return nil, err
		}
		inv.Now = s.Now
		sh.inventory = inv
	}
	return sh.inventory, nil
}

// Audit opens the audit log.
func (s *Station) Audit() (*audit.Log, error) {
	sh := s.shared
	sh.recordsMu.Lock()
	defer sh.recordsMu.Unlock()
	if sh.audit == nil {
		if err := os.MkdirAll(s.path("audit"), 0o700); err != nil {
			return nil, err
		}
		l, err := audit.Open(s.path(auditFile))
		if err != nil {
			return nil, err
		}
		l.Now = s.Now
		sh.audit = l
	}
	return sh.audit, nil
}

// auditReady checks, before an action, that its record can be written.
func (s *Station) auditReady(action string) error {
	l, err := s.Audit()
	if err == nil {
		err = l.Ready()
	}
	if err != nil {
		return &AuditError{Action: action, Err: err}
	}
	return nil
}

func (s *Station) closeRecords() error {
	sh := s.shared
	sh.recordsMu.Lock()
	defer sh.recordsMu.Unlock()
	var errs []error
	if sh.inventory != nil {
		errs = append(errs, sh.inventory.Close())
	}
	if sh.audit != nil {
		errs = append(errs, sh.audit.Close())
	}
	sh.inventory, sh.audit = nil, nil
	return errors.Join(errs...)
}

// AuditError reports an action whose audit record could not be written.
// The action counts as failed: nothing the station does goes unrecorded.
type AuditError struct {
	Action string
	Err    error
}

func (e *AuditError) Error() string {
	return fmt.Sprintf("station: the audit log could not record %s: %v", e.Action, e.Err)
}

func (e *AuditError) Unwrap() error { return e.Err }

// Record appends r to the audit log, with the station's actor when r names
// none. Fronts use it for what they do themselves (sign-ins, failed PINs).
func (s *Station) Record(r audit.Record) error {
	l, err := s.Audit()
	if err == nil {
		if r.Actor == "" {
			r.Actor = s.actor()
		}
		_, err = l.Append(r)
	}
	if err != nil {
		return &AuditError{Action: r.Action, Err: err}
	}
	return nil
}

// recordErr appends the record of an action that ended with err (nil for
// success) and returns err, or the audit failure when the record could not
// be written.
func (s *Station) recordErr(r audit.Record, err error) error {
	r.Outcome = Outcome(err)
	if err != nil {
		d := err.Error()
		if r.Detail != "" {
			d = r.Detail + ": " + d
		}
		r.Detail = d
	}
	if aerr := s.Record(r); aerr != nil {
		if err != nil {
			return errors.Join(err, aerr)
		}
		return aerr
	}
	return err
}

// Outcome classifies an action's error for the audit log: audit.OK for
// nil, audit.Refused when policy or the state of things said no (a request
// the CA will not sign, an unknown user or certificate, a wrong
// passphrase, an illegal card state change), audit.Failed otherwise.
func Outcome(err error) string {
	var (
		pe *pki.PolicyError
		re *pki.RequestError
		te *inventory.TransitionError
	)
	switch {
	case err == nil:
		return audit.OK
	case errors.As(err, &pe), errors.As(err, &re), errors.As(err, &te),
		errors.Is(err, pki.ErrUnknownTemplate), errors.Is(err, pki.ErrUnknownUser),
		errors.Is(err, pki.ErrAlreadyRevoked), errors.Is(err, pki.ErrNotOnHold),
		errors.Is(err, pki.ErrNotFound), errors.Is(err, ErrPassphrase),
		errors.Is(err, inventory.ErrNotFound), errors.Is(err, ErrBadReason),
		errors.Is(err, ErrCertRevoked), errors.Is(err, ErrNotSignedIn):
		return audit.Refused
	}
	return audit.Failed
}

// issueRecordBy is the audit record of a certificate the station issues for
// itself (its services' and the KDC's), which no one asked for by hand.
func issueRecordBy(actor, template, host string) audit.Record {
	r := issueRecord(template, "", host)
	r.Actor = actor
	return r
}

func hexSerial(n *big.Int) string { return fmt.Sprintf("%x", n) }

// CardResult is what a card lifecycle action did.
type CardResult struct {
	// Card is the inventory record after the change.
	Card *inventory.Card
	// Changed are the certificates whose revocation status changed.
	Changed []*pki.Record
	// CRL is the CRL published after the change; nil when none was
	// needed or none could be signed without asking for the CA key's
	// passphrase (CRLErr says why: the published CRL is then stale until
	// the next scstation ca crl).
	CRL    *x509.RevocationList
	CRLErr error
}

// ErrBadReason is returned by RevokeCard for the reasons that are not a
// permanent revocation (certificateHold, removeFromCRL).
var ErrBadReason = errors.New("station: certificateHold and removeFromCRL are not reasons to revoke a card (suspend or reinstate it instead)")

// ErrCertRevoked is returned by ReinstateCard for a card with a
// certificate that was revoked for good.
var ErrCertRevoked = errors.New("station: the card has a certificate revoked for good; revoke the card or enroll it again")

// SuspendCard puts every valid certificate of a card on hold
// (certificateHold) and marks the card suspended.
func (s *Station) SuspendCard(ctx context.Context, id, detail string) (*CardResult, error) {
	return s.cardAction(ctx, id, inventory.Suspended, "card.suspend", detail, nil, func(db *pki.DB, r *pki.Record) (*pki.Record, string, error) {
		if r.Status != pki.StatusValid {
			return nil, "", nil
		}
		rec, err := s.revokeDB(db, r.Serial, pki.ReasonCertificateHold)
		return rec, "cert.hold", err
	})
}

// ReinstateCard lifts the hold on a suspended card's certificates and marks
// it active again. A card one of whose certificates was revoked for good
// in the meantime is not reinstated (ErrCertRevoked): revoke the card, or
// enroll it again.
func (s *Station) ReinstateCard(ctx context.Context, id, detail string) (*CardResult, error) {
	check := func(certs []*pki.Record) error {
		for _, r := range certs {
			if r.Status == pki.StatusRevoked {
				return fmt.Errorf("%w: %x (%s)", ErrCertRevoked, r.Serial, r.Reason)
			}
		}
		return nil
	}
	return s.cardAction(ctx, id, inventory.Active, "card.reinstate", detail, check, func(db *pki.DB, r *pki.Record) (*pki.Record, string, error) {
		if r.Status != pki.StatusOnHold {
			return nil, "", nil
		}
		rec, err := db.Release(r.Serial)
		return rec, "cert.release", err
	})
}

// RevokeCard revokes every certificate of a card that is not already
// revoked (including those on hold) with reason, and marks the card
// revoked.
func (s *Station) RevokeCard(ctx context.Context, id string, reason pki.RevocationReason) (*CardResult, error) {
	if reason == pki.ReasonCertificateHold || reason == pki.ReasonRemoveFromCRL {
		return nil, s.recordErr(audit.Record{Action: "card.revoke", Card: id, Detail: reason.String()}, ErrBadReason)
	}
	return s.cardAction(ctx, id, inventory.Revoked, "card.revoke", reason.String(), nil, func(db *pki.DB, r *pki.Record) (*pki.Record, string, error) {
		if r.Status == pki.StatusRevoked {
			return nil, "", nil
		}
		rec, err := s.revokeDB(db, r.Serial, reason)
		return rec, "cert.revoke", err
	})
}

func (s *Station) revokeDB(db *pki.DB, serial *big.Int, reason pki.RevocationReason) (*pki.Record, error) {
	rec, err := db.Revoke(serial, reason, s.Now().UTC().Truncate(time.Second))
	s.revokedForGood(db, serial, rec, err) // withdraw.go
	return rec, err
}

// certOp changes one certificate's status; it returns a nil record when
// the certificate needs no change, and the audit action of the change.
type certOp func(db *pki.DB, r *pki.Record) (*pki.Record, string, error)

// cardAction is the common shape of the lifecycle actions that need no
// card: check the transition, change the certificates (each change
// audited), change the card's state (audited), and publish a CRL when it
// can. An illegal transition is refused before anything changes. If a
// certificate change fails part-way, the card keeps its state and the
// action can be run again: certificates already changed are skipped.
func (s *Station) cardAction(ctx context.Context, id string, to inventory.State, action, detail string, check func([]*pki.Record) error, op certOp) (*CardResult, error) {
	base := audit.Record{Action: action, Card: id, Detail: detail}
	// The audit log must be usable before anything changes.
	if err := s.auditReady(action); err != nil {
		return nil, err
	}
	if err := s.needOfficer(base); err != nil {
		return nil, err
	}
	inv, err := s.Inventory()
	if err != nil {
		return nil, s.recordErr(base, err)
	}
	c, err := inv.Get(id)
	if err != nil {
		return nil, s.recordErr(base, err)
	}
	base.User = c.Owner
	if !inventory.CanTransition(c.State, to) {
		return nil, s.recordErr(base, &inventory.TransitionError{ID: id, From: c.State, To: to})
	}
	db, err := s.CADB()
	if err != nil {
		return nil, s.recordErr(base, err)
	}
	// Every certificate is looked up (and the action's own check made)
	// before any is changed.
	var certs []*pki.Record
	for _, ref := range c.Certificates {
		serial, ok := new(big.Int).SetString(ref.Serial, 16)
		if !ok || serial.Sign() <= 0 {
			return nil, s.recordErr(base, fmt.Errorf("station: card %s lists a bad certificate serial %q", id, ref.Serial))
		}
		r, err := db.Get(serial)
		if err != nil {
			return nil, s.recordErr(base, fmt.Errorf("certificate %s in slot %s: %w", ref.Serial, ref.Slot, err))
		}
		certs = append(certs, r)
	}
	if check != nil {
		if err := check(certs); err != nil {
			return nil, s.recordErr(base, err)
		}
	}
	res := &CardResult{}
	for _, r := range certs {
		if err := ctx.Err(); err != nil {
			return nil, s.recordErr(base, err)
		}
		rec, certAction, err := op(db, r)
		if rec == nil && err == nil {
			continue
		}
		cr := audit.Record{Action: certAction, User: r.User, Card: id, Cert: hexSerial(r.Serial), Detail: detail}
		if err := s.recordErr(cr, err); err != nil {
			return nil, err
		}
		s.Log.Info(certAction, "serial", hexSerial(r.Serial), "card", id)
		res.Changed = append(res.Changed, rec)
	}
	from := c.State
	res.Card, err = inv.Transition(id, to, s.actor(), action, detail)
	sr := base
	sr.Action, sr.Detail = "card.state", fmt.Sprintf("%s -> %s (%s)", from, to, action)
	if detail != "" {
		sr.Detail += ": " + detail
	}
	if err := s.recordErr(sr, err); err != nil {
		return nil, err
	}
	s.Log.Info("card state changed", "card", id, "from", from, "to", to)
	if len(res.Changed) > 0 {
		res.CRL, res.CRLErr = s.publishCRLNoPrompt()
	}
	return res, nil
}

// publishCRLNoPrompt publishes a CRL if the CA key can be had without
// asking anyone: already unlocked, unencrypted, or through
// CRLPassphrase.
func (s *Station) publishCRLNoPrompt() (*x509.RevocationList, error) {
	s.mu.Lock()
	unlocked := s.ca != nil || s.caKey != nil
	s.mu.Unlock()
	if !unlocked && s.Config.CA.KeyEncrypted && s.CRLPassphrase == nil {
		return nil, errors.New("the CA key is encrypted: run scstation ca crl to publish a fresh CRL")
	}
	crl, err := s.PublishCRL(s.CRLPassphrase)
	if err != nil {
		return nil, fmt.Errorf("the CRL was not published (%v): run scstation ca crl", err)
	}
	return crl, nil
}

// describeCRL is the audit detail of a published CRL.
func describeCRL(crl *x509.RevocationList) string {
	return fmt.Sprintf("CRL #%s, %d entries, next update %s", crl.Number, len(crl.RevokedCertificateEntries), crl.NextUpdate.UTC().Format("2006-01-02T15:04:05Z"))
}
