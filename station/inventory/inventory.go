// Package inventory is the station's card inventory: a bbolt file that
// records, for every card the station has prepared, its serial number, GUID,
// owner, certificates, lifecycle state and history.
//
// The lifecycle follows a card management system: a card starts
// uninitialized, becomes active when enrolled, may be suspended and
// reinstated, and ends revoked or terminated. Only the transitions listed in
// CanTransition are allowed, and every state change is written to the card's
// history in the same transaction as the change itself.
//
// The inventory keeps the card's PUK only as the sealed bytes the station
// hands it; it never sees a clear PUK, PIN or key.
package inventory

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// State is a card's lifecycle state.
type State string

// The lifecycle states.
const (
	Uninitialized State = "uninitialized" // known to the station, not (yet) enrolled
	Active        State = "active"        // enrolled; its certificates are valid
	Suspended     State = "suspended"     // certificates on hold
	Revoked       State = "revoked"       // certificates revoked for good
	Terminated    State = "terminated"    // retired: reset to blank, destroyed or abandoned
)

// States lists every state, in lifecycle order.
var States = []State{Uninitialized, Active, Suspended, Revoked, Terminated}

// Valid reports whether s is one of the lifecycle states.
func (s State) Valid() bool { return slices.Contains(States, s) }

// ParseState parses a state name.
func ParseState(name string) (State, error) {
	s := State(strings.ToLower(strings.TrimSpace(name)))
	if !s.Valid() {
		return "", fmt.Errorf("inventory: unknown card state %q (want one of uninitialized, active, suspended, revoked, terminated)", name)
	}
	return s, nil
}

// legal is the transition table. Anything not listed is refused,
// including staying in the same state.
var legal = map[State][]State{
	Uninitialized: {Active, Terminated},
	Active:        {Suspended, Revoked, Terminated},
	Suspended:     {Active, Revoked, Terminated},
	Revoked:       {Terminated},
}

// CanTransition reports whether a card may go from one state to another.
func CanTransition(from, to State) bool {
	return slices.Contains(legal[from], to)
}

// TransitionError reports a state change the lifecycle does not allow.
type TransitionError struct {
	ID       string
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("inventory: card %s cannot go from %s to %s", e.ID, e.From, e.To)
}

// Errors returned by the store.
var (
	ErrNotFound = errors.New("inventory: no such card")
	ErrExists   = errors.New("inventory: card already in the inventory")
)

// CorruptError reports a record that cannot be decoded or is inconsistent.
type CorruptError struct {
	ID     string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("inventory: record for card %q is corrupt: %s", e.ID, e.Reason)
}

// CertRef is a certificate on a card.
type CertRef struct {
	Slot     string // PIV slot: "9a", "9c", "9d", "9e"
	Serial   string // certificate serial number, lower-case hex
	Template string
	NotAfter time.Time
}

// Event is one entry in a card's history.
type Event struct {
	Time     time.Time
	Actor    string
	Action   string
	From, To State
	Detail   string
}

// Card is a card's inventory record.
type Card struct {
	// ID is the stable key: "guid:<32 hex>" when the card has a CHUID
	// GUID, else "serial:<n>". See CardID.
	ID     string
	Serial uint32
	GUID   string
	Reader string
	// Owner is the owner's directory login name.
	Owner        string
	State        State
	Certificates []CertRef
	// SealedPUK is opaque: the station seals it; the inventory never sees
	// a clear PUK.
	SealedPUK []byte
	// MgmtKeyVersion says which derivation of the station master secret the
	// card's management key uses.
	MgmtKeyVersion   int
	Created, Updated time.Time
	History          []Event
}

// CardID returns the inventory ID of a card: its GUID when it has a
// non-zero one (16 bytes, as hex), else its serial number.
func CardID(guid []byte, serial uint32) string {
	if len(guid) == 16 && !bytes.Equal(guid, make([]byte, 16)) {
		return "guid:" + hex.EncodeToString(guid)
	}
	return "serial:" + strconv.FormatUint(uint64(serial), 10)
}

// CheckID reports whether id has the form CardID produces.
func CheckID(id string) error {
	if g, ok := strings.CutPrefix(id, "guid:"); ok {
		if b, err := hex.DecodeString(g); err == nil && len(b) == 16 && g == strings.ToLower(g) {
			return nil
		}
	} else if n, ok := strings.CutPrefix(id, "serial:"); ok {
		if v, err := strconv.ParseUint(n, 10, 32); err == nil && strconv.FormatUint(v, 10) == n {
			return nil
		}
	}
	return fmt.Errorf("inventory: bad card ID %q (want guid:<32 hex digits> or serial:<number>)", id)
}

