package kdc

import "fmt"

// Kerberos error codes (RFC 4120 §7.5.9, RFC 4556 §3.1.3, RFC 6113),
// including those gokrb5 v8 lacks.
const (
	ErrCPrincipalUnknown         int32 = 6  // KDC_ERR_C_PRINCIPAL_UNKNOWN
	ErrSPrincipalUnknown         int32 = 7  // KDC_ERR_S_PRINCIPAL_UNKNOWN
	ErrPrincipalNotUnique        int32 = 8  // KDC_ERR_PRINCIPAL_NOT_UNIQUE
	ErrPolicy                    int32 = 12 // KDC_ERR_POLICY
	ErrBadOption                 int32 = 13 // KDC_ERR_BADOPTION
	ErrETypeNoSupp               int32 = 14 // KDC_ERR_ETYPE_NOSUPP
	ErrSumTypeNoSupp             int32 = 15 // KDC_ERR_SUMTYPE_NOSUPP
	ErrPADataTypeNoSupp          int32 = 16 // KDC_ERR_PADATA_TYPE_NOSUPP
	ErrClientRevoked             int32 = 18 // KDC_ERR_CLIENT_REVOKED
	ErrPreauthFailed             int32 = 24 // KDC_ERR_PREAUTH_FAILED
	ErrPreauthRequired           int32 = 25 // KDC_ERR_PREAUTH_REQUIRED
	ErrServiceUnavailable        int32 = 29 // KDC_ERR_SVC_UNAVAILABLE
	ErrIntegrity                 int32 = 31 // KRB_AP_ERR_BAD_INTEGRITY
	ErrTicketExpired             int32 = 32 // KRB_AP_ERR_TKT_EXPIRED
	ErrTicketNotYetValid         int32 = 33 // KRB_AP_ERR_TKT_NYV
	ErrRepeat                    int32 = 34 // KRB_AP_ERR_REPEAT
	ErrNotUs                     int32 = 35 // KRB_AP_ERR_NOT_US
	ErrBadMatch                  int32 = 36 // KRB_AP_ERR_BADMATCH
	ErrSkew                      int32 = 37 // KRB_AP_ERR_SKEW
	ErrBadVersion                int32 = 39 // KRB_AP_ERR_BADVERSION
	ErrMsgType                   int32 = 40 // KRB_AP_ERR_MSG_TYPE
	ErrModified                  int32 = 41 // KRB_AP_ERR_MODIFIED
	ErrBadKeyVer                 int32 = 44 // KRB_AP_ERR_BADKEYVER
	ErrNoKey                     int32 = 45 // KRB_AP_ERR_NOKEY
	ErrInappChecksum             int32 = 50 // KRB_AP_ERR_INAPP_CKSUM
	ErrResponseTooBig            int32 = 52 // KRB_ERR_RESPONSE_TOO_BIG
	ErrGeneric                   int32 = 60 // KRB_ERR_GENERIC
	ErrFieldTooLong              int32 = 61 // KRB_ERR_FIELD_TOOLONG
	ErrClientNotTrusted          int32 = 62 // KDC_ERR_CLIENT_NOT_TRUSTED
	ErrInvalidSig                int32 = 64 // KDC_ERR_INVALID_SIG
	ErrDHKeyParameters           int32 = 65 // KDC_ERR_DH_KEY_PARAMETERS_NOT_ACCEPTED
	ErrCertificateMismatch       int32 = 66 // KDC_ERR_CERTIFICATE_MISMATCH
	ErrWrongRealm                int32 = 68 // KDC_ERR_WRONG_REALM
	ErrCantVerifyCertificate     int32 = 70 // KDC_ERR_CANT_VERIFY_CERTIFICATE
	ErrInvalidCertificate        int32 = 71 // KDC_ERR_INVALID_CERTIFICATE
	ErrRevokedCertificate        int32 = 72 // KDC_ERR_REVOKED_CERTIFICATE
	ErrRevocationUnknown         int32 = 73 // KDC_ERR_REVOCATION_STATUS_UNKNOWN
	ErrRevocationUnavailable     int32 = 74 // KDC_ERR_REVOCATION_STATUS_UNAVAILABLE
	ErrClientNameMismatch        int32 = 75 // KDC_ERR_CLIENT_NAME_MISMATCH
	ErrInconsistentKeyPurpose    int32 = 77 // KDC_ERR_INCONSISTENT_KEY_PURPOSE
	ErrDigestInCertNotAccepted   int32 = 78 // KDC_ERR_DIGEST_IN_CERT_NOT_ACCEPTED
	ErrPAChecksumMustBeIncluded  int32 = 79 // KDC_ERR_PA_CHECKSUM_MUST_BE_INCLUDED
	ErrDigestInSignedDataRefused int32 = 80 // KDC_ERR_DIGEST_IN_SIGNED_DATA_NOT_ACCEPTED
	ErrPublicKeyEncryptionNoSupp int32 = 81 // KDC_ERR_PUBLIC_KEY_ENCRYPTION_NOT_SUPPORTED
	ErrPreauthExpired            int32 = 90 // KDC_ERR_PREAUTH_EXPIRED (RFC 6113)
	ErrMorePreauthDataRequired   int32 = 91 // KDC_ERR_MORE_PREAUTH_DATA_REQUIRED (RFC 6113)
)

