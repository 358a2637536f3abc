package directory

import (
	"errors"
	"strconv"

	"github.com/go-ldap/ldap/v3"
)

// ResultCode is an LDAP result code (RFC 4511 §4.1.9).
type ResultCode uint16

// The result codes the directory produces.
const (
	ResultSuccess                      ResultCode = 0
	ResultOperationsError              ResultCode = 1
	ResultProtocolError                ResultCode = 2
	ResultTimeLimitExceeded            ResultCode = 3
	ResultSizeLimitExceeded            ResultCode = 4
	ResultCompareFalse                 ResultCode = 5
	ResultCompareTrue                  ResultCode = 6
	ResultAuthMethodNotSupported       ResultCode = 7
	ResultStrongerAuthRequired         ResultCode = 8
	ResultReferral                     ResultCode = 10
	ResultUnavailableCriticalExtension ResultCode = 12
	ResultConfidentialityRequired      ResultCode = 13
	ResultNoSuchAttribute              ResultCode = 16
	ResultUndefinedAttributeType       ResultCode = 17
	ResultInappropriateMatching        ResultCode = 18
	ResultConstraintViolation          ResultCode = 19
	ResultAttributeOrValueExists       ResultCode = 20
	ResultInvalidAttributeSyntax       ResultCode = 21
	ResultNoSuchObject                 ResultCode = 32
	ResultInvalidDNSyntax              ResultCode = 34
	ResultInappropriateAuthentication  ResultCode = 48
	ResultInvalidCredentials           ResultCode = 49
	ResultInsufficientAccessRights     ResultCode = 50
	ResultBusy                         ResultCode = 51
	ResultUnavailable                  ResultCode = 52
	ResultUnwillingToPerform           ResultCode = 53
	ResultNamingViolation              ResultCode = 64
	ResultObjectClassViolation         ResultCode = 65
	ResultNotAllowedOnNonLeaf          ResultCode = 66
	ResultNotAllowedOnRDN              ResultCode = 67
	ResultEntryAlreadyExists           ResultCode = 68
	ResultObjectClassModsProhibited    ResultCode = 69
	ResultAdminLimitExceeded           ResultCode = 11
	ResultOther                        ResultCode = 80
	ResultCanceled                     ResultCode = 118
)

func (c ResultCode) String() string {
	if s, ok := ldap.LDAPResultCodeMap[uint16(c)]; ok {
		return s
	}
	return "result " + strconv.Itoa(int(c))
}

// Error is a refusal from the directory, carrying the LDAP result code the
// server sends for it. Err, when set, is one of the package's sentinel
// errors so that errors.Is works.
type Error struct {
	Code    ResultCode
	Message string
	// Matched is the deepest existing entry for noSuchObject results.
	Matched string
	Err     error
}

func (e *Error) Error() string { return "directory: " + e.Message }

func (e *Error) Unwrap() error { return e.Err }

// Sentinel errors of the typed API.
var (
	ErrNoSuchUser      = errors.New("directory: no such user")
	ErrUserExists      = errors.New("directory: user already exists")
	ErrUPNInUse        = errors.New("directory: userPrincipalName already in use")
	ErrNoSuchGroup     = errors.New("directory: no such group")
	ErrGroupExists     = errors.New("directory: group already exists")
	ErrNoSuchObject    = errors.New("directory: no such entry")
	ErrEntryExists     = errors.New("directory: entry already exists")
	ErrInvalidPassword = errors.New("directory: invalid credentials")
	ErrPasswordPolicy  = errors.New("directory: the password does not meet the policy")
	ErrInUse           = errors.New("directory: the directory database is in use by another process")
)

// CodeOf returns the LDAP result code an error stands for: the code of an
// *Error or a go-ldap *ldap.Error, otherwise operationsError.
func CodeOf(err error) ResultCode {
	if err == nil {
		return ResultSuccess
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		return ResultCode(le.ResultCode)
	}
	var re *ReferralError
	if errors.As(err, &re) {
		return ResultReferral
	}
	return ResultOperationsError
}

func errorf(code ResultCode, sentinel error, msg string) *Error {
	return &Error{Code: code, Message: msg, Err: sentinel}
}