// clone returns a deep copy, so that callers never share slices with a
// record being updated.
func (c *Card) clone() *Card {
	d := *c
	d.Certificates = slices.Clone(c.Certificates)
	d.SealedPUK = bytes.Clone(c.SealedPUK)
	d.History = slices.Clone(c.History)
	return &d
}

var (
	bucketCards   = []byte("cards")    // ID -> JSON Card
	bucketByOwner = []byte("by-owner") // owner 0x00 ID -> empty
	bucketMeta    = []byte("meta")
	metaSchema    = []byte("schema")
)

const schemaVersion = "1"

// Store is an open inventory. It is safe for concurrent use: bbolt runs one
// write transaction at a time, and every change is committed (fsynced)
// before the method returns.
type Store struct {
	db *bolt.DB
	// Now is the clock for Created, Updated and history times.
	Now func() time.Time
}

// ErrInUse is returned (wrapped, with the path) by Open when another
// process has the inventory open.
var ErrInUse = errors.New("inventory: the inventory database is in use by another process")

// Open opens or creates the inventory file at path (mode 0600).
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 200 * time.Millisecond})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w (%s)", ErrInUse, path)
	}
	if err != nil {
		return nil, fmt.Errorf("inventory: opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if tx.Bucket(bucketCards) != nil {
				return errors.New("inventory: the file has cards but no meta bucket")
			}
			for _, b := range [][]byte{bucketCards, bucketByOwner, bucketMeta} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(metaSchema, []byte(schemaVersion))
		}
		if v := string(meta.Get(metaSchema)); v != schemaVersion {
			return fmt.Errorf("inventory: schema version %q is not supported (want %s)", v, schemaVersion)
		}
		if tx.Bucket(bucketCards) == nil || tx.Bucket(bucketByOwner) == nil {
			return errors.New("inventory: the file is missing a bucket")
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, Now: time.Now}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) now() time.Time { return s.Now().UTC() }

func ownerKey(owner, id string) []byte { return []byte(owner + "\x00" + id) }

func decode(id string, v []byte) (*Card, error) {
	var c Card
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, &CorruptError{ID: id, Reason: err.Error()}
	}
	if c.ID != id {
		return nil, &CorruptError{ID: id, Reason: fmt.Sprintf("it holds card %q", c.ID)}
	}
	if !c.State.Valid() {
		return nil, &CorruptError{ID: id, Reason: fmt.Sprintf("unknown state %q", c.State)}
	}
	return &c, nil
}

func validate(c *Card) error {
	if err := CheckID(c.ID); err != nil {
		return err
	}
	if !c.State.Valid() {
		return fmt.Errorf("inventory: card %s: unknown state %q", c.ID, c.State)
	}
	if strings.ContainsRune(c.Owner, 0) {
		return fmt.Errorf("inventory: card %s: owner name contains a NUL byte", c.ID)
	}
	return nil
}

func put(tx *bolt.Tx, c *Card) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketCards).Put([]byte(c.ID), v)
}

// Create adds a new card. An empty State means Uninitialized; zero Created
// and Updated times mean now. It returns ErrExists if the ID is taken.
func (s *Store) Create(c *Card) error {
	n := c.clone()
	if n.State == "" {
		n.State = Uninitialized
	}
	if err := validate(n); err != nil {
		return err
	}
	now := s.now()
	if n.Created.IsZero() {
		n.Created = now
	}
	if n.Updated.IsZero() {
		n.Updated = n.Created
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCards).Get([]byte(n.ID)) != nil {
			return fmt.Errorf("%w: %s", ErrExists, n.ID)
		}
		if n.Owner != "" {
			if err := tx.Bucket(bucketByOwner).Put(ownerKey(n.Owner, n.ID), nil); err != nil {
				return err
			}
		}
		return put(tx, n)
	})
	if err != nil {
		return err
	}
	*c = *n
	return nil
}

// Get returns a card, or an error wrapping ErrNotFound.
func (s *Store) Get(id string) (*Card, error) {
	var c *Card
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCards).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		var err error
		c, err = decode(id, v)
		return err
	})
	return c, err
}

