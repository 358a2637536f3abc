package kdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"golang.org/x/crypto/cryptobyte"

	"github.com/scstation/scstation/internal/atomicfile"
)

// StoreFile is the name of the KDC's key file in its directory.
const StoreFile = "kdc.json"

// Store is the KDC's own key store: the krbtgt keys, the master key that
// seals service keys kept in the directory (SealKeys), and the password
// principals (administrators) and services registered before services
// moved to the directory, with their long-term keys. Users who log on
// with smart cards have no keys and live in the directory.
//
// It is one JSON file, mode 0600, rewritten atomically on every change.
// The keys are not encrypted at rest: the file's permissions, as MIT's
// stash file's, are what protect them. One process owns it.
type Store struct {
	mu   sync.RWMutex
	path string
	data storeData
}

type storeData struct {
	Version    int                         `json:"version"`
	Realm      string                      `json:"realm"`
	Created    time.Time                   `json:"created"`
	Krbtgt     []Key                       `json:"krbtgt"`
	Principals map[string]*storedPrincipal `json:"principals"`
	// Master keys seal service keys kept in the directory (SealKeys);
	// the newest seals, any opens. Added on first open when missing.
	Master []Key `json:"master,omitempty"`
}

type storedPrincipal struct {
	Service bool      `json:"service,omitempty"`
	Keys    []Key     `json:"keys"`
	Changed time.Time `json:"changed"`
}

// keepKVNOs is how many key versions a principal keeps: the current and
// the previous, so tickets issued just before a key change still work.
const keepKVNOs = 2