// Key usages (RFC 4120 §7.5.1 and later RFCs) gokrb5 lacks.
const (
	keyUsagePKINITKX  = 44  // RFC 6112 PA-PKINIT-KX
	keyUsageFreshness = 514 // RFC 8070 freshness token (as MIT uses it)
)

// Pre-authentication and typed-data types used here.
const (
	paTypeTGSReq       int32 = 1
	paTypeEncTimestamp int32 = 2
	paTypePKASReq      int32 = 16
	paTypePKASRep      int32 = 17
	paTypeETypeInfo2   int32 = 19
	paTypePACRequest   int32 = 128
	paTypeFXFast       int32 = 136
	paTypeASFreshness  int32 = 150
	tdDHParameters     int32 = 109
)

// Error is a refusal the KDC sends as a KRB-ERROR: an RFC error code, the
// e-text for the client, and optional e-data. Reason is for the server's
// log only and never leaves the KDC.
type Error struct {
	Code   int32
	Text   string // e-text sent to the client
	Reason string // the detailed reason, logged
	EData  []byte
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("kdc: %s (%d)", ErrorName(e.Code), e.Code)
	if e.Text != "" {
		msg += ": " + e.Text
	}
	if e.Reason != "" && e.Reason != e.Text {
		msg += " [" + e.Reason + "]"
	}
	return msg
}

// refuse makes an *Error; the e-text is the reason unless the reason
// contains detail the client should not learn, in which case callers use
// refuseQuiet.
func refuse(code int32, format string, args ...any) *Error {
	r := fmt.Sprintf(format, args...)
	return &Error{Code: code, Text: r, Reason: r}
}

// refuseQuiet logs reason but tells the client only text.
func refuseQuiet(code int32, text string, format string, args ...any) *Error {
	return &Error{Code: code, Text: text, Reason: fmt.Sprintf(format, args...)}
}

var errorNames = map[int32]string{
	6: "KDC_ERR_C_PRINCIPAL_UNKNOWN", 7: "KDC_ERR_S_PRINCIPAL_UNKNOWN", 8: "KDC_ERR_PRINCIPAL_NOT_UNIQUE",
	12: "KDC_ERR_POLICY", 13: "KDC_ERR_BADOPTION", 14: "KDC_ERR_ETYPE_NOSUPP", 15: "KDC_ERR_SUMTYPE_NOSUPP",
	16: "KDC_ERR_PADATA_TYPE_NOSUPP", 18: "KDC_ERR_CLIENT_REVOKED", 24: "KDC_ERR_PREAUTH_FAILED",
	25: "KDC_ERR_PREAUTH_REQUIRED", 29: "KDC_ERR_SVC_UNAVAILABLE", 31: "KRB_AP_ERR_BAD_INTEGRITY",
	32: "KRB_AP_ERR_TKT_EXPIRED", 33: "KRB_AP_ERR_TKT_NYV", 34: "KRB_AP_ERR_REPEAT", 35: "KRB_AP_ERR_NOT_US",
	36: "KRB_AP_ERR_BADMATCH", 37: "KRB_AP_ERR_SKEW", 39: "KRB_AP_ERR_BADVERSION", 40: "KRB_AP_ERR_MSG_TYPE",
	41: "KRB_AP_ERR_MODIFIED", 44: "KRB_AP_ERR_BADKEYVER", 45: "KRB_AP_ERR_NOKEY", 50: "KRB_AP_ERR_INAPP_CKSUM",
	52: "KRB_ERR_RESPONSE_TOO_BIG", 60: "KRB_ERR_GENERIC", 61: "KRB_ERR_FIELD_TOOLONG",
	62: "KDC_ERR_CLIENT_NOT_TRUSTED", 64: "KDC_ERR_INVALID_SIG", 65: "KDC_ERR_DH_KEY_PARAMETERS_NOT_ACCEPTED",
	66: "KDC_ERR_CERTIFICATE_MISMATCH", 68: "KDC_ERR_WRONG_REALM", 70: "KDC_ERR_CANT_VERIFY_CERTIFICATE", 71: "KDC_ERR_INVALID_CERTIFICATE",
	72: "KDC_ERR_REVOKED_CERTIFICATE", 73: "KDC_ERR_REVOCATION_STATUS_UNKNOWN",
	74: "KDC_ERR_REVOCATION_STATUS_UNAVAILABLE", 75: "KDC_ERR_CLIENT_NAME_MISMATCH",
	77: "KDC_ERR_INCONSISTENT_KEY_PURPOSE", 78: "KDC_ERR_DIGEST_IN_CERT_NOT_ACCEPTED",
	79: "KDC_ERR_PA_CHECKSUM_MUST_BE_INCLUDED", 80: "KDC_ERR_DIGEST_IN_SIGNED_DATA_NOT_ACCEPTED",
	81: "KDC_ERR_PUBLIC_KEY_ENCRYPTION_NOT_SUPPORTED", 90: "KDC_ERR_PREAUTH_EXPIRED",
	91: "KDC_ERR_MORE_PREAUTH_DATA_REQUIRED",
}

// ErrorName is the RFC name of a Kerberos error code, including the PKINIT
// codes gokrb5 does not know.
func ErrorName(code int32) string {
	if n, ok := errorNames[code]; ok {
		return n
	}
	return fmt.Sprintf("error %d", code)
}
