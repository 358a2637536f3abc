package smime

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotForRecipient means the message has no recipient entry for the
// given certificate: it was encrypted for someone else.
var ErrNotForRecipient = errors.New("smime: the message is not encrypted for this certificate")

// ErrDecrypt means the content could not be decrypted with the recipient's
// key: a wrong key, a tampered message or a crafted one. On purpose it does
// not say which (no padding oracle).
var ErrDecrypt = errors.New("smime: cannot decrypt the message (wrong key or tampered content)")

// A FormatError reports a malformed message: bad MIME, bad base64 or bad
// CMS.
type FormatError struct {
	What string // the part that is malformed, e.g. "CMS SignedData"
	Err  error
}

func (e *FormatError) Error() string {
	if e.Err == nil {
		return "smime: malformed " + e.What
	}
	return "smime: malformed " + e.What + ": " + e.Err.Error()
}

func (e *FormatError) Unwrap() error { return e.Err }

func malformed(what string, format string, args ...any) error {
	return &FormatError{What: what, Err: fmt.Errorf(format, args...)}
}

// A VerifyError says which checks a signed message failed; Verification
// holds the details of every check.
type VerifyError struct {
	Verification *Verification
}

func (e *VerifyError) Error() string {
	v := e.Verification
	var why []string
	if !v.SignatureValid {
		why = append(why, "signature: "+errText(v.SignatureError))
	}
	if !v.ChainValid {
		why = append(why, "signer certificate: "+errText(v.ChainError))
	}
	if !v.AddressMatches {
		why = append(why, "signer address: "+errText(v.AddressError))
	}
	if v.RevocationChecked && !v.NotRevoked {
		why = append(why, "revocation: "+errText(v.RevocationError))
	}
	return "smime: signature not valid: " + strings.Join(why, "; ")
}

func errText(err error) string {
	if err == nil {
		return "failed"
	}
	return err.Error()
}

// IsInvalid reports whether err says the message itself is bad (malformed,
// tampered, not for this recipient, or not validly signed), as opposed to
// an error of the environment.
func IsInvalid(err error) bool {
	var fe *FormatError
	var ve *VerifyError
	return errors.As(err, &fe) || errors.As(err, &ve) || errors.Is(err, ErrNotForRecipient) || errors.Is(err, ErrDecrypt)
}
