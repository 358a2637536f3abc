package kdc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
)

// Service keys kept outside the KDC's store (in the directory, on the
// service account, as AD and MIT's LDAP backend keep them) are sealed under
// the store's master key: AES-256-GCM, bound to the realm and the account
// name, so a blob copied to another account or realm does not open.
//
//	"sck1" | master kvno (1 byte) | nonce (12) | GCM(JSON []Key)

const sealMagic = "sck1"

// ErrSealedKeys: sealed keys that do not open (another account, another
// KDC's master key, or damaged).
var ErrSealedKeys = errors.New("kdc: sealed keys do not open with this KDC's master key")

// maxSealed bounds a sealed blob (the directory allows 16 KiB).
const maxSealed = 16 << 10

func newMasterKey(kvno int) (Key, error) {
	v := make([]byte, 32)
	if _, err := rand.Read(v); err != nil {
		return Key{}, err
	}
	return Key{KVNO: kvno, EType: etypeID.AES256_CTS_HMAC_SHA1_96, Value: v}, nil
}

func sealAAD(kvno byte, realm, account string) []byte {
	return []byte(sealMagic + string([]byte{kvno}) + realm + "\x00" + strings.ToLower(account))
}

// SealKeys encrypts keys for keeping them outside the store, bound to the
// account (a directory login name, case-insensitive).
func (s *Store) SealKeys(account string, keys []Key) ([]byte, error) {
	if account == "" || len(keys) == 0 {
		return nil, errors.New("kdc: nothing to seal")
	}
	s.mu.RLock()
	if len(s.data.Master) == 0 {
		s.mu.RUnlock()
		return nil, errors.New("kdc: the store has no master key")
	}
	master := s.data.Master[len(s.data.Master)-1]
	realm := s.data.Realm
	s.mu.RUnlock()
	if master.KVNO < 1 || master.KVNO > 255 {
		return nil, fmt.Errorf("kdc: master key version %d out of range", master.KVNO)
	}
	plain, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return sealWith(master, realm, account, plain)
}

func sealWith(master Key, realm, account string, plain []byte) ([]byte, error) {
	aead, err := masterAEAD(master)
	if err != nil {
		return nil, err
	}
	out := append([]byte(sealMagic), byte(master.KVNO))
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, sealAAD(byte(master.KVNO), realm, account)), nil
}

// OpenKeys decrypts keys SealKeys sealed for account. Anything else is
// ErrSealedKeys.
func (s *Store) OpenKeys(account string, sealed []byte) ([]Key, error) {
	if len(sealed) < len(sealMagic)+1+12+16 || len(sealed) > maxSealed || string(sealed[:len(sealMagic)]) != sealMagic {
		return nil, ErrSealedKeys
	}
	kvno := sealed[len(sealMagic)]
	s.mu.RLock()
	i := slices.IndexFunc(s.data.Master, func(k Key) bool { return k.KVNO == int(kvno) })
	var master Key
	if i >= 0 {
		master = s.data.Master[i]
	}
	realm := s.data.Realm
	s.mu.RUnlock()
	if i < 0 {
		return nil, ErrSealedKeys
	}
	aead, err := masterAEAD(master)
	if err != nil {
		return nil, err
	}
	rest := sealed[len(sealMagic)+1:]
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], sealAAD(kvno, realm, account))
	if err != nil {
		return nil, ErrSealedKeys
	}
	defer clear(plain)
	var keys []Key
	if err := json.Unmarshal(plain, &keys); err != nil || len(keys) == 0 {
		return nil, ErrSealedKeys
	}
	for _, k := range keys {
		if !etypeSupported(k.EType) || k.KVNO < 1 || len(k.Value) == 0 {
			return nil, ErrSealedKeys
		}
	}
	return keys, nil
}

func masterAEAD(k Key) (cipher.AEAD, error) {
	b, err := aes.NewCipher(k.Value)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// RotateKeys returns new random keys of every supported enctype with the
// next key version after old's, plus old's newest version (for tickets
// issued just before), and the new version.
func RotateKeys(old []Key) ([]Key, int, error) {
	kvno := 1
	for _, k := range old {
		kvno = max(kvno, k.KVNO+1)
	}
	keys, err := randomKeys(kvno)
	if err != nil {
		return nil, 0, err
	}
	for _, k := range old {
		if k.KVNO > kvno-keepKVNOs {
			keys = append(keys, k)
		}
	}
	return keys, kvno, nil
}

// ServiceKeys returns the keys of a service in the store (kdc.json),
// ErrUnknownPrincipal when it has none there.
func (s *Store) ServiceKeys(name string) ([]Key, error) {
	p, err := s.find(name, true)
	if err != nil {
		return nil, err
	}
	return p.Keys, nil
}
