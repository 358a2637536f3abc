// Package audit is the station's audit log: an append-only, hash-chained
// record of every officer and admin action (issuance, revocation, card state
// changes, PIN unblocks, sign-ins, failed PIN attempts), kept in a bbolt
// file.
//
// Each record's Hash is SHA-256 over the previous record's hash and a
// canonical encoding of the record's other fields, so that Verify detects a
// record that was altered, removed or moved. The sequence number and hash of
// the newest record are also kept in a separate meta bucket, so that cutting
// records off the end is detected too. (Someone who can rewrite the whole
// file consistently can forge it: export the head hash elsewhere to anchor
// it.)
//
// Records never hold secrets: callers put plain words in Detail, never a
// PIN, PUK, passphrase or key.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Outcomes.
const (
	OK      = "ok"
	Failed  = "failed"
	Refused = "refused"
)

// Record is one audit log entry.
type Record struct {
	Seq  uint64
	Time time.Time
	// Actor is who acted: "officer:alice" (the agent card's owner),
	// "cli:<os user>", "ssh:SHA256:<fingerprint>" or "station".
	Actor string
	// Action is a dotted name: cert.issue, cert.revoke, card.state, ...
	Action string
	// User, Card and Cert are the subject user, the card ID and the
	// certificate serial (hex), when relevant.
	User, Card, Cert string
	// Outcome is OK, Failed or Refused.
	Outcome string
	// Detail is plain words, never a secret.
	Detail string
	// Prev is the previous record's Hash (empty for the first record);
	// Hash is SHA-256(Prev || canonical encoding of the other fields).
	Prev, Hash []byte
}

// hash computes the record's chain hash from Prev and its other fields:
// SHA-256 of "scstation-audit-v1", then Prev, Seq, Time (Unix seconds as 8
// bytes, nanoseconds as 4), Actor, Action, User, Card, Cert, Outcome and
// Detail, every variable-length field preceded by its length as 8 bytes,
// all big-endian, so that no two records encode alike.
func (r *Record) hash() []byte {
	h := sha256.New()
	var b []byte
	b = append(b, "scstation-audit-v1"...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(r.Prev)))
	b = append(b, r.Prev...)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	// Seconds and nanoseconds apart: UnixNano wraps outside 1678-2262.
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(r.Time.Nanosecond()))
	for _, s := range []string{r.Actor, r.Action, r.User, r.Card, r.Cert, r.Outcome, r.Detail} {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	h.Write(b)
	return h.Sum(nil)
}

// TamperError reports the first place where the log is not what was
// written.
type TamperError struct {
	Seq    uint64
	Reason string
}

func (e *TamperError) Error() string {
	return fmt.Sprintf("audit: record %d: %s", e.Seq, e.Reason)
}

var (
	bucketRecords = []byte("records") // 8-byte big-endian Seq -> JSON Record
	bucketMeta    = []byte("meta")
	metaSchema    = []byte("schema")
	metaHead      = []byte("head") // 8-byte big-endian Seq || Hash of the newest record
)

const schemaVersion = "1"

// Log is an open audit log. It is safe for concurrent use: appends are
// serialised by bbolt's single writer.
type Log struct {
	db *bolt.DB
	// Now is the clock for records appended without a time.
	Now func() time.Time
}

// ErrInUse is returned (wrapped, with the path) by Open when another
// process has the log open.
var ErrInUse = errors.New("audit: the audit log is in use by another process")

// Open opens or creates the audit log at path (mode 0600).
func Open(path string) (*Log, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 200 * time.Millisecond})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w (%s)", ErrInUse, path)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if tx.Bucket(bucketRecords) != nil {
				return &TamperError{Reason: "the meta bucket is missing"}
			}
			for _, b := range [][]byte{bucketRecords, bucketMeta} {
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(metaSchema, []byte(schemaVersion))
		}
		if v := string(meta.Get(metaSchema)); v != schemaVersion {
			return fmt.Errorf("audit: schema version %q is not supported (want %s)", v, schemaVersion)
		}
		if tx.Bucket(bucketRecords) == nil {
			return &TamperError{Reason: "the records bucket is missing"}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Log{db: db, Now: time.Now}, nil
}

// Close closes the file.
func (l *Log) Close() error { return l.db.Close() }

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// head returns the newest record's sequence number and hash (0, nil for an
// empty log).
func head(tx *bolt.Tx) (uint64, []byte, error) {
	v := tx.Bucket(bucketMeta).Get(metaHead)
	if v == nil {
		return 0, nil, nil
	}
	if len(v) != 8+sha256.Size {
		return 0, nil, &TamperError{Reason: "the head record in the meta bucket is damaged"}
	}
	return binary.BigEndian.Uint64(v), bytes.Clone(v[8:]), nil
}

// Append adds a record to the end of the log. It assigns Seq, Prev and Hash
// (and Time, if zero) and returns the record as stored, after the
// transaction has been committed to disk.
func (l *Log) Append(r Record) (Record, error) {
	if r.Action == "" {
		return Record{}, errors.New("audit: a record needs an action")
	}
	if r.Time.IsZero() {
		r.Time = l.Now()
	}
	// UTC and no monotonic reading, so that the stored record reads back
	// exactly as hashed.
	r.Time = r.Time.UTC().Round(0)
	err := l.db.Update(func(tx *bolt.Tx) error {
		seq, prev, err := head(tx)
		if err != nil {
			return err
		}
		// Refuse to extend a chain whose head is not the last record: the
		// new record would hide the damage.
		if err := checkHead(tx, seq); err != nil {
			return err
		}
		recs := tx.Bucket(bucketRecords)
		r.Seq, r.Prev = seq+1, prev
		r.Hash = r.hash()
		v, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		if err := recs.Put(seqKey(r.Seq), v); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaHead, append(seqKey(r.Seq), r.Hash...))
	})
	if err != nil {
		return Record{}, err
	}
	return r, nil
}

