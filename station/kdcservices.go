package station

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/kdc"
)

// Service principals live on directory accounts, as in AD: the account has
// the servicePrincipalName and the keys, sealed under the KDC's master key
// (kdc.Store.SealKeys). Services registered before that, in kdc.json, keep
// working (the KDC looks there first) and move to the directory the next
// time they get keys (AddService), their key version continuing.

// ServiceInfo describes a service principal.
type ServiceInfo struct {
	SPN string
	// Account is the login name of the directory account, "" for a
	// service still in kdc.json.
	Account string
	DN      string
	KVNO    int
	// Disabled accounts get no tickets.
	Disabled bool
}

// DefaultServiceAccount is the account name AddService uses when none is
// given: svc-SERVICE-HOST, from the SPN's service and the first label of
// its host (host/station.example.test → svc-host-station).
func DefaultServiceAccount(spn string) string {
	service, host, _ := strings.Cut(spn, "/")
	host, _, _ = strings.Cut(host, ".")
	host, _, _ = strings.Cut(host, "/")
	var b strings.Builder
	for _, r := range strings.ToLower("svc-" + service + "-" + host) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	return b.String()[:min(b.Len(), 64)]
}

func maxKVNO(keys []kdc.Key) int {
	n := 0
	for _, k := range keys {
		n = max(n, k.KVNO)
	}
	return n
}

// AddService gives the service spn fresh random keys (aes256-cts-hmac-
// sha1-96, aes128-cts-hmac-sha1-96, aes256-cts-hmac-sha384-192) with the
// next key version, keeping the previous version for tickets already
// issued. The SPN is put on the directory account named account (default
// DefaultServiceAccount), which is created when missing; all SPNs of an
// account share its keys. A service still in kdc.json moves to the
// directory.
func (s *Station) AddService(spn, account string) (*ServiceInfo, error) {
	if err := directory.ValidateSPN(spn); err != nil {
		return nil, err
	}
	if account == "" {
		account = DefaultServiceAccount(spn)
	}
	store, err := s.KDCStore()
	if err != nil {
		return nil, err
	}
	dir, err := s.Directory()
	if err != nil {
		return nil, err
	}
	legacy, err := store.ServiceKeys(spn)
	if err != nil && !errors.Is(err, kdc.ErrUnknownPrincipal) {
		return nil, err
	}
	var kvno int
	acct, err := dir.SetServiceKeys(account, spn, func(name string, old []byte) ([]byte, error) {
		prev := legacy
		if old != nil {
			opened, err := store.OpenKeys(name, old)
			if err != nil {
				return nil, fmt.Errorf("station: the current keys of %s: %w", name, err)
			}
			if maxKVNO(opened) > maxKVNO(prev) {
				prev = opened
			}
		}
		keys, n, err := kdc.RotateKeys(prev)
		if err != nil {
			return nil, err
		}
		kvno = n
		return store.SealKeys(name, keys)
	})
	if err != nil {
		return nil, err
	}
	if legacy != nil {
		for _, name := range store.Names() {
			if strings.EqualFold(name, spn) {
				if err := store.Delete(name); err != nil {
					return nil, fmt.Errorf("station: %s now has keys on %s, but removing it from kdc.json (whose keys the KDC still prefers) failed: %w", spn, acct.DN, err)
				}
			}
		}
		s.Log.Info("service moved from kdc.json to the directory", "spn", spn, "account", acct.DN)
	}
	s.Log.Info("service keys", "spn", spn, "account", acct.DN, "kvno", kvno)
	return &ServiceInfo{SPN: spn, Account: acct.Name, DN: acct.DN, KVNO: kvno, Disabled: acct.Disabled}, nil
}

// ServiceKeytab returns an MIT keytab with the keys of a service (from
// its directory account, else kdc.json) or of a password principal.
func (s *Station) ServiceKeytab(name string) ([]byte, error) {
	store, err := s.KDCStore()
	if err != nil {
		return nil, err
	}
	if strings.Contains(name, "/") {
		dir, err := s.Directory()
		if err != nil {
			return nil, err
		}
		a, err := dir.ServiceBySPN(context.Background(), name)
		if err == nil && len(a.Keys) > 0 {
			keys, err := store.OpenKeys(a.Name, a.Keys)
			if err != nil {
				return nil, fmt.Errorf("station: the keys of %s on %s: %w", name, a.DN, err)
			}
			return kdc.MarshalKeytab(s.Config.Realm, name, time.Now(), keys)
		}
		if err != nil && !errors.Is(err, directory.ErrNoSuchService) {
			return nil, err
		}
	}
	return store.Keytab(name)
}

// Services lists the service principals: those on directory accounts,
// then those still in kdc.json.
func (s *Station) Services() ([]ServiceInfo, error) {
	store, err := s.KDCStore()
	if err != nil {
		return nil, err
	}
	dir, err := s.Directory()
	if err != nil {
		return nil, err
	}
	accounts, err := dir.ServiceAccounts(context.Background())
	if err != nil {
		return nil, err
	}
	var out []ServiceInfo
	for _, a := range accounts {
		kvno := 0
		if len(a.Keys) > 0 {
			keys, err := store.OpenKeys(a.Name, a.Keys)
			if err != nil {
				return nil, fmt.Errorf("station: the keys of %s: %w", a.DN, err)
			}
			kvno = maxKVNO(keys)
		}
		for _, spn := range a.SPNs {
			out = append(out, ServiceInfo{SPN: spn, Account: a.Name, DN: a.DN, KVNO: kvno, Disabled: a.Disabled})
		}
	}
	slices.SortFunc(out, func(a, b ServiceInfo) int { return strings.Compare(strings.ToLower(a.SPN), strings.ToLower(b.SPN)) })
	for _, name := range store.Names() {
		if keys, err := store.ServiceKeys(name); err == nil {
			out = append(out, ServiceInfo{SPN: name, KVNO: maxKVNO(keys)})
		}
	}
	return out, nil
}
