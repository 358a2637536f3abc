package station

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

// EnrollRequest asks for one card to be enrolled for a user.
type EnrollRequest struct {
	// User is the directory login name of the card holder.
	User string
	// Templates name the certificates to put on the card, each in its
	// own slot: logon templates in 9A, S/MIME signing in 9C, S/MIME
	// encryption in 9D.
	Templates []string
	// Reader is the PC/SC reader with the user's card; Card, when set,
	// is a card already connected (e.g. an in-process virtual card) and
	// Reader only names it. The station closes Card when done.
	Reader string
	Card   card.Card
	// PIN is the PIN the user chose (checked with CheckPIN); with
	// RandomPIN the station makes one and returns it once, in the result.
	PIN       string
	RandomPIN bool
	// KeyAlgorithm of the card keys (default P-256).
	KeyAlgorithm pki.KeyAlgorithm
	// Passphrase unlocks the CA key when it is encrypted.
	Passphrase PassphraseFunc
	// Progress, when set, is told each step as it finishes.
	Progress func(Step)
}

// Step is one finished step of an enrollment and how long it took. Card
// and CA say how much of it the card and the CA spent; the rest is the
// station's own work.
type Step struct {
	Name   string
	Detail string
	Took   time.Duration
}

// EnrollResult is an enrolled card.
type EnrollResult struct {
	CardID string
	Serial uint32
	GUID   string
	Owner  string
	// Certificates by slot, in the order of the request's templates.
	Certificates []*x509.Certificate
	Slots        []card.Slot
	// PIN is the random initial PIN when the request asked for one: show
	// it to the card holder once and forget it. Empty otherwise.
	PIN   string
	Steps []Step
	Total time.Duration
	// CardTime and CATime are the parts of Total spent in the cards (the
	// user's, through its reader, and the officer's signing the requests)
	// and in the CA (checks, signing, recording, publication); the rest is
	// the station's own work (inventory, audit, PIN and key derivation).
	CardTime, CATime time.Duration
}

// EnrollError is a failed enrollment: the step it failed in, the cause,
// and what was undone.
type EnrollError struct {
	Step string
	Err  error
	// Revoked lists the serials (hex) of certificates issued during the
	// attempt and revoked again (cessationOfOperation).
	Revoked []string
	// CardID is the inventory ID of the card, when known. Its record,
	// if any, is left uninitialized: enrolling the card again starts over.
	CardID string
}

func (e *EnrollError) Error() string {
	msg := fmt.Sprintf("station: enrollment failed at %s: %v", e.Step, e.Err)
	if len(e.Revoked) > 0 {
		msg += fmt.Sprintf(" (revoked again: %s)", strings.Join(e.Revoked, ", "))
	}
	return msg
}

func (e *EnrollError) Unwrap() error { return e.Err }

// CardState says in plain words what the failed enrollment left on the
// card, from the step it stopped at (the steps before it were done).
func (e *EnrollError) CardState() string {
	switch e.Step {
	case "check", "card":
		return "the card was not changed"
	case "management key", "record":
		return "the card was not enrolled: at most its identifiers (CHUID, CCC) were written; enroll it again"
	case "write":
		return "the card is recorded as uninitialized; it has this station's management key, a new PUK and PIN and new keys, and any certificate written to it was revoked again: enroll it again (it starts over) or reset it"
	case "activate":
		return "the card is recorded as uninitialized; it has this station's management key, a new PUK and PIN, and certificates that were revoked again: enroll it again (it starts over) or reset it"
	}
	return "the card is recorded as uninitialized; it may have this station's management key, a new PUK and PIN and new keys, but no certificate: enroll it again (it starts over) or reset it"
}

// CardStateError is a card the inventory has in a state that does not
// allow the action (e.g. enrolling a card that is active).
type CardStateError struct {
	ID    string
	State inventory.State
	Owner string
	Want  string
}

func (e *CardStateError) Error() string {
	return fmt.Sprintf("station: card %s is %s (owner %s): %s", e.ID, e.State, e.Owner, e.Want)
}

