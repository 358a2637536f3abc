package pki

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// dbEncodeV1 writes a record as JSON, the way version 1 of this program did.
func dbEncodeV1(r *Record) ([]byte, error) {
	return json.Marshal(&dbRecordV1{
		V: dbRecordVersionJSON, DER: r.DER, Template: r.Template, User: r.User, Agent: r.Agent,
		Subject: r.Subject, NotBefore: r.NotBefore, NotAfter: r.NotAfter, IssuedAt: r.IssuedAt,
		Status: r.Status, Reason: r.Reason, RevokedAt: r.RevokedAt,
	})
}

func dbRecordsEqual(a, b *Record) bool {
	return a.Serial.Cmp(b.Serial) == 0 && bytes.Equal(a.DER, b.DER) && a.Template == b.Template &&
		a.User == b.User && a.Agent == b.Agent && a.Subject == b.Subject &&
		a.NotBefore.Equal(b.NotBefore) && a.NotAfter.Equal(b.NotAfter) && a.IssuedAt.Equal(b.IssuedAt) &&
		a.Status == b.Status && a.Reason == b.Reason && a.RevokedAt.Equal(b.RevokedAt)
}

func TestDBRecordEncoding(t *testing.T) {
	revoked := dbTestRecord(7, "bob", "smartcard-logon", dbBase)
	revoked.Agent, revoked.Status, revoked.Reason = "officer", StatusRevoked, ReasonKeyCompromise
	revoked.RevokedAt = time.Date(2031, 2, 3, 4, 5, 6, 789, time.FixedZone("x", 3600))
	hold := dbTestRecord(8, "Ünïcödé", "", dbBase)
	hold.Status, hold.Reason, hold.RevokedAt = StatusOnHold, ReasonCertificateHold, dbBase.Add(time.Nanosecond)
	for _, r := range []*Record{dbTestRecord(1, "alice", "t", dbBase), revoked, hold} {
		if r.Status == "" {
			r.Status = StatusValid
		}
		for _, enc := range []func(*Record) ([]byte, error){dbEncode, dbEncodeV1} {
			v, err := enc(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := dbDecode(r.Serial.Bytes(), v)
			if err != nil {
				t.Fatal(err)
			}
			if !dbRecordsEqual(got, r) {
				t.Errorf("decoded\n%+v\nwant\n%+v", got, r)
			}
			// The record must not alias the value (bbolt's memory).
			for i := range v {
				v[i] = 0xee
			}
			if !dbRecordsEqual(got, r) {
				t.Error("the decoded record shares memory with the value")
			}
		}
	}
	for _, bad := range []*Record{
		{Serial: big.NewInt(1), DER: []byte{1}, Status: "weird"},
		{Serial: big.NewInt(1), DER: []byte{1}, Status: StatusRevoked, Reason: -1},
	} {
		if _, err := dbEncode(bad); err == nil {
			t.Errorf("dbEncode(%+v) succeeded", bad)
		}
	}
}

// TestDBReadsVersion1 opens a database whose records were written as JSON
// (version 1), as existing data directories hold them: it reads, lists,
// revokes and adds records as usual.
func TestDBReadsVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certs.db")
	old := []*Record{dbTestRecord(1, "alice", "t", dbBase), dbTestRecord(2, "bob", "t", dbBase.Add(time.Hour))}
	dbRawUpdate(t, path, func(tx *bolt.Tx) error {
		b, err := dbTxBuckets(tx)
		if err != nil {
			return err
		}
		for _, r := range old {
			r.Status = StatusValid
			key := r.Serial.Bytes()
			v, err := dbEncodeV1(r)
			if err != nil {
				return err
			}
			for _, p := range []struct {
				b    *bolt.Bucket
				k, v []byte
			}{{b.certs, key, v}, {b.byUser, dbUserKey(r.User, key), nil}, {b.byStatus, dbStatusKey(r.Status, key), nil}, {b.byExpiry, dbExpiryKey(r.NotAfter, key), nil}} {
				if err := p.b.Put(p.k, p.v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, r := range old {
		got, err := db.Get(r.Serial)
		if err != nil || !dbRecordsEqual(got, r) {
			t.Errorf("Get(%v) = %+v, %v", r.Serial, got, err)
		}
	}
	if l, err := db.List(Query{User: "bob"}); err != nil || len(l) != 1 || !dbRecordsEqual(l[0], old[1]) {
		t.Errorf("List(bob) = %v, %v", l, err)
	}
	if _, err := db.Revoke(big.NewInt(1), ReasonSuperseded, dbBase); err != nil {
		t.Fatal(err)
	}
	if err := db.Record(dbTestRecord(3, "carol", "t", dbBase)); err != nil {
		t.Fatal(err)
	}
	// A v1 record with the same DER is the same certificate.
	if err := db.Record(old[1]); err != nil {
		t.Errorf("recording the same certificate again: %v", err)
	}
	dup := dbTestRecord(2, "bob", "t", dbBase)
	dup.DER = []byte("other")
	if err := db.Record(dup); !errors.Is(err, ErrSerialExists) {
		t.Errorf("recording another certificate with a v1 record's serial: %v", err)
	}
	if rev, err := db.Revoked(); err != nil || len(rev) != 1 || rev[0].Reason != ReasonSuperseded {
		t.Errorf("Revoked() = %v, %v", rev, err)
	}
	dbCheckIndexes(t, db)
}

// FuzzDBDecode feeds arbitrary values to the record decoder: it never
// panics, and what it accepts encodes (as version 2) and decodes again to
// the same record.
func FuzzDBDecode(f *testing.F) {
	r := dbTestRecord(1, "alice", "smartcard-logon", dbBase)
	r.Status = StatusValid
	v2, _ := dbEncode(r)
	v1, _ := dbEncodeV1(r)
	f.Add(v2)
	f.Add(v1)
	f.Add([]byte{2, 1, 0, 1, 0x30, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, value []byte) {
		rec, err := dbDecode([]byte{1}, value)
		if err != nil {
			if !errors.Is(err, ErrCorruptDatabase) {
				t.Fatalf("error %v does not wrap ErrCorruptDatabase", err)
			}
			return
		}
		enc, err := dbEncode(rec)
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
		again, err := dbDecode([]byte{1}, enc)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !dbRecordsEqual(rec, again) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, again)
		}
	})
}
