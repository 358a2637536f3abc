package station

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/pki/smime"
)

// MailTestReport is what the mail self-test did: its steps with their
// timings, and the messages it made.
type MailTestReport struct {
	Steps []LogonStep
	// Signed is the signed test message (multipart/signed, as sent);
	// Encrypted is that message encrypted to the card's certificate.
	Signed, Encrypted []byte
	Total             time.Duration
}

// MailTestError is a failed mail self-test: the step it failed in and the
// reason in plain words; Refused says the card or the station's policy
// said no (a wrong PIN, a revoked certificate) rather than the
// environment failing.
type MailTestError struct {
	Step    string
	Reason  string
	Refused bool
	Err     error
}

func (e *MailTestError) Error() string { return e.Step + ": " + e.Reason }
func (e *MailTestError) Unwrap() error { return e.Err }

// MailTestSubject is the subject of the mail self-test's message.
const MailTestSubject = "scstation mail test"

// MailTest proves that a card works for S/MIME mail, the way a card holder
// would use it: the PIN is verified on the card; the signing certificate
// (slot 9C, else 9A) and the encryption certificate (9D, else 9A) are read
// from the card and checked with the station's mail policy (MailTrust:
// chain, validity, key usage, not revoked); a short message from the
// card's address to itself is signed on the card, encrypted to the card's
// encryption certificate, decrypted on the card and verified as a
// recipient would. Each step is reported to step (may be nil) as it ends.
// The card in ref is closed. A PIN the card refuses is audited
// (pin.failed). Errors are *MailTestError.
func (s *Station) MailTest(ctx context.Context, ref CardRef, pin string, step func(LogonStep)) (*MailTestReport, error) {
	m := &mailTest{s: s, report: &MailTestReport{}, start: time.Now(), stepFn: step}
	err := m.run(ctx, ref, pin)
	m.report.Total = time.Since(m.start)
	return m.report, err
}

type mailTest struct {
	s      *Station
	report *MailTestReport
	start  time.Time
	last   time.Time
	stepFn func(LogonStep)
}

func (m *mailTest) step(name, detail string) {
	now := time.Now()
	if m.last.IsZero() {
		m.last = m.start
	}
	st := LogonStep{Name: name, Detail: detail, Took: now.Sub(m.last)}
	m.last = now
	m.report.Steps = append(m.report.Steps, st)
	if m.stepFn != nil {
		m.stepFn(st)
	}
}

func mailEnvErr(step string, err error) *MailTestError {
	return &MailTestError{Step: step, Reason: err.Error(), Err: err}
}

// mailCardErr explains a card error in a step, as cardErr does for logon.
func mailCardErr(step string, err error) *MailTestError {
	le := cardErr(step, err)
	return &MailTestError{Step: step, Reason: le.Reason, Refused: le.Refused, Err: err}
}