// slotFor says where a template's key and certificate go on the card.
func slotFor(t *pki.Template) (card.Slot, error) {
	has := func(list []string, v string) bool { return slices.Contains(list, v) }
	switch {
	case has(t.ExtKeyUsage, "smartcardLogon"), has(t.ExtKeyUsage, "pkinitClientAuth"), has(t.ExtKeyUsage, "certificateRequestAgent"):
		return card.SlotAuthentication, nil
	case has(t.ExtKeyUsage, "emailProtection") && has(t.KeyUsage, "digitalSignature"):
		return card.SlotSignature, nil
	case has(t.ExtKeyUsage, "emailProtection"):
		return card.SlotKeyManagement, nil
	}
	return 0, fmt.Errorf("station: template %s is not a card template (no logon, agent or mail key usage)", t.Name)
}

func cardAlgorithm(a pki.KeyAlgorithm) (card.Algorithm, error) {
	switch a {
	case pki.RSA2048:
		return card.AlgRSA2048, nil
	case pki.RSA3072:
		return card.AlgRSA3072, nil
	case pki.RSA4096:
		return card.AlgRSA4096, nil
	case pki.P256:
		return card.AlgECCP256, nil
	case pki.P384:
		return card.AlgECCP384, nil
	}
	return 0, fmt.Errorf("station: key algorithm %q cannot be generated on a card", a)
}

// slotName is the inventory's spelling of a slot ("9a").
func slotName(s card.Slot) string { return fmt.Sprintf("%02x", byte(s)) }

// issueFunc issues a certificate from a template for a PKCS#10 made on the
// card: through the officer's enroll-on-behalf-of request, or, for the
// first officer, as the CA operator. cardTime is the part the officer's
// card spent signing.
type issueFunc func(ctx context.Context, template string, csr []byte) (issued *pki.Issued, cardTime time.Duration, err error)