// Update changes a card in one transaction: fn gets a copy of the record
// and may change it; if fn returns an error, nothing changes and Update
// returns that error. The ID and Created time cannot change, and History
// can only be appended to. A change of State is checked with CanTransition
// (a *TransitionError otherwise) and recorded in History: if fn did not
// append an Event for it itself (one whose To is the new state), Update
// appends one with action "card.state". Updated is set to now.
func (s *Store) Update(id string, fn func(c *Card) error) (*Card, error) {
	var out *Card
	err := s.db.Update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCards).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		old, err := decode(id, v)
		if err != nil {
			return err
		}
		c := old.clone()
		if err := fn(c); err != nil {
			return err
		}
		if c.ID != old.ID {
			return fmt.Errorf("inventory: card %s: the ID cannot change (to %q)", id, c.ID)
		}
		if !c.Created.Equal(old.Created) {
			return fmt.Errorf("inventory: card %s: the creation time cannot change", id)
		}
		// History is append-only: what happened stays written.
		if len(c.History) < len(old.History) || !slices.EqualFunc(c.History[:len(old.History)], old.History, sameEvent) {
			return fmt.Errorf("inventory: card %s: history can only be added to", id)
		}
		if err := validate(c); err != nil {
			return err
		}
		now := s.now()
		if c.State != old.State {
			if !CanTransition(old.State, c.State) {
				return &TransitionError{ID: id, From: old.State, To: c.State}
			}
			added := c.History[min(len(old.History), len(c.History)):]
			if !slices.ContainsFunc(added, func(e Event) bool { return e.To == c.State }) {
				c.History = append(c.History, Event{Time: now, Action: "card.state", From: old.State, To: c.State})
			}
		}
		c.Updated = now
		if c.Owner != old.Owner {
			idx := tx.Bucket(bucketByOwner)
			if old.Owner != "" {
				if err := idx.Delete(ownerKey(old.Owner, id)); err != nil {
					return err
				}
			}
			if c.Owner != "" {
				if err := idx.Put(ownerKey(c.Owner, id), nil); err != nil {
					return err
				}
			}
		}
		if err := put(tx, c); err != nil {
			return err
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func sameEvent(a, b Event) bool {
	return a.Time.Equal(b.Time) && a.Actor == b.Actor && a.Action == b.Action && a.From == b.From && a.To == b.To && a.Detail == b.Detail
}

// Transition moves a card to another state and records who did it and why.
// An illegal transition returns a *TransitionError and changes nothing.
func (s *Store) Transition(id string, to State, actor, action, detail string) (*Card, error) {
	return s.Update(id, func(c *Card) error {
		if !CanTransition(c.State, to) {
			return &TransitionError{ID: id, From: c.State, To: to}
		}
		c.History = append(c.History, Event{Time: s.now(), Actor: actor, Action: action, From: c.State, To: to, Detail: detail})
		c.State = to
		return nil
	})
}

// Query selects cards for List. Zero fields match everything.
type Query struct {
	// Owner is the owner's exact login name.
	Owner string
	// OwnerLike is a part of the owner's login name, in any case (what a
	// person types into a filter).
	OwnerLike string
	State     State
	// Limit caps the number of cards returned (the most recently updated
	// ones); 0 means no limit.
	Limit int
}

// List returns the cards that match q, most recently updated first.
func (s *Store) List(q Query) ([]*Card, error) {
	if q.State != "" && !q.State.Valid() {
		return nil, fmt.Errorf("inventory: unknown card state %q", q.State)
	}
	var out []*Card
	like := strings.ToLower(q.OwnerLike)
	err := s.db.View(func(tx *bolt.Tx) error {
		cards := tx.Bucket(bucketCards)
		add := func(id, v []byte) error {
			c, err := decode(string(id), v)
			if err != nil {
				return err
			}
			if (q.State == "" || c.State == q.State) && (q.Owner == "" || c.Owner == q.Owner) &&
				(like == "" || strings.Contains(strings.ToLower(c.Owner), like)) {
				out = append(out, c)
			}
			return nil
		}
		if q.Owner == "" {
			return cards.ForEach(add)
		}
		prefix := []byte(q.Owner + "\x00")
		cur := tx.Bucket(bucketByOwner).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			id := k[len(prefix):]
			v := cards.Get(id)
			if v == nil {
				return &CorruptError{ID: string(id), Reason: "the owner index names a card that is not there"}
			}
			if err := add(id, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b *Card) int {
		if c := b.Updated.Compare(a.Updated); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}
