package kdc

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
)

// Enctypes the KDC issues keys and tickets in, preferred first.
var supportedETypes = []int32{
	etypeID.AES256_CTS_HMAC_SHA1_96,    // 18
	etypeID.AES128_CTS_HMAC_SHA1_96,    // 17
	etypeID.AES256_CTS_HMAC_SHA384_192, // 20
}

func etypeSupported(e int32) bool {
	for _, s := range supportedETypes {
		if s == e {
			return true
		}
	}
	return false
}

// MappingMode is how strictly a certificate must be mapped to its account,
// as the Windows KDC enforces "strong certificate mapping" (KB5014754).
type MappingMode int

const (
	// MappingCompat accepts a certificate without the SID extension when its
	// UPN or principal name matches the account (a weak mapping, logged);
	// a SID extension that is present must match the account's objectSid.
	// This is the default.
	MappingCompat MappingMode = iota
	// MappingFull also refuses certificates that are only weakly mapped:
	// the SID extension must match, or the account's altSecurityIdentities
	// must name the certificate in a strong form (X509:<I>…<SR>…,
	// X509:<SKI>…, X509:<SHA1-PUKEY>…).
	MappingFull
	// MappingOff checks names only; the SID extension is ignored.
	MappingOff
)

func (m MappingMode) String() string {
	switch m {
	case MappingCompat:
		return "compat"
	case MappingFull:
		return "full"
	case MappingOff:
		return "off"
	}
	return fmt.Sprintf("MappingMode(%d)", int(m))
}

// ParseMappingMode reads "off", "compat" or "full".
func ParseMappingMode(s string) (MappingMode, error) {
	switch strings.ToLower(s) {
	case "compat", "compatibility", "":
		return MappingCompat, nil
	case "full", "enforce", "enforced":
		return MappingFull, nil
	case "off", "disabled":
		return MappingOff, nil
	}
	return 0, fmt.Errorf("kdc: strong mapping mode %q: want off, compat or full", s)
}

// Key is a long-term key of a principal.
type Key struct {
	KVNO  int    `json:"kvno"`
	EType int32  `json:"etype"`
	Value []byte `json:"key"`
}

// Principal is what the KDC needs to know about a client or a service.
type Principal struct {
	// Name is the principal name without the realm: a login name ("alice")
	// or a service ("host/station.example.test").
	Name string
	// UPN is the userPrincipalName ("alice@example.test"), for users.
	UPN string
	// SID is the objectSid in text form, "" when none.
	SID string
	// AltSecurityIdentities are the account's explicit certificate
	// mappings, in the AD text forms (X509:<I>…<SR>…, X509:<SKI>…, …).
	AltSecurityIdentities []string
	// Keys are long-term keys. A principal without keys cannot use
	// encrypted-timestamp pre-authentication (users log on by PKINIT), and
	// a service without keys cannot be issued tickets.
	Keys []Key
	// Disabled accounts are refused (KDC_ERR_CLIENT_REVOKED).
	Disabled bool
}

// key returns the newest key of an enctype.
func (p *Principal) key(etype int32) (Key, bool) {
	var best Key
	found := false
	for _, k := range p.Keys {
		if k.EType == etype && (!found || k.KVNO > best.KVNO) {
			best, found = k, true
		}
	}
	return best, found
}

// keyVersion returns the key of an enctype and kvno (kvno 0: the newest).
func (p *Principal) keyVersion(etype int32, kvno int) (Key, bool) {
	if kvno == 0 {
		return p.key(etype)
	}
	for _, k := range p.Keys {
		if k.EType == etype && k.KVNO == kvno {
			return k, true
		}
	}
	return Key{}, false
}

// ErrUnknownPrincipal is what a PrincipalStore returns for a name it does
// not know.
var ErrUnknownPrincipal = errors.New("kdc: unknown principal")

// PrincipalStore finds principals. The directory implements it for users
// (station.DirectoryPrincipals); the KDC's own Store implements it for
// services and password principals. Combine them with Stores.
type PrincipalStore interface {
	// LookupUser finds a client by the name of an AS-REQ: a login name
	// ("alice"), or a UPN ("alice@example.test") for enterprise names and
	// for names that contain '@'. Case-insensitive.
	LookupUser(ctx context.Context, name string) (*Principal, error)
	// LookupService finds a service by its principal name without the
	// realm ("host/station.example.test").
	LookupService(ctx context.Context, name string) (*Principal, error)
}