// Enroll enrolls a card for a user on behalf of the signed-in officer
// (DESIGN.md, "Flows"): the card's management key is replaced by one
// derived from the station master secret, the PUK by a random one kept
// sealed in the inventory, the PIN set; keys are generated on the card, a
// PKCS#10 signed by each card key is wrapped in an enroll-on-behalf-of
// request signed by the officer's agent key, the CA issues and publishes,
// the certificates are written to the card, and the card is recorded active.
//
// On failure at any step, certificates issued during the attempt are
// revoked (cessationOfOperation), the card's inventory record is left
// uninitialized (enrolling the card again starts over), the failure is
// audited, and the error is an *EnrollError.
func (s *Station) Enroll(ctx context.Context, req EnrollRequest) (*EnrollResult, error) {
	o, err := s.Officer()
	if err != nil {
		if req.Card != nil {
			req.Card.Close()
		}
		return nil, err
	}
	issue := func(ctx context.Context, template string, csr []byte) (*pki.Issued, time.Duration, error) {
		ca, err := s.CA(req.Passphrase)
		if err != nil {
			return nil, 0, err
		}
		t0 := time.Now()
		cms, err := pki.EnrollOnBehalfOf(csr, o.Certificate, o.Signer(), ca.NetBIOSName()+`\`+req.User)
		took := time.Since(t0)
		if err != nil {
			if errors.Is(err, card.ErrCardRemoved) {
				s.signOut(o, "the officer card went away")
			}
			return nil, took, fmt.Errorf("the officer card could not sign the request: %w", err)
		}
		issued, err := s.Issue(ctx, req.Passphrase, template, cms, req.User, "")
		return issued, took, err
	}
	return s.runEnrollment(ctx, req, o.Actor(), issue)
}

// enrollment is one enrollment in progress.
type enrollment struct {
	s      *Station
	req    EnrollRequest
	actor  string
	res    *EnrollResult
	p      *card.PIV
	inv    *inventory.Store
	id     string
	rec    bool // the inventory has a record for id
	issued []*pki.Issued
	step   string
	start  time.Time
	// release frees the PC/SC context of a card connected here.
	release func()
	// ctx cancels the enrollment between steps (it is rolled back).
	ctx context.Context
}

func (s *Station) runEnrollment(ctx context.Context, req EnrollRequest, actor string, issue issueFunc) (res *EnrollResult, err error) {
	e := &enrollment{s: s, req: req, actor: actor, res: &EnrollResult{Owner: req.User}, start: time.Now(), ctx: ctx}
	defer func() {
		if e.p != nil {
			e.p.Close()
		} else if req.Card != nil {
			req.Card.Close()
		}
		if e.release != nil {
			e.release()
		}
	}()
	defer func() {
		if err != nil {
			err = e.fail(err)
		}
	}()
	e.step = "check"
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	if err := e.run(ctx, issue); err != nil {
		return nil, err
	}
	e.res.Total = time.Since(e.start)
	return e.res, nil
}

// check refuses a request that cannot succeed before the card is touched.
func (e *enrollment) check(ctx context.Context) error {
	req := &e.req
	if req.User == "" || len(req.Templates) == 0 {
		return errors.New("a user and at least one template are needed")
	}
	if req.RandomPIN {
		pin, err := RandomPIN()
		if err != nil {
			return err
		}
		req.PIN = pin
		e.res.PIN = pin
	} else if err := CheckPIN(req.PIN); err != nil {
		return err
	}
	if req.KeyAlgorithm == "" {
		req.KeyAlgorithm = pki.P256
	}
	if _, err := cardAlgorithm(req.KeyAlgorithm); err != nil {
		return err
	}
	ca, err := e.s.CA(req.Passphrase)
	if err != nil {
		return err
	}
	for _, name := range req.Templates {
		t, err := ca.Template(name)
		if err != nil {
			return err
		}
		slot, err := slotFor(t)
		if err != nil {
			return err
		}
		if slices.Contains(e.res.Slots, slot) {
			return fmt.Errorf("templates %s need the same card slot %v", strings.Join(req.Templates, ", "), slot)
		}
		if !slices.Contains(t.KeyAlgorithms, req.KeyAlgorithm) {
			return fmt.Errorf("template %s does not allow %s keys", name, req.KeyAlgorithm)
		}
		e.res.Slots = append(e.res.Slots, slot)
	}
	d, err := e.s.UserDirectory()
	if err != nil {
		return err
	}
	if _, err := d.LookupUser(ctx, req.User); err != nil {
		return err
	}
	inv, err := e.s.Inventory()
	if err != nil {
		return err
	}
	e.inv = inv
	return ctx.Err()
}

// timed runs one step and reports it.
func (e *enrollment) timed(name string, cardStep bool, f func() (string, error)) error {
	e.step = name
	if err := e.ctx.Err(); err != nil {
		return err
	}
	t0 := time.Now()
	detail, err := f()
	took := time.Since(t0)
	if err != nil {
		return err
	}
	if cardStep {
		e.res.CardTime += took
	}
	st := Step{Name: name, Detail: detail, Took: took}
	e.res.Steps = append(e.res.Steps, st)
	if e.req.Progress != nil {
		e.req.Progress(st)
	}
	return nil
}

func (e *enrollment) run(ctx context.Context, issue issueFunc) error {
	req := &e.req
	var mgmtAlg card.ManagementKeyAlgorithm
	var current *inventory.Card
	var chuid *card.CHUID
	if err := e.timed("card", true, func() (string, error) {
		c := req.Card
		if c == nil {
			pc, err := card.EstablishContext()
			if err != nil {
				return "", err
			}
			// The card handle lives only as long as its context.
			e.release = func() { pc.Release() }
			if c, err = pc.Connect(req.Reader); err != nil {
				return "", err
			}
		}
		p, err := card.OpenPIV(c)
		if err != nil {
			c.Close()
			return "", err
		}
		e.p = p
		if !p.Yubico() {
			return "", fmt.Errorf("%w: the card cannot change its management key (no Yubico extensions), so this station cannot take it over", card.ErrNotSupported)
		}
		e.res.Serial, _ = p.Serial()
		chuid, err = p.CHUID()
		if err != nil && !errors.Is(err, card.ErrNotFound) {
			return "", err
		}
		if mgmtAlg, err = p.ManagementKeyAlgorithm(); err != nil {
			if !errors.Is(err, card.ErrNotSupported) {
				return "", err
			}
			mgmtAlg = card.MgmtTDES
		}
		if chuid != nil {
			e.id = inventory.CardID(chuid.GUID[:], e.res.Serial)
			e.res.GUID = chuid.GUIDString()
			if current, err = e.known(); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("PIV card in %s, serial %d", req.Reader, e.res.Serial), nil
	}); err != nil {
		return err
	}

	// The management key: the station's own for a card it started on,
	// else the factory default.
	if err := e.timed("management key", true, func() (string, error) {
		keys := [][]byte{card.DefaultManagementKey}
		if current != nil && current.MgmtKeyVersion > 0 {
			k, err := e.s.CardManagementKey(e.id, mgmtAlg, current.MgmtKeyVersion)
			if err != nil {
				return "", err
			}
			keys = [][]byte{k, card.DefaultManagementKey}
		}
		var err error
		for _, k := range keys {
			if err = e.p.AuthenticateManagementKey(mgmtAlg, k); !errors.Is(err, card.ErrWrongManagementKey) {
				break
			}
		}
		if errors.Is(err, card.ErrWrongManagementKey) {
			return "", fmt.Errorf("%w: the card's management key is neither the factory default nor this station's; it belongs to another system", err)
		}
		if err != nil {
			return "", err
		}
		if chuid == nil {
			// A card without a CHUID gets one now: its GUID is the
			// card's identity in the inventory.
			if chuid, err = card.NewCHUID(); err != nil {
				return "", err
			}
			if err := e.p.SetCHUID(chuid); err != nil {
				return "", err
			}
			e.id = inventory.CardID(chuid.GUID[:], e.res.Serial)
			e.res.GUID = chuid.GUIDString()
			if current, err = e.known(); err != nil {
				return "", err
			}
		}
		if _, err := e.p.CCC(); errors.Is(err, card.ErrNotFound) {
			ccc, err := card.NewCCC()
			if err != nil {
				return "", err
			}
			if err := e.p.SetCCC(ccc); err != nil {
				return "", err
			}
		} else if err != nil {
			return "", err
		}
		return "authenticated", nil
	}); err != nil {
		return err
	}
	e.res.CardID = e.id

	// The inventory record comes before anything on the card changes, so
	// that a card pulled from here on is found again (uninitialized, with
	// its sealed PUK and key version) and started over.
	var puk string
	if err := e.timed("record", false, func() (string, error) {
		if current == nil {
			p, err := NewPUK()
			if err != nil {
				return "", err
			}
			sealed, err := e.s.SealPUK(e.id, p)
			if err != nil {
				return "", err
			}
			puk = p
			if err := e.inv.Create(&inventory.Card{ID: e.id, Serial: e.res.Serial, GUID: e.res.GUID, Reader: req.Reader,
				Owner: req.User, State: inventory.Uninitialized, SealedPUK: sealed, MgmtKeyVersion: MgmtKeyVersion}); err != nil {
				return "", err
			}
			e.rec = true
			return "new card " + e.id, nil
		}
		e.rec = true
		p, err := e.s.OpenPUK(e.id, current.SealedPUK)
		if err != nil {
			return "", err
		}
		puk = p
		// What an earlier attempt left behind is revoked before starting over.
		var leftovers []string
		for _, c := range current.Certificates {
			if serial, ok := new(big.Int).SetString(c.Serial, 16); ok {
				if rec, err := e.s.revoke(serial, pki.ReasonCessationOfOperation, false); err == nil {
					leftovers = append(leftovers, fmt.Sprintf("%x", rec.Serial))
				} else if !errors.Is(err, pki.ErrAlreadyRevoked) {
					return "", err
				}
			}
		}
		if _, err := e.inv.Update(e.id, func(c *inventory.Card) error {
			c.Owner, c.Reader, c.Certificates = req.User, req.Reader, nil
			c.MgmtKeyVersion = MgmtKeyVersion
			return nil
		}); err != nil {
			return "", err
		}
		d := "starting over with card " + e.id
		if len(leftovers) > 0 {
			d += ", revoked the earlier attempt's " + strings.Join(leftovers, ", ")
			if err := e.s.Record(audit.Record{Actor: e.actor, Action: "cert.revoke", User: current.Owner, Card: e.id, Outcome: audit.OK,
				Detail: "left over from an unfinished enrollment: " + strings.Join(leftovers, ", ")}); err != nil {
				return "", err
			}
		}
		return d, nil
	}); err != nil {
		return err
	}

	if err := e.timed("secure", true, func() (string, error) {
		// The station's management key. AES-192 where the card has AES
		// management keys (YubiKey 5.4 and later), else 3DES.
		target := card.MgmtTDES
		if maj, min, _, ok := e.p.Version(); ok && (maj > 5 || maj == 5 && min >= 4) {
			target = card.MgmtAES192
		}
		k, err := e.s.CardManagementKey(e.id, target, MgmtKeyVersion)
		if err != nil {
			return "", err
		}
		if err := e.p.SetManagementKey(target, k, false); err != nil {
			return "", err
		}
		if err := e.p.AuthenticateManagementKey(target, k); err != nil {
			return "", err
		}
		// The PUK: from the factory one to the station's random one (on a
		// card started before, it may be ours already).
		pukDefault, known := true, false
		if m, err := e.p.Metadata(card.SlotPUK); err == nil {
			pukDefault, known = m.Default, true
		}
		if pukDefault {
			err := e.p.ChangePUK(card.DefaultPUK, puk)
			var ae *card.AuthError
			// Without metadata (YubiKey before 5.3) a card started before
			// may have our PUK already: RESET RETRY COUNTER below tells.
			if err != nil && (known || !errors.As(err, &ae) || ae.Retries == 0) {
				return "", err
			}
		}
		// The PIN is set with the PUK: that works whatever the PIN is now,
		// factory, from an earlier attempt, or blocked.
		if err := e.p.Unblock(puk, req.PIN); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s management key, PUK and PIN set", target), nil
	}); err != nil {
		return err
	}

	alg, _ := cardAlgorithm(req.KeyAlgorithm)
	pubs := make([]crypto.PublicKey, len(e.res.Slots))
	if err := e.timed("keys", true, func() (string, error) {
		for i, slot := range e.res.Slots {
			pub, err := e.p.GenerateKey(slot, alg, card.KeyPolicy{})
			if err != nil {
				return "", fmt.Errorf("generating the %v key: %w", slot, err)
			}
			pubs[i] = pub
		}
		return fmt.Sprintf("%d %s key(s) generated on the card", len(pubs), req.KeyAlgorithm), nil
	}); err != nil {
		return err
	}

	csrs := make([][]byte, len(e.res.Slots))
	if err := e.timed("requests", true, func() (string, error) {
		for i, slot := range e.res.Slots {
			k, err := e.p.PrivateKey(slot, pubs[i], card.KeyAuth{PIN: req.PIN})
			if err != nil {
				return "", err
			}
			signer, ok := k.(crypto.Signer)
			if !ok {
				return "", fmt.Errorf("the %v key cannot sign", slot)
			}
			// The subject comes from the directory, never from the request.
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, signer)
			if err != nil {
				return "", fmt.Errorf("the card could not sign the %v request: %w", slot, err)
			}
			csrs[i] = csr
		}
		return fmt.Sprintf("%d PKCS#10 request(s) signed by the card keys", len(csrs)), nil
	}); err != nil {
		return err
	}

	if err := e.timed("issue", false, func() (string, error) {
		var serials []string
		for i, name := range req.Templates {
			t0 := time.Now()
			issued, cardTime, err := issue(ctx, name, csrs[i])
			e.res.CardTime += cardTime
			e.res.CATime += time.Since(t0) - cardTime
			if err != nil {
				return "", fmt.Errorf("%s: %w", name, err)
			}
			e.issued = append(e.issued, issued)
			ref := inventory.CertRef{Slot: slotName(e.res.Slots[i]), Serial: fmt.Sprintf("%x", issued.Record.Serial), Template: name, NotAfter: issued.Certificate.NotAfter}
			if _, err := e.inv.Update(e.id, func(c *inventory.Card) error {
				c.Certificates = append(c.Certificates, ref)
				return nil
			}); err != nil {
				return "", err
			}
			if issued.PublishErr != nil {
				return "", fmt.Errorf("%s: issued but not published to the directory: %w", name, issued.PublishErr)
			}
			e.res.Certificates = append(e.res.Certificates, issued.Certificate)
			serials = append(serials, ref.Serial)
		}
		return "issued " + strings.Join(serials, ", "), nil
	}); err != nil {
		return err
	}

	if err := e.timed("write", true, func() (string, error) {
		for i, slot := range e.res.Slots {
			if err := e.p.SetCertificate(slot, e.res.Certificates[i]); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("%d certificate(s) written to the card", len(e.res.Slots)), nil
	}); err != nil {
		return err
	}

	return e.timed("activate", false, func() (string, error) {
		detail := fmt.Sprintf("enrolled for %s with %s", req.User, strings.Join(req.Templates, ", "))
		serials := make([]string, len(e.issued))
		for i, is := range e.issued {
			serials[i] = fmt.Sprintf("%x", is.Record.Serial)
		}
		// Audited first: a card is never active without its record in the log.
		if err := e.s.Record(audit.Record{Actor: e.actor, Action: "card.enroll", User: req.User, Card: e.id,
			Cert: strings.Join(serials, ","), Outcome: audit.OK, Detail: detail}); err != nil {
			return "", err
		}
		if _, err := e.inv.Transition(e.id, inventory.Active, e.actor, "card.enroll", detail); err != nil {
			return "", err
		}
		return "card " + e.id + " active", nil
	})
}

// known looks the card up in the inventory: a card it has as uninitialized
// is started over, any other state is refused.
func (e *enrollment) known() (*inventory.Card, error) {
	c, err := e.inv.Get(e.id)
	if errors.Is(err, inventory.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if c.State != inventory.Uninitialized {
		want := "reset it before enrolling it again"
		if c.State == inventory.Active || c.State == inventory.Suspended {
			want = "renew or reset it instead of enrolling it again"
		}
		return nil, &CardStateError{ID: c.ID, State: c.State, Owner: c.Owner, Want: want}
	}
	return c, nil
}

// fail undoes what the attempt did: certificates issued are revoked and
// the inventory record (left uninitialized) loses them; then the failure
// is audited.
func (e *enrollment) fail(cause error) error {
	ee := &EnrollError{Step: e.step, Err: cause, CardID: e.id}
	var errs []error
	for _, is := range e.issued {
		rec, err := e.s.revoke(is.Record.Serial, pki.ReasonCessationOfOperation, false)
		if err != nil && !errors.Is(err, pki.ErrAlreadyRevoked) {
			errs = append(errs, fmt.Errorf("revoking %x: %w", is.Record.Serial, err))
			continue
		}
		if rec != nil {
			ee.Revoked = append(ee.Revoked, fmt.Sprintf("%x", rec.Serial))
		}
	}
	if e.rec {
		if _, err := e.inv.Update(e.id, func(c *inventory.Card) error {
			c.Certificates = slices.DeleteFunc(c.Certificates, func(r inventory.CertRef) bool { return slices.Contains(ee.Revoked, r.Serial) })
			c.History = append(c.History, inventory.Event{Time: e.s.Now(), Actor: e.actor, Action: "card.enroll", From: c.State, To: c.State,
				Detail: "failed at " + e.step})
			return nil
		}); err != nil {
			errs = append(errs, err)
		}
	}
	detail := fmt.Sprintf("failed at %s: %v", e.step, cause)
	if len(ee.Revoked) > 0 {
		detail += "; revoked " + strings.Join(ee.Revoked, ", ")
	}
	if err := e.s.Record(audit.Record{Actor: e.actor, Action: "card.enroll", User: e.req.User, Card: e.id,
		Cert: strings.Join(ee.Revoked, ","), Outcome: outcome(cause), Detail: detail}); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		ee.Err = errors.Join(append([]error{cause}, errs...)...)
	}
	return ee
}

// CardTemplate is a template that can go on a card, and the slot it takes.
type CardTemplate struct {
	Template *pki.Template
	Slot     card.Slot
}

// CardTemplates lists the CA's templates an officer can enroll on a card
// (agent-requestable, with a logon or mail key usage), sorted by name.
func (s *Station) CardTemplates(pass PassphraseFunc) ([]CardTemplate, error) {
	ca, err := s.CA(pass)
	if err != nil {
		return nil, err
	}
	var out []CardTemplate
	for _, t := range ca.Templates() {
		if t.Host || !slices.Contains(t.Requesters, pki.RequesterAgent) {
			continue
		}
		slot, err := slotFor(t)
		if err != nil {
			continue
		}
		out = append(out, CardTemplate{Template: t, Slot: slot})
	}
	return out, nil
}
