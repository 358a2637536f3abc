package kdc

import (
	"context"
	"errors"
	"fmt"

	gasn1 "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Probe sends an AS-REQ without pre-authentication, as the first half of
// PKINIT does, and returns the freshness token from the KDC's
// PREAUTH_REQUIRED (nil when it sends none). It fails when the KDC does
// not offer PKINIT; a KRB-ERROR other than PREAUTH_REQUIRED is returned as
// a *RemoteError. PKINIT is Probe, NewPKINITRequest, Exchange and
// ReadASReply in one call.
func (c *Client) Probe(ctx context.Context, user string, enterprise bool) ([]byte, error) {
	probe, err := c.NewASRequest(user, enterprise)
	if err != nil {
		return nil, err
	}
	reply, err := c.Exchange(ctx, probe)
	if err != nil {
		return nil, err
	}
	ke := asKRBError(reply)
	if ke == nil {
		return nil, errors.New("kdc: the KDC answered an AS-REQ without pre-authentication")
	}
	if ke.Code != ErrPreauthRequired {
		return nil, ke
	}
	var md types.PADataSequence
	if _, err := gasn1.Unmarshal(ke.EData, &md); err != nil {
		return nil, fmt.Errorf("kdc: PREAUTH_REQUIRED with undecodable METHOD-DATA: %w", err)
	}
	if !md.Contains(paTypePKASReq) {
		return nil, errors.New("kdc: the KDC does not offer PKINIT")
	}
	var fresh []byte
	for _, pa := range md {
		if pa.PADataType == paTypeASFreshness && len(pa.PADataValue) > 0 {
			fresh = pa.PADataValue
		}
	}
	return fresh, nil
}

// refusalWords are plain-language reasons for the KDC's refusals of a
// logon, for people at a station rather than for protocol logs.
var refusalWords = map[int32]string{
	ErrCPrincipalUnknown:         "the KDC does not know this user",
	ErrSPrincipalUnknown:         "the KDC does not know this service",
	ErrPolicy:                    "the KDC's policy refuses this logon",
	ErrETypeNoSupp:               "the KDC and this client share no encryption type",
	ErrPADataTypeNoSupp:          "the KDC does not accept this kind of logon",
	ErrClientRevoked:             "the account is disabled or locked",
	ErrPreauthFailed:             "pre-authentication failed",
	ErrSkew:                      "the clocks of this computer and the KDC differ too much",
	ErrRepeat:                    "the KDC saw this request before (a replay)",
	ErrModified:                  "the request was modified on the way",
	ErrClientNotTrusted:          "the KDC does not trust the certificate's issuer",
	ErrInvalidSig:                "the signature on the request does not verify",
	ErrDHKeyParameters:           "the KDC does not accept the Diffie-Hellman group",
	ErrCertificateMismatch:       "the certificate does not match the key that signed",
	ErrWrongRealm:                "the user is in another realm",
	ErrCantVerifyCertificate:     "the KDC cannot verify the certificate (unknown or untrusted issuer)",
	ErrInvalidCertificate:        "the certificate is not valid (expired, not yet valid, or malformed)",
	ErrRevokedCertificate:        "certificate revoked",
	ErrRevocationUnknown:         "the KDC cannot tell whether the certificate is revoked",
	ErrRevocationUnavailable:     "the KDC cannot check revocation right now",
	ErrClientNameMismatch:        "the certificate does not name this user",
	ErrInconsistentKeyPurpose:    "the certificate is not for smart-card logon (wrong extended key usage)",
	ErrDigestInCertNotAccepted:   "the KDC does not accept the certificate's signature algorithm",
	ErrPAChecksumMustBeIncluded:  "the request lacks its checksum",
	ErrDigestInSignedDataRefused: "the KDC does not accept the request's signature algorithm",
	ErrPublicKeyEncryptionNoSupp: "the KDC does not support public-key (RSA) mode",
	ErrPreauthExpired:            "the KDC's freshness token expired; try again",
}

// Explain says in plain words why a logon failed: the reason behind a
// KRB-ERROR code, or the error itself.
func Explain(err error) string {
	if err == nil {
		return ""
	}
	var re *RemoteError
	if errors.As(err, &re) {
		w, ok := refusalWords[re.Code]
		if !ok {
			w = "the KDC refused"
		}
		s := fmt.Sprintf("%s (%s, %d)", w, ErrorName(re.Code), re.Code)
		if re.Text != "" {
			s += ": " + re.Text
		}
		return s
	}
	return err.Error()
}

// Refused reports whether err is the KDC saying no (a KRB-ERROR), rather
// than a failure to reach it or to build the request.
func Refused(err error) bool {
	var re *RemoteError
	return errors.As(err, &re)
}