func checkHead(tx *bolt.Tx, seq uint64) error {
	k, _ := tx.Bucket(bucketRecords).Cursor().Last()
	if (k == nil) != (seq == 0) || (k != nil && !bytes.Equal(k, seqKey(seq))) {
		return &TamperError{Seq: seq, Reason: "the newest record does not match the chain head; run verify"}
	}
	return nil
}

// Ready reports whether Append can extend the log: the newest record is
// the chain head. It is cheap (it does not walk the chain), so callers
// check it before an action they will have to record.
func (l *Log) Ready() error {
	return l.db.View(func(tx *bolt.Tx) error {
		seq, _, err := head(tx)
		if err != nil {
			return err
		}
		return checkHead(tx, seq)
	})
}

// Query selects records for List. Zero fields match everything.
type Query struct {
	Since, Until time.Time // Time >= Since and Time < Until
	User, Actor  string
	Action, Card string
	// Limit keeps only the newest Limit matching records; 0 means all.
	Limit int
}

func (q *Query) match(r *Record) bool {
	return (q.Since.IsZero() || !r.Time.Before(q.Since)) &&
		(q.Until.IsZero() || r.Time.Before(q.Until)) &&
		(q.User == "" || r.User == q.User) &&
		(q.Actor == "" || r.Actor == q.Actor) &&
		(q.Action == "" || r.Action == q.Action) &&
		(q.Card == "" || r.Card == q.Card)
}

func decode(k, v []byte) (*Record, error) {
	if len(k) != 8 {
		return nil, &TamperError{Reason: fmt.Sprintf("a key of %d bytes in the records bucket", len(k))}
	}
	seq := binary.BigEndian.Uint64(k)
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, &TamperError{Seq: seq, Reason: "cannot decode: " + err.Error()}
	}
	if r.Seq != seq {
		return nil, &TamperError{Seq: seq, Reason: fmt.Sprintf("stored under %d but says it is %d", seq, r.Seq)}
	}
	return &r, nil
}

// Head returns the sequence number and hash of the newest record, as kept
// in the meta bucket (0 and nil for an empty log). Written down elsewhere,
// it anchors the chain: a log rewritten consistently from an earlier point
// no longer reaches it.
func (l *Log) Head() (uint64, []byte, error) {
	var seq uint64
	var hash []byte
	err := l.db.View(func(tx *bolt.Tx) error {
		var err error
		seq, hash, err = head(tx)
		return err
	})
	return seq, hash, err
}

// ErrNotFound is returned by Get for a sequence number the log does not
// have.
var ErrNotFound = errors.New("audit: no such record")

// Get returns the record with sequence number seq. Like List, it does not
// check the chain.
func (l *Log) Get(seq uint64) (Record, error) {
	var r *Record
	err := l.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRecords).Get(seqKey(seq))
		if v == nil {
			return fmt.Errorf("%w: %d", ErrNotFound, seq)
		}
		var err error
		r, err = decode(seqKey(seq), v)
		return err
	})
	if err != nil {
		return Record{}, err
	}
	return *r, nil
}

// List returns the records that match q, in ascending Seq order. It does
// not check the chain (Verify does).
func (l *Log) List(q Query) ([]Record, error) {
	var out []Record
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			r, err := decode(k, v)
			if err != nil {
				return err
			}
			if q.match(r) {
				out = append(out, *r)
				if q.Limit > 0 && len(out) == q.Limit {
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}

// checkNext decodes the stored record k, v and checks that it is the one
// that follows record seq, whose hash is prev.
func checkNext(k, v []byte, seq uint64, prev []byte) (*Record, error) {
	r, err := decode(k, v)
	if err != nil {
		return nil, err
	}
	if r.Seq != seq+1 {
		return nil, &TamperError{Seq: seq + 1, Reason: fmt.Sprintf("missing (the next record is %d)", r.Seq)}
	}
	if !bytes.Equal(r.Prev, prev) {
		return nil, &TamperError{Seq: r.Seq, Reason: "does not follow the record before it (removed or reordered records)"}
	}
	if !bytes.Equal(r.hash(), r.Hash) {
		return nil, &TamperError{Seq: r.Seq, Reason: "its contents do not match its hash (altered)"}
	}
	return r, nil
}

// Verify walks the whole chain and returns the number of records. The
// first inconsistency is returned as a *TamperError: a record whose hash
// does not match its contents (altered), whose Prev does not match the
// record before (removed or reordered), a gap in the sequence (removed), or
// a last record that is not the head kept in the meta bucket (truncated).
func (l *Log) Verify() (int, error) {
	n := 0
	err := l.db.View(func(tx *bolt.Tx) error {
		headSeq, headHash, err := head(tx)
		if err != nil {
			return err
		}
		var prev []byte
		var seq uint64
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			r, err := checkNext(k, v, seq, prev)
			if err != nil {
				return err
			}
			prev, seq = r.Hash, r.Seq
			n++
		}
		if seq != headSeq || !bytes.Equal(prev, headHash) {
			if seq < headSeq {
				return &TamperError{Seq: seq + 1, Reason: fmt.Sprintf("missing: the log ends at %d but its head is %d (truncated)", seq, headSeq)}
			}
			return &TamperError{Seq: seq, Reason: fmt.Sprintf("the last record is not the chain head (%d)", headSeq)}
		}
		return nil
	})
	return n, err
}
