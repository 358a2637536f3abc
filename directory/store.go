package directory

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// User is a user entry.
type User struct {
	Name        string    `json:"name"` // login name: sAMAccountName / uid
	UPN         string    `json:"upn"`  // userPrincipalName, unique, case-insensitive
	Mail        string    `json:"mail,omitempty"`
	DisplayName string    `json:"displayName,omitempty"`
	SID         string    `json:"objectSid"`  // text form, assigned at creation
	GUID        string    `json:"objectGUID"` // assigned at creation
	Created     time.Time `json:"created"`
	// Certificates holds the DER of every certificate published to the
	// entry (userCertificate;binary).
	Certificates [][]byte `json:"userCertificate,omitempty"`
}

// Errors the store returns.
var (
	ErrNoSuchUser = errors.New("directory: no such user")
	ErrUserExists = errors.New("directory: user already exists")
	ErrUPNInUse   = errors.New("directory: userPrincipalName already in use")
	ErrInUse      = errors.New("directory: the directory database is in use by another process")
)

var (
	bucketUsers = []byte("users")     // lower-case name → JSON User
	bucketUPN   = []byte("upn-index") // lower-case UPN → lower-case name
	bucketMeta  = []byte("meta")
	keyDomain   = []byte("domain-sid")
	keyNextRID  = []byte("next-rid")
)

// firstRID is where user RIDs start, as in Active Directory.
const firstRID = 1100

// Store is the directory database.
type Store struct{ db *bolt.DB }

// Open opens or creates the store. It does not wait on another process's
// lock: it fails with ErrInUse.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 200 * time.Millisecond})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w (%s)", ErrInUse, path)
	}
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketUsers, bucketUPN, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keyDomain) == nil {
			// S-1-5-21-a-b-c: three random sub-authorities, as a Windows
			// domain has.
			var r [12]byte
			if _, err := rand.Read(r[:]); err != nil {
				return err
			}
			sid := fmt.Sprintf("S-1-5-21-%d-%d-%d", binary.BigEndian.Uint32(r[0:])&0x7fffffff, binary.BigEndian.Uint32(r[4:])&0x7fffffff, binary.BigEndian.Uint32(r[8:])&0x7fffffff)
			if err := meta.Put(keyDomain, []byte(sid)); err != nil {
				return err
			}
			return meta.Put(keyNextRID, binary.BigEndian.AppendUint32(nil, firstRID))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// DomainSID is the domain's SID; users' objectSids extend it with their RID.
func (s *Store) DomainSID() (string, error) {
	var sid string
	err := s.db.View(func(tx *bolt.Tx) error {
		sid = string(tx.Bucket(bucketMeta).Get(keyDomain))
		return nil
	})
	return sid, err
}

// ValidateUser checks the attributes a caller may set.
func ValidateUser(u *User) error {
	if u.Name == "" || len(u.Name) > 64 {
		return errors.New("directory: a user needs a login name of at most 64 characters")
	}
	for _, r := range u.Name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-", r)) {
			return fmt.Errorf("directory: login name %q may hold only letters, digits, '.', '_' and '-'", u.Name)
		}
	}
	local, domain, ok := strings.Cut(u.UPN, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(u.UPN, " \t\r\n/\\") || strings.Count(u.UPN, "@") != 1 {
		return fmt.Errorf("directory: userPrincipalName %q is not of the form user@domain", u.UPN)
	}
	if u.Mail != "" {
		a, err := mail.ParseAddress(u.Mail)
		if err != nil || a.Address != u.Mail {
			return fmt.Errorf("directory: mail %q is not a plain address", u.Mail)
		}
	}
	if strings.ContainsAny(u.DisplayName, "\x00\r\n") {
		return errors.New("directory: displayName may not contain control characters")
	}
	return nil
}

// AddUser creates a user, assigning objectSid and objectGUID. The login name
// and the UPN must both be unused.
func (s *Store) AddUser(u User) (*User, error) {
	if err := ValidateUser(&u); err != nil {
		return nil, err
	}
	u.Certificates = nil
	u.Created = time.Now().UTC().Truncate(time.Second)
	guid := make([]byte, 16)
	if _, err := rand.Read(guid); err != nil {
		return nil, err
	}
	guid[6], guid[8] = guid[6]&0x0f|0x40, guid[8]&0x3f|0x80
	u.GUID = fmt.Sprintf("%x-%x-%x-%x-%x", guid[0:4], guid[4:6], guid[6:8], guid[8:10], guid[10:])
	err := s.db.Update(func(tx *bolt.Tx) error {
		users, upns, meta := tx.Bucket(bucketUsers), tx.Bucket(bucketUPN), tx.Bucket(bucketMeta)
		key := []byte(strings.ToLower(u.Name))
		if users.Get(key) != nil {
			return fmt.Errorf("%w: %s", ErrUserExists, u.Name)
		}
		upnKey := []byte(strings.ToLower(u.UPN))
		if upns.Get(upnKey) != nil {
			return fmt.Errorf("%w: %s", ErrUPNInUse, u.UPN)
		}
		rid := binary.BigEndian.Uint32(meta.Get(keyNextRID))
		if err := meta.Put(keyNextRID, binary.BigEndian.AppendUint32(nil, rid+1)); err != nil {
			return err
		}
		u.SID = fmt.Sprintf("%s-%d", meta.Get(keyDomain), rid)
		if err := upns.Put(upnKey, key); err != nil {
			return err
		}
		return putUser(users, key, &u)
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func putUser(b *bolt.Bucket, key []byte, u *User) error {
	v, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

func getUser(tx *bolt.Tx, name string) (*User, []byte, error) {
	key := []byte(strings.ToLower(name))
	v := tx.Bucket(bucketUsers).Get(key)
	if v == nil && strings.Contains(name, "@") {
		if k := tx.Bucket(bucketUPN).Get(key); k != nil {
			key = bytes.Clone(k)
			v = tx.Bucket(bucketUsers).Get(key)
		}
	}
	if v == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrNoSuchUser, name)
	}
	var u User
	if err := json.Unmarshal(v, &u); err != nil {
		return nil, nil, fmt.Errorf("directory: entry %s is corrupt: %w", key, err)
	}
	return &u, key, nil
}

// User finds a user by login name or UPN, case-insensitively.
func (s *Store) User(name string) (*User, error) {
	var u *User
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		u, _, err = getUser(tx, name)
		return err
	})
	return u, err
}

// Users lists every user, by login name.
func (s *Store) Users() ([]*User, error) {
	var out []*User
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var u User
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("directory: entry %s is corrupt: %w", k, err)
			}
			out = append(out, &u)
			return nil
		})
	})
	return out, err
}

// DeleteUser removes a user entry.
func (s *Store) DeleteUser(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		u, key, err := getUser(tx, name)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketUPN).Delete([]byte(strings.ToLower(u.UPN))); err != nil {
			return err
		}
		return tx.Bucket(bucketUsers).Delete(key)
	})
}

// AddCertificate publishes a certificate (DER) to a user's entry; adding the
// same certificate twice is a no-op.
func (s *Store) AddCertificate(name string, der []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		u, key, err := getUser(tx, name)
		if err != nil {
			return err
		}
		for _, c := range u.Certificates {
			if bytes.Equal(c, der) {
				return nil
			}
		}
		u.Certificates = append(u.Certificates, bytes.Clone(der))
		return putUser(tx.Bucket(bucketUsers), key, u)
	})
}