func (m *mailTest) run(ctx context.Context, ref CardRef, pin string) error {
	c := ref.Card
	if c == nil {
		pc, err := card.EstablishContext()
		if err != nil {
			return mailEnvErr("PC/SC", err)
		}
		defer pc.Release()
		if c, err = pc.Connect(ref.Reader); err != nil {
			return mailEnvErr("card in "+ref.Reader, err)
		}
	}
	p, err := card.OpenPIV(c)
	if err != nil {
		c.Close()
		return mailEnvErr("PIV application", err)
	}
	defer p.Close()
	if pin == "" {
		return mailEnvErr("PIN", errors.New("no PIN given"))
	}
	mt, err := m.s.MailTrust()
	if err != nil {
		return mailEnvErr("the station's mail policy", err)
	}

	if err := p.VerifyPIN(pin); err != nil {
		e := mailCardErr("PIN", err)
		if aerr := m.s.PINFailed(p, ref.Reader, "mail test", err); aerr != nil {
			e.Reason += " (and the failed attempt could not be audited: " + aerr.Error() + ")"
		}
		return e
	}
	m.step("PIN verified on the card", "")

	sigCert, sigSlot, err := m.certificate(p, mt, MailSigning, card.SlotSignature, card.SlotAuthentication)
	if err != nil {
		return err
	}
	m.step("signing certificate checked", certDetail(sigCert, sigSlot))
	encCert, encSlot, err := m.certificate(p, mt, MailEncryption, card.SlotKeyManagement, card.SlotAuthentication)
	if err != nil {
		return err
	}
	m.step("encryption certificate checked", certDetail(encCert, encSlot))

	from := sigCert.EmailAddresses[0]
	msg := []byte("From: " + from + "\r\nTo: " + from + "\r\nSubject: " + MailTestSubject +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + mailTestBody)
	k, err := p.PrivateKey(sigSlot, sigCert.PublicKey, card.KeyAuth{PIN: pin})
	if err != nil {
		return mailCardErr("signing key", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return mailEnvErr("signing key", fmt.Errorf("the key in slot %v cannot sign", sigSlot))
	}
	signed, err := smime.Sign(msg, signer, sigCert, nil, nil)
	if err != nil {
		return mailCardErr("signing on the card", err)
	}
	m.report.Signed = signed
	m.step("message signed on the card", fmt.Sprintf("%d bytes", len(signed)))

	enc, err := smime.Encrypt(signed, []*x509.Certificate{encCert}, nil)
	if err != nil {
		return mailEnvErr("encrypting", err)
	}
	m.report.Encrypted = enc
	m.step("message encrypted", fmt.Sprintf("to slot %v, %d bytes", encSlot, len(enc)))

	dk, err := p.PrivateKey(encSlot, encCert.PublicKey, card.KeyAuth{PIN: pin})
	if err != nil {
		return mailCardErr("decryption key", err)
	}
	plain, err := smime.Decrypt(enc, dk, encCert)
	if err != nil {
		return mailCardErr("decrypting on the card", err)
	}
	// The signature, checked next, proves the text came through intact.
	if !smime.IsSigned(plain) {
		return &MailTestError{Step: "decrypting on the card", Reason: "the decrypted message is not the signed one that was sent", Refused: true}
	}
	m.step("message decrypted on the card", fmt.Sprintf("%d bytes", len(plain)))

	v, err := smime.Verify(plain, mt.VerifyOptions(ctx))
	if err != nil {
		reason := err.Error()
		var ve *smime.VerifyError
		if errors.As(err, &ve) {
			reason = verifyReason(ve.Verification)
		}
		return &MailTestError{Step: "signature verified", Reason: reason, Refused: smime.IsInvalid(err), Err: err}
	}
	if !bytes.Contains(v.Content, []byte(mailTestBody)) {
		return &MailTestError{Step: "signature verified", Reason: "the verified message does not hold the text that was signed", Refused: true}
	}
	m.step("signature verified", fmt.Sprintf("by %s, not revoked", v.Signer.Subject.CommonName))
	return nil
}

const mailTestBody = "This message was signed and encrypted by the card, to itself, and read back.\r\n"

// certificate reads the first certificate in slots and checks it for
// purpose with the station's policy.
func (m *mailTest) certificate(p *card.PIV, mt *MailTrust, purpose MailPurpose, slots ...card.Slot) (*x509.Certificate, card.Slot, error) {
	what, template := "signing", "smime-signing"
	if purpose == MailEncryption {
		what, template = "encryption", "smime-encryption"
	}
	step := what + " certificate"
	var found []string
	for _, slot := range slots {
		cert, err := p.Certificate(slot)
		if errors.Is(err, card.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, slot, mailCardErr(step, err)
		}
		if !forMail(cert) {
			continue // a logon certificate in 9A: not a mail certificate at all
		}
		if len(cert.EmailAddresses) == 0 {
			found = append(found, fmt.Sprintf("slot %v: the certificate has no mail address", slot))
			continue
		}
		revoked, when, err := mt.Revocation(cert)
		if err == nil && revoked {
			return nil, slot, &MailTestError{Step: step, Refused: true,
				Reason: fmt.Sprintf("certificate revoked on %s (slot %v)", when.UTC().Format(time.DateOnly), slot), Err: fmt.Errorf("serial %x revoked", cert.SerialNumber)}
		}
		if err := mt.Check(cert, purpose); err != nil {
			found = append(found, fmt.Sprintf("slot %v: %v", slot, err))
			continue
		}
		return cert, slot, nil
	}
	if len(found) == 0 {
		return nil, 0, &MailTestError{Step: step, Refused: true,
			Reason: fmt.Sprintf("no %s certificate on the card (enroll the %s template)", what, template)}
	}
	return nil, 0, &MailTestError{Step: step, Refused: true, Reason: fmt.Sprintf("no usable %s certificate on the card: %s", what, strings.Join(found, "; "))}
}

// forMail says cert is meant for mail (the emailProtection EKU).
func forMail(cert *x509.Certificate) bool {
	return slices.ContainsFunc(cert.ExtKeyUsage, func(u x509.ExtKeyUsage) bool {
		return u == x509.ExtKeyUsageEmailProtection || u == x509.ExtKeyUsageAny
	})
}

func certDetail(c *x509.Certificate, slot card.Slot) string {
	return fmt.Sprintf("slot %v: %s", slot, c.EmailAddresses[0])
}

// verifyReason says in plain words which check of a signed message failed.
func verifyReason(v *smime.Verification) string {
	switch {
	case !v.SignatureValid:
		return "the signature does not check out: " + errOr(v.SignatureError)
	case !v.ChainValid:
		return "the signing certificate is not trusted: " + errOr(v.ChainError)
	case !v.AddressMatches:
		return "the sender's address is not the certificate's: " + errOr(v.AddressError)
	case !v.NotRevoked && !v.RevokedAt.IsZero():
		return "certificate revoked on " + v.RevokedAt.UTC().Format(time.DateOnly)
	case !v.NotRevoked:
		return "the certificate's revocation status: " + errOr(v.RevocationError)
	}
	return "the signed message is not valid"
}

func errOr(err error) string {
	if err == nil {
		return "failed"
	}
	return err.Error()
}