// OpenStore opens dir/kdc.json, creating it (and dir, mode 0700) with new
// random krbtgt keys when it does not exist.
func OpenStore(dir, realm string) (*Store, error) {
	if realm == "" || strings.ContainsAny(realm, "/@\x00") {
		return nil, fmt.Errorf("kdc: realm %q is not valid", realm)
	}
	s := &Store{path: filepath.Join(dir, StoreFile)}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		keys, err := randomKeys(1)
		if err != nil {
			return nil, err
		}
		master, err := newMasterKey(1)
		if err != nil {
			return nil, err
		}
		s.data = storeData{Version: 1, Realm: realm, Created: time.Now().UTC(), Krbtgt: keys, Principals: map[string]*storedPrincipal{}, Master: []Key{master}}
		if err := s.save(); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(s.path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("kdc: %s is readable by others (mode %v); it holds the realm's keys", s.path, fi.Mode().Perm())
	}
	if err := json.Unmarshal(data, &s.data); err != nil {
		return nil, fmt.Errorf("kdc: %s: %w", s.path, err)
	}
	if s.data.Version != 1 {
		return nil, fmt.Errorf("kdc: %s: unknown version %d", s.path, s.data.Version)
	}
	if s.data.Realm != realm {
		return nil, fmt.Errorf("kdc: %s is for realm %s, not %s", s.path, s.data.Realm, realm)
	}
	if len(s.data.Krbtgt) == 0 {
		return nil, fmt.Errorf("kdc: %s has no krbtgt keys", s.path)
	}
	if s.data.Principals == nil {
		s.data.Principals = map[string]*storedPrincipal{}
	}
	if len(s.data.Master) == 0 {
		// A store from before service keys moved to the directory.
		master, err := newMasterKey(1)
		if err != nil {
			return nil, err
		}
		s.data.Master = []Key{master}
		if err := s.save(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Realm is the store's realm.
func (s *Store) Realm() string { return s.data.Realm }

func (s *Store) save() error {
	b, err := json.MarshalIndent(&s.data, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(s.path, append(b, '\n'), 0o600)
}

// randomKeys makes a random key of every supported enctype.
func randomKeys(kvno int) ([]Key, error) {
	var out []Key
	for _, e := range supportedETypes {
		k, err := randomKey(e)
		if err != nil {
			return nil, err
		}
		out = append(out, Key{KVNO: kvno, EType: e, Value: k.KeyValue})
	}
	return out, nil
}

// passwordKeys derives the keys of every supported enctype from a password
// with the default salt, the realm followed by the name's components.
func passwordKeys(realm, name string, password []byte, kvno int) ([]Key, error) {
	salt := realm + strings.ReplaceAll(name, "/", "")
	var out []Key
	for _, e := range supportedETypes {
		et, err := krbcrypto.GetEtype(e)
		if err != nil {
			return nil, err
		}
		k, err := et.StringToKey(string(password), salt, et.GetDefaultStringToKeyParams())
		if err != nil {
			return nil, err
		}
		out = append(out, Key{KVNO: kvno, EType: e, Value: k})
	}
	return out, nil
}

// validName checks a principal name without realm: components separated
// by '/', no '@', no empty component, no control characters.
func validName(name string) error {
	if name == "" || len(name) > 256 || strings.ContainsAny(name, "@\\") {
		return fmt.Errorf("kdc: principal name %q is not valid", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" {
			return fmt.Errorf("kdc: principal name %q has an empty component", name)
		}
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("kdc: principal name %q has a control character", name)
		}
	}
	if strings.EqualFold(strings.Split(name, "/")[0], "krbtgt") {
		return fmt.Errorf("kdc: %q: krbtgt principals are the KDC's own", name)
	}
	return nil
}

func (s *Store) setKeys(name string, service bool, keys func(kvno int) ([]Key, error)) (int, error) {
	if err := validName(name); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.data.Principals[name]
	old := p
	kvno := 1
	if p != nil {
		if p.Service != service {
			return 0, fmt.Errorf("kdc: %s already exists as a %s", name, map[bool]string{true: "service", false: "password principal"}[p.Service])
		}
		for _, k := range p.Keys {
			kvno = max(kvno, k.KVNO+1)
		}
	}
	nk, err := keys(kvno)
	if err != nil {
		return 0, err
	}
	np := &storedPrincipal{Service: service, Keys: nk, Changed: time.Now().UTC()}
	if p != nil {
		for _, k := range p.Keys {
			if k.KVNO > kvno-keepKVNOs {
				np.Keys = append(np.Keys, k)
			}
		}
	}
	s.data.Principals[name] = np
	if err := s.save(); err != nil {
		if old == nil {
			delete(s.data.Principals, name)
		} else {
			s.data.Principals[name] = old
		}
		return 0, err
	}
	return kvno, nil
}

// AddPrincipal creates a password principal ("admin"), or changes its
// password, with keys derived from the password (string2key with the
// default salt). It returns the new key version.
func (s *Store) AddPrincipal(name string, password []byte) (int, error) {
	if len(password) == 0 {
		return 0, errors.New("kdc: empty password")
	}
	return s.setKeys(name, false, func(kvno int) ([]Key, error) {
		return passwordKeys(s.data.Realm, name, password, kvno)
	})
}

// AddService creates a service principal ("host/station.example.test")
// with random keys, or gives it new ones. It returns the new key version.
func (s *Store) AddService(spn string) (int, error) {
	return s.setKeys(spn, true, randomKeys)
}

// Delete removes a principal.
func (s *Store) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.data.Principals[name]
	if !ok {
		return ErrUnknownPrincipal
	}
	delete(s.data.Principals, name)
	if err := s.save(); err != nil {
		s.data.Principals[name] = old
		return err
	}
	return nil
}

// Names lists the principals, sorted.
func (s *Store) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for n := range s.data.Principals {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (s *Store) find(name string, service bool) (*Principal, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.data.Principals[name]
	if !ok {
		for n, q := range s.data.Principals {
			if strings.EqualFold(n, name) {
				name, p, ok = n, q, true
				break
			}
		}
	}
	if !ok || p.Service != service {
		return nil, ErrUnknownPrincipal
	}
	return &Principal{Name: name, Keys: slices.Clone(p.Keys)}, nil
}

// LookupUser implements PrincipalStore for password principals.
func (s *Store) LookupUser(_ context.Context, name string) (*Principal, error) {
	return s.find(name, false)
}

// LookupService implements PrincipalStore for services.
func (s *Store) LookupService(_ context.Context, name string) (*Principal, error) {
	return s.find(name, true)
}

// krbtgt returns the realm's TGS principal.
func (s *Store) krbtgt() *Principal {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &Principal{Name: "krbtgt/" + s.data.Realm, Keys: slices.Clone(s.data.Krbtgt)}
}

// Keytab returns an MIT keytab (format 0x502) holding the keys of a
// principal, for the service to decrypt its tickets with.
func (s *Store) Keytab(name string) ([]byte, error) {
	s.mu.RLock()
	p, ok := s.data.Principals[name]
	realm := s.data.Realm
	var keys []Key
	var changed time.Time
	if ok {
		keys, changed = slices.Clone(p.Keys), p.Changed
	}
	s.mu.RUnlock()
	if !ok {
		return nil, ErrUnknownPrincipal
	}
	nt := nametype.KRB_NT_PRINCIPAL
	if strings.Contains(name, "/") {
		nt = nametype.KRB_NT_SRV_HST
	}
	return marshalKeytab(realm, strings.Split(name, "/"), nt, changed, keys)
}

// MarshalKeytab returns an MIT keytab (format 0x502) holding keys for the
// principal name (without realm), stamped ts.
func MarshalKeytab(realm, name string, ts time.Time, keys []Key) ([]byte, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	nt := nametype.KRB_NT_PRINCIPAL
	if strings.Contains(name, "/") {
		nt = nametype.KRB_NT_SRV_HST
	}
	return marshalKeytab(realm, strings.Split(name, "/"), nt, ts, keys)
}

// marshalKeytab writes the MIT keytab format: 0x05 0x02, then per key a
// 32-bit length and the entry (components, realm, name type, timestamp,
// 8-bit kvno, key, 32-bit kvno), all big-endian.
func marshalKeytab(realm string, components []string, nameType int32, ts time.Time, keys []Key) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(5)
	b.AddUint8(2)
	for _, k := range keys {
		b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16(uint16(len(components)))
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(realm)) })
			for _, c := range components {
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c)) })
			}
			b.AddUint32(uint32(nameType))
			b.AddUint32(uint32(ts.Unix()))
			b.AddUint8(uint8(k.KVNO))
			b.AddUint16(uint16(k.EType))
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(k.Value) })
			b.AddUint32(uint32(k.KVNO))
		})
	}
	return b.Bytes()
}