// Stores combines principal stores: the first store that knows a name
// supplies the principal, and later stores that know the same name fill in
// what it lacks (keys, UPN, SID, mappings). A directory user with an
// administrator password in the KDC's store thus gets both.
type Stores []PrincipalStore

// LookupUser implements PrincipalStore.
func (s Stores) LookupUser(ctx context.Context, name string) (*Principal, error) {
	return s.lookup(ctx, name, PrincipalStore.LookupUser)
}

// LookupService implements PrincipalStore.
func (s Stores) LookupService(ctx context.Context, name string) (*Principal, error) {
	return s.lookup(ctx, name, PrincipalStore.LookupService)
}

func (s Stores) lookup(ctx context.Context, name string, get func(PrincipalStore, context.Context, string) (*Principal, error)) (*Principal, error) {
	var out *Principal
	for _, st := range s {
		if st == nil {
			continue
		}
		p, err := get(st, ctx, name)
		if errors.Is(err, ErrUnknownPrincipal) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if out == nil {
			c := *p
			out = &c
			continue
		}
		if len(out.Keys) == 0 {
			out.Keys = p.Keys
		}
		if out.UPN == "" {
			out.UPN = p.UPN
		}
		if out.SID == "" {
			out.SID = p.SID
		}
		if len(out.AltSecurityIdentities) == 0 {
			out.AltSecurityIdentities = p.AltSecurityIdentities
		}
		out.Disabled = out.Disabled || p.Disabled
	}
	if out == nil {
		return nil, ErrUnknownPrincipal
	}
	return out, nil
}

// RevocationChecker says whether a client certificate (already verified to
// chain to a trust anchor) is revoked. An error means the status is
// unknown, and the logon is refused (KDC_ERR_REVOCATION_STATUS_UNKNOWN).
type RevocationChecker func(cert *x509.Certificate) (revoked bool, reason string, err error)

// Config is what New needs to run a KDC.
type Config struct {
	// Realm is the Kerberos realm, such as EXAMPLE.TEST.
	Realm string
	// Store holds the krbtgt keys (and services and password principals).
	Store *Store
	// Principals finds clients and services; nil means Store alone. The
	// station passes Stores{store, directory}.
	Principals PrincipalStore

	// Certificate and Key are the KDC's PKINIT identity (the CA's "kdc"
	// template); Chain holds intermediates sent along with it. Without
	// them PKINIT is not offered.
	Certificate *x509.Certificate
	Key         crypto.Signer
	Chain       []*x509.Certificate
	// Roots are the trust anchors for client certificates; Intermediates
	// helps build chains when clients send only their own certificate.
	Roots         *x509.CertPool
	Intermediates *x509.CertPool
	// Revocation checks client certificates; nil checks nothing.
	Revocation RevocationChecker
	// StrongMapping is the certificate-mapping enforcement mode.
	StrongMapping MappingMode
	// RequireFreshness refuses PKINIT requests without an RFC 8070
	// freshness token (MIT 1.17+ and Windows 10+ send one).
	RequireFreshness bool

	// UDP and TCP are the listen addresses ("127.0.0.1:1088"); "" turns
	// one off. Port 0 picks a free port, the same for both when both are
	// on the same host.
	UDP, TCP string

	// ClockSkew is the allowed clock difference (default 5 minutes).
	ClockSkew time.Duration
	// TicketLifetime is the longest ticket lifetime (default 10 hours);
	// RenewLifetime the longest renewable life (default 7 days).
	TicketLifetime, RenewLifetime time.Duration
	// Now is the KDC's clock (default time.Now); tests skew it.
	Now func() time.Time
	// Log receives a line per request and per refusal (default: discard).
	Log *slog.Logger

	// MaxConnections bounds concurrent TCP connections (default 512);
	// MaxInFlight bounds requests processed at once (default 4 × CPUs).
	MaxConnections, MaxInFlight int
	// ReadTimeout bounds the wait for a TCP request (default 10 s).
	ReadTimeout time.Duration
}
