package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

func dbOpenTest(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "certs.db")
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// dbBase is a fixed time so that test records are deterministic.
var dbBase = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// dbTestRecord makes a record with fake DER derived from the serial.
func dbTestRecord(serial int64, user, template string, notAfter time.Time) *Record {
	return &Record{
		Serial:    big.NewInt(serial),
		DER:       fmt.Appendf(nil, "DER-%d-%s", serial, strings.Repeat("x", 600)),
		Template:  template,
		User:      user,
		Subject:   "CN=" + user,
		NotBefore: notAfter.Add(-365 * 24 * time.Hour),
		NotAfter:  notAfter,
		IssuedAt:  notAfter.Add(-365 * 24 * time.Hour),
	}
}

func dbSerialsOf(recs []*Record) []int64 {
	var out []int64
	for _, r := range recs {
		out = append(out, r.Serial.Int64())
	}
	return out
}

// dbCheckIndexes verifies that the index buckets hold exactly the entries
// the records imply.
func dbCheckIndexes(t *testing.T, db *DB) {
	t.Helper()
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b, err := dbTxBuckets(tx)
		if err != nil {
			return err
		}
		want := map[string]map[string]bool{"by-user": {}, "by-status": {}, "by-expiry": {}, "revoked": {}}
		err = b.certs.ForEach(func(k, v []byte) error {
			r, err := dbDecode(k, v)
			if err != nil {
				return err
			}
			want["by-user"][string(dbUserKey(r.User, k))] = true
			want["by-status"][string(dbStatusKey(r.Status, k))] = true
			want["by-expiry"][string(dbExpiryKey(r.NotAfter, k))] = true
			if r.Status != StatusValid {
				want["revoked"][string(k)] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		for name, keys := range want {
			got := map[string]bool{}
			tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
				got[string(k)] = true
				return nil
			})
			if len(got) != len(keys) {
				t.Errorf("index %s has %d entries, want %d", name, len(got), len(keys))
			}
			for k := range keys {
				if !got[k] {
					t.Errorf("index %s lacks %x", name, k)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestParseRevocationReason(t *testing.T) {
	tests := []struct {
		in   string
		want RevocationReason
		err  bool
	}{
		{"unspecified", ReasonUnspecified, false},
		{"keyCompromise", ReasonKeyCompromise, false},
		{"key-compromise", ReasonKeyCompromise, false},
		{"KEY_COMPROMISE", ReasonKeyCompromise, false},
		{"cACompromise", ReasonCACompromise, false},
		{"ca-compromise", ReasonCACompromise, false},
		{"affiliationChanged", ReasonAffiliationChanged, false},
		{"superseded", ReasonSuperseded, false},
		{"Cessation of Operation", ReasonCessationOfOperation, false},
		{"certificateHold", ReasonCertificateHold, false},
		{"hold", ReasonCertificateHold, false},
		{"removeFromCRL", ReasonRemoveFromCRL, false},
		{"privilege-withdrawn", ReasonPrivilegeWithdrawn, false},
		{"aACompromise", ReasonAACompromise, false},
		{"1", ReasonKeyCompromise, false},
		{" 6 ", ReasonCertificateHold, false},
		{"10", ReasonAACompromise, false},
		{"7", 0, true},
		{"11", 0, true},
		{"-1", 0, true},
		{"", 0, true},
		{"stolen", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseRevocationReason(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseRevocationReason(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	for r := RevocationReason(-1); r <= 11; r++ {
		s := r.String()
		got, err := ParseRevocationReason(s)
		if r.defined() != (err == nil) || (err == nil && got != r) {
			t.Errorf("round trip of %d via %q: %v, %v", int(r), s, got, err)
		}
	}
	if s := ReasonKeyCompromise.String(); s != "keyCompromise" {
		t.Errorf("String = %q", s)
	}
	if s := RevocationReason(7).String(); s != "RevocationReason(7)" {
		t.Errorf("String = %q", s)
	}
}

func TestDBRecordGet(t *testing.T) {
	db, _ := dbOpenTest(t)

	// A real certificate, for Certificate().
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x7f01), Subject: pkix.Name{CommonName: "alice"}, NotBefore: dbBase, NotAfter: dbBase.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	in := &Record{
		Serial: big.NewInt(0x7f01), DER: der, Template: "smartcard", User: "alice", Agent: "agent1",
		Subject: "CN=alice", NotBefore: dbBase, NotAfter: dbBase.Add(time.Hour), IssuedAt: dbBase,
		Status: StatusRevoked, Reason: ReasonKeyCompromise, RevokedAt: dbBase, // ignored
	}
	if err := db.Record(in); err != nil {
		t.Fatal(err)
	}
	if in.Status != StatusRevoked {
		t.Error("Record modified its argument")
	}
	got, err := db.Get(big.NewInt(0x7f01))
	if err != nil {
		t.Fatal(err)
	}
	want := *in
	want.Status, want.Reason, want.RevokedAt = StatusValid, 0, time.Time{}
	if got.Serial.Cmp(want.Serial) != 0 || !bytes.Equal(got.DER, want.DER) || got.Template != want.Template ||
		got.User != want.User || got.Agent != want.Agent || got.Subject != want.Subject ||
		!got.NotBefore.Equal(want.NotBefore) || !got.NotAfter.Equal(want.NotAfter) || !got.IssuedAt.Equal(want.IssuedAt) ||
		got.Status != want.Status || got.Reason != want.Reason || !got.RevokedAt.IsZero() {
		t.Errorf("Get = %+v\nwant %+v", got, want)
	}
	cert, err := got.Certificate()
	if err != nil || cert.Subject.CommonName != "alice" {
		t.Errorf("Certificate() = %v, %v", cert, err)
	}

	// Zero IssuedAt is filled in.
	r := dbTestRecord(2, "bob", "t", dbBase)
	r.IssuedAt = time.Time{}
	if err := db.Record(r); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Get(big.NewInt(2)); got == nil || time.Since(got.IssuedAt) > time.Minute {
		t.Errorf("IssuedAt not set: %+v", got)
	}

	exists := []struct {
		serial *big.Int
		want   bool
	}{
		{big.NewInt(0x7f01), true},
		{big.NewInt(2), true},
		{big.NewInt(3), false},
	}
	for _, tt := range exists {
		if got, err := db.SerialExists(tt.serial); err != nil || got != tt.want {
			t.Errorf("SerialExists(%v) = %v, %v", tt.serial, got, err)
		}
	}
	if _, err := db.Get(big.NewInt(3)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}

	bad := []struct {
		name string
		r    *Record
	}{
		{"nil serial", &Record{DER: []byte("x")}},
		{"zero serial", &Record{Serial: big.NewInt(0), DER: []byte("x")}},
		{"negative serial", &Record{Serial: big.NewInt(-5), DER: []byte("x")}},
		{"no DER", &Record{Serial: big.NewInt(5)}},
		{"NUL in user", &Record{Serial: big.NewInt(5), DER: []byte("x"), User: "a\x00b"}},
	}
	for _, tt := range bad {
		if err := db.Record(tt.r); err == nil {
			t.Errorf("%s: Record succeeded", tt.name)
		}
	}
	for _, s := range []*big.Int{nil, big.NewInt(0), big.NewInt(-1)} {
		if _, err := db.Get(s); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%v) = %v, want an invalid-serial error", s, err)
		}
	}
	dbCheckIndexes(t, db)
}

func TestDBRecordDuplicate(t *testing.T) {
	db, _ := dbOpenTest(t)
	r := dbTestRecord(42, "alice", "t", dbBase)
	if err := db.Record(r); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		r    *Record
		want error
	}{
		{"same DER again", dbTestRecord(42, "alice", "t", dbBase), nil},
		{"same DER, other metadata", dbTestRecord(42, "bob", "u", dbBase.Add(time.Hour)), nil},
		{"different DER", &Record{Serial: big.NewInt(42), DER: []byte("other"), User: "mallory"}, ErrSerialExists},
	}
	for _, tt := range tests {
		if err := db.Record(tt.r); !errors.Is(err, tt.want) {
			t.Errorf("%s: Record = %v, want %v", tt.name, err, tt.want)
		}
	}
	got, err := db.Get(big.NewInt(42))
	if err != nil || got.User != "alice" || !bytes.Equal(got.DER, r.DER) {
		t.Errorf("record changed: %+v, %v", got, err)
	}
	dbCheckIndexes(t, db)
}

// TestDBRecordBatchConflicts records the same serial from many goroutines at
// once, so that the calls share a batch: with the same DER all succeed, and
// with different DER exactly one does and the batch's other work survives
// the rollback and rerun of the failing call.
func TestDBRecordBatchConflicts(t *testing.T) {
	db, _ := dbOpenTest(t)
	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 {
				errs[i] = db.Record(dbTestRecord(1, "same", "t", dbBase)) // identical
			} else {
				r := dbTestRecord(2, "diff", "t", dbBase)
				r.DER = fmt.Appendf(nil, "DER-%d", i) // conflicting
				errs[i] = db.Record(r)
			}
			// unrelated records in the same batches
			if err := db.Record(dbTestRecord(int64(100+i), "other", "t", dbBase)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case i%2 == 0 && err != nil:
			t.Errorf("identical Record %d: %v", i, err)
		case i%2 == 1 && err == nil:
			ok++
		case i%2 == 1 && !errors.Is(err, ErrSerialExists):
			t.Errorf("conflicting Record %d: %v", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d conflicting Records succeeded, want 1", ok)
	}
	all, err := db.List(Query{})
	if err != nil || len(all) != 2+n {
		t.Errorf("List = %d records, %v; want %d", len(all), err, 2+n)
	}
	dbCheckIndexes(t, db)
}

func TestDBList(t *testing.T) {
	db, _ := dbOpenTest(t)
	recs := []*Record{
		dbTestRecord(0x10, "alice", "smartcard", dbBase.Add(3*time.Hour)),
		dbTestRecord(0x01, "alice", "agent", dbBase.Add(1*time.Hour)),
		dbTestRecord(0x0200, "bob", "smartcard", dbBase.Add(2*time.Hour)), // serial bytes 02 00 sort before 10
		dbTestRecord(0x20, "carol", "smartcard", dbBase.Add(5*time.Hour)),
		dbTestRecord(0x30, "bob", "smartcard", dbBase.Add(4*time.Hour)),
		dbTestRecord(0x40, "alice", "smartcard", dbBase.Add(2*time.Hour)), // same second as 0x0200
	}
	// A user name that has another as a prefix must not leak into it.
	recs = append(recs, dbTestRecord(0x50, "alice2", "smartcard", dbBase))
	for _, r := range recs {
		if err := db.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Revoke(big.NewInt(0x20), ReasonKeyCompromise, dbBase); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Revoke(big.NewInt(0x30), ReasonCertificateHold, dbBase); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    Query
		want []int64
	}{
		{"all", Query{}, []int64{0x01, 0x0200, 0x10, 0x20, 0x30, 0x40, 0x50}},
		{"all, limit", Query{Limit: 3}, []int64{0x01, 0x0200, 0x10}},
		{"user", Query{User: "alice"}, []int64{0x01, 0x10, 0x40}},
		{"user, limit", Query{User: "alice", Limit: 2}, []int64{0x01, 0x10}},
		{"user prefix", Query{User: "alic"}, nil},
		{"unknown user", Query{User: "dave"}, nil},
		{"valid", Query{Status: StatusValid}, []int64{0x01, 0x0200, 0x10, 0x40, 0x50}},
		{"revoked", Query{Status: StatusRevoked}, []int64{0x20}},
		{"hold", Query{Status: StatusOnHold}, []int64{0x30}},
		{"template", Query{Template: "agent"}, []int64{0x01}},
		{"template, limit", Query{Template: "smartcard", Limit: 2}, []int64{0x0200, 0x10}},
		{"expiring", Query{ExpiringBefore: dbBase.Add(3 * time.Hour)}, []int64{0x50, 0x01, 0x0200, 0x40}},
		{"expiring, limit", Query{ExpiringBefore: dbBase.Add(3 * time.Hour), Limit: 3}, []int64{0x50, 0x01, 0x0200}},
		{"expiring, sub-second", Query{ExpiringBefore: dbBase.Add(3*time.Hour + time.Millisecond)}, []int64{0x50, 0x01, 0x0200, 0x40, 0x10}},
		{"expiring, nothing", Query{ExpiringBefore: dbBase}, nil},
		{"user and expiring", Query{User: "alice", ExpiringBefore: dbBase.Add(10 * time.Hour)}, []int64{0x01, 0x40, 0x10}},
		{"user, expiring, limit", Query{User: "alice", ExpiringBefore: dbBase.Add(10 * time.Hour), Limit: 2}, []int64{0x01, 0x40}},
		{"user and status", Query{User: "bob", Status: StatusValid}, []int64{0x0200}},
		{"status and expiring", Query{Status: StatusValid, ExpiringBefore: dbBase.Add(10 * time.Hour)}, []int64{0x50, 0x01, 0x0200, 0x40, 0x10}},
		{"status and template", Query{Status: StatusRevoked, Template: "agent"}, nil},
		{"all filters", Query{User: "alice", Status: StatusValid, Template: "smartcard", ExpiringBefore: dbBase.Add(3 * time.Hour)}, []int64{0x40}},
	}
	for _, tt := range tests {
		got, err := db.List(tt.q)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !slices.Equal(dbSerialsOf(got), tt.want) {
			t.Errorf("%s: List = %x, want %x", tt.name, dbSerialsOf(got), tt.want)
		}
	}
	for _, q := range []Query{{Status: "expired"}, {User: "a\x00"}} {
		if _, err := db.List(q); err == nil {
			t.Errorf("List(%+v) succeeded", q)
		}
	}
	rev, err := db.Revoked()
	if err != nil || !slices.Equal(dbSerialsOf(rev), []int64{0x20, 0x30}) {
		t.Errorf("Revoked = %x, %v", dbSerialsOf(rev), err)
	}
	dbCheckIndexes(t, db)
}

func TestDBRevocation(t *testing.T) {
	type step struct {
		op     string // "revoke" or "release"
		reason RevocationReason
		err    error // nil, a sentinel, or errAny
		status Status
	}
	errAny := errors.New("any error")
	tests := []struct {
		name  string
		steps []step
	}{
		{"revoke", []step{{"revoke", ReasonKeyCompromise, nil, StatusRevoked}}},
		{"revoke unspecified", []step{{"revoke", ReasonUnspecified, nil, StatusRevoked}}},
		{"revoke twice", []step{
			{"revoke", ReasonSuperseded, nil, StatusRevoked},
			{"revoke", ReasonKeyCompromise, ErrAlreadyRevoked, StatusRevoked},
		}},
		{"revoked then hold", []step{
			{"revoke", ReasonSuperseded, nil, StatusRevoked},
			{"revoke", ReasonCertificateHold, ErrAlreadyRevoked, StatusRevoked},
		}},
		{"hold, release", []step{
			{"revoke", ReasonCertificateHold, nil, StatusOnHold},
			{"release", 0, nil, StatusValid},
			{"release", 0, ErrNotOnHold, StatusValid},
		}},
		{"hold twice", []step{
			{"revoke", ReasonCertificateHold, nil, StatusOnHold},
			{"revoke", ReasonCertificateHold, ErrAlreadyRevoked, StatusOnHold},
		}},
		{"hold to permanent", []step{
			{"revoke", ReasonCertificateHold, nil, StatusOnHold},
			{"revoke", ReasonKeyCompromise, nil, StatusRevoked},
			{"release", 0, ErrNotOnHold, StatusRevoked},
		}},
		{"hold, release, revoke", []step{
			{"revoke", ReasonCertificateHold, nil, StatusOnHold},
			{"release", 0, nil, StatusValid},
			{"revoke", ReasonAffiliationChanged, nil, StatusRevoked},
		}},
		{"release valid", []step{{"release", 0, ErrNotOnHold, StatusValid}}},
		{"removeFromCRL", []step{{"revoke", ReasonRemoveFromCRL, errAny, StatusValid}}},
		{"undefined reason 7", []step{{"revoke", 7, errAny, StatusValid}}},
		{"undefined reason -1", []step{{"revoke", -1, errAny, StatusValid}}},
	}
	db, _ := dbOpenTest(t)
	for i, tt := range tests {
		serial := big.NewInt(int64(1000 + i))
		if err := db.Record(dbTestRecord(serial.Int64(), "u", "t", dbBase)); err != nil {
			t.Fatal(err)
		}
		for j, s := range tt.steps {
			at := dbBase.Add(time.Duration(j+1) * time.Minute)
			var rec *Record
			var err error
			if s.op == "revoke" {
				rec, err = db.Revoke(serial, s.reason, at)
			} else {
				rec, err = db.Release(serial)
			}
			switch {
			case s.err == errAny && err == nil, s.err != errAny && !errors.Is(err, s.err):
				t.Errorf("%s step %d: %s = %v, want %v", tt.name, j, s.op, err, s.err)
			case err == nil && rec.Status != s.status:
				t.Errorf("%s step %d: returned status %s, want %s", tt.name, j, rec.Status, s.status)
			}
			got, gerr := db.Get(serial)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if got.Status != s.status {
				t.Errorf("%s step %d: stored status %s, want %s", tt.name, j, got.Status, s.status)
			}
			if err == nil {
				switch {
				case s.op == "revoke" && (got.Reason != s.reason || !got.RevokedAt.Equal(at)):
					t.Errorf("%s step %d: reason %v at %v, want %v at %v", tt.name, j, got.Reason, got.RevokedAt, s.reason, at)
				case s.op == "release" && (got.Reason != 0 || !got.RevokedAt.IsZero()):
					t.Errorf("%s step %d: released record keeps %v at %v", tt.name, j, got.Reason, got.RevokedAt)
				}
			}
		}
	}
	for _, op := range []func(*big.Int) error{
		func(s *big.Int) error { _, err := db.Revoke(s, ReasonKeyCompromise, dbBase); return err },
		func(s *big.Int) error { _, err := db.Release(s); return err },
	} {
		if err := op(big.NewInt(1)); !errors.Is(err, ErrNotFound) {
			t.Errorf("on a missing serial: %v, want ErrNotFound", err)
		}
	}
	// Zero time means now.
	if rec, err := db.Revoke(big.NewInt(1000+int64(len(tests)-1)), ReasonSuperseded, time.Time{}); err != nil || time.Since(rec.RevokedAt) > time.Minute {
		t.Errorf("Revoke at zero time = %+v, %v", rec, err)
	}
	dbCheckIndexes(t, db)
}

func TestDBNextCRLNumber(t *testing.T) {
	db, path := dbOpenTest(t)
	for want := int64(1); want <= 3; want++ {
		n, err := db.NextCRLNumber()
		if err != nil || n.Int64() != want {
			t.Fatalf("NextCRLNumber = %v, %v; want %d", n, err, want)
		}
	}
	db.Close()
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.NextCRLNumber(); err != nil || n.Int64() != 4 {
		t.Errorf("after reopen NextCRLNumber = %v, %v; want 4", n, err)
	}
}

func TestOpenDBInUse(t *testing.T) {
	db, path := dbOpenTest(t)
	start := time.Now()
	db2, err := OpenDB(path)
	if err == nil {
		db2.Close()
		t.Fatal("second OpenDB succeeded")
	}
	if !errors.Is(err, ErrDatabaseInUse) || !strings.Contains(err.Error(), path) {
		t.Errorf("second OpenDB = %v, want ErrDatabaseInUse naming %s", err, path)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("second OpenDB took %v", d)
	}
	db.Close()
	db2, err = OpenDB(path)
	if err != nil {
		t.Fatalf("OpenDB after Close: %v", err)
	}
	db2.Close()
}

func TestOpenDBErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		setup func(path string)
	}{
		{"not a database", func(path string) {
			dbWriteFile(t, path, bytes.Repeat([]byte("garbage!"), 1024))
		}},
		{"future schema", func(path string) {
			dbRawUpdate(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket(dbBucketMeta).Put(dbMetaSchema, []byte("2"))
			})
		}},
		{"missing directory", nil},
	}
	for i, tt := range tests {
		path := filepath.Join(dir, fmt.Sprint(i), "certs.db")
		if tt.setup != nil {
			path = filepath.Join(dir, fmt.Sprint(i))
			tt.setup(path)
		}
		if db, err := OpenDB(path); err == nil {
			db.Close()
			t.Errorf("%s: OpenDB succeeded", tt.name)
		} else if errors.Is(err, ErrDatabaseInUse) {
			t.Errorf("%s: OpenDB = %v", tt.name, err)
		}
	}
}

func dbWriteFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// dbRawUpdate opens path as a fresh certificate database, closes it, and
// then runs fn on the bare bolt file, to plant corruption.
func dbRawUpdate(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestDBCorruption(t *testing.T) {
	good := dbTestRecord(1, "alice", "t", dbBase)
	good.Status = StatusValid
	goodValue, err := dbEncode(good)
	if err != nil {
		t.Fatal(err)
	}
	put := func(bucket string, k, v []byte) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Put(k, v) }
	}
	tests := []struct {
		name string
		fn   func(*bolt.Tx) error
	}{
		{"garbage value", put("certs", []byte{1}, []byte("\x00\xff garbage"))},
		{"truncated value", put("certs", []byte{1}, goodValue[:len(goodValue)/2])},
		{"empty value", put("certs", []byte{1}, []byte{})},
		{"wrong types", put("certs", []byte{1}, []byte(`{"v":1,"der":12,"status":[]}`))},
		{"future version", put("certs", []byte{1}, []byte(`{"v":9,"der":"AA==","status":"valid"}`))},
		{"future binary version", put("certs", []byte{1}, append([]byte{3}, goodValue[1:]...))},
		{"unknown binary status", put("certs", []byte{1}, append([]byte{2, 9}, goodValue[2:]...))},
		{"trailing bytes", put("certs", []byte{1}, append(slices.Clone(goodValue), 0))},
		{"huge length", put("certs", []byte{1}, []byte{2, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1})},
		{"unknown status", put("certs", []byte{1}, []byte(`{"v":1,"der":"AA==","status":"weird"}`))},
		{"no DER", put("certs", []byte{1}, []byte(`{"v":1,"status":"valid"}`))},
		{"bad reason", put("certs", []byte{1}, []byte(`{"v":1,"der":"AA==","status":"revoked","reason":7}`))},
		{"dangling user index", put("by-user", dbUserKey("alice", []byte{1}), []byte{})},
		{"dangling status index", put("by-status", dbStatusKey(StatusValid, []byte{1}), []byte{})},
		{"short expiry index", put("by-expiry", []byte{0, 0, 1}, []byte{})},
		{"dangling revoked index", put("revoked", []byte{1}, []byte{})},
		{"nested bucket", func(tx *bolt.Tx) error {
			_, err := tx.Bucket(dbBucketCerts).CreateBucket([]byte{1})
			return err
		}},
		{"revoked index lists a valid certificate", func(tx *bolt.Tx) error {
			if err := tx.Bucket(dbBucketCerts).Put([]byte{1}, goodValue); err != nil {
				return err
			}
			return tx.Bucket(dbBucketRevoked).Put([]byte{1}, []byte{})
		}},
		{"missing index bucket", func(tx *bolt.Tx) error { return tx.DeleteBucket(dbBucketByUser) }},
		{"missing meta bucket", func(tx *bolt.Tx) error { return tx.DeleteBucket(dbBucketMeta) }},
		{"bad schema version", put("meta", dbMetaSchema, []byte("one"))},
	}
	queries := []Query{{}, {User: "alice"}, {Status: StatusValid}, {ExpiringBefore: dbBase.Add(time.Hour)}}
	for i, tt := range tests {
		path := filepath.Join(t.TempDir(), fmt.Sprint(i))
		dbRawUpdate(t, path, tt.fn)
		db, err := OpenDB(path)
		if errors.Is(err, ErrCorruptDatabase) {
			continue // noticed at once
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		// Every read either succeeds or returns an error; none panics.
		// At least one of them must notice.
		var errs []error
		_, err = db.Get(big.NewInt(1))
		errs = append(errs, err)
		for _, q := range queries {
			_, err := db.List(q)
			errs = append(errs, err)
		}
		_, err = db.Revoked()
		errs = append(errs, err)
		_, err = db.Revoke(big.NewInt(1), ReasonKeyCompromise, dbBase)
		errs = append(errs, err)
		errs = append(errs, db.Record(dbTestRecord(1, "alice", "t", dbBase)))
		noticed := false
		for _, err := range errs {
			if err != nil && !errors.Is(err, ErrNotFound) {
				noticed = true
				// (bolt reports a record key holding a bucket itself.)
				if !errors.Is(err, ErrCorruptDatabase) && !errors.Is(err, bolterrors.ErrIncompatibleValue) {
					t.Errorf("%s: error %v does not wrap ErrCorruptDatabase", tt.name, err)
				}
			}
		}
		if !noticed {
			t.Errorf("%s: corruption not reported: %v", tt.name, errs)
		}
		db.Close()
	}
}

func TestDBDurability(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certs.db")
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []*Record
	for i := range 20 {
		r := dbTestRecord(int64(i+1), fmt.Sprintf("user%d", i%3), "t", dbBase.Add(time.Duration(i)*time.Hour))
		if err := db.Record(r); err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}
	if _, err := db.Revoke(big.NewInt(5), ReasonKeyCompromise, dbBase); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Revoke(big.NewInt(6), ReasonCertificateHold, dbBase); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NextCRLNumber(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, w := range want {
		got, err := db.Get(w.Serial)
		if err != nil || !bytes.Equal(got.DER, w.DER) || got.User != w.User || !got.NotAfter.Equal(w.NotAfter) {
			t.Errorf("serial %v after reopen: %+v, %v", w.Serial, got, err)
		}
	}
	rev, err := db.Revoked()
	if err != nil || !slices.Equal(dbSerialsOf(rev), []int64{5, 6}) || rev[0].Reason != ReasonKeyCompromise || rev[1].Status != StatusOnHold {
		t.Errorf("Revoked after reopen = %x, %v", dbSerialsOf(rev), err)
	}
	if n, err := db.NextCRLNumber(); err != nil || n.Int64() != 2 {
		t.Errorf("NextCRLNumber after reopen = %v, %v", n, err)
	}
	dbCheckIndexes(t, db)
}

func TestDBConcurrentRecord(t *testing.T) {
	db, _ := dbOpenTest(t)
	const workers, each = 32, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				serial := int64(w*each + i + 1)
				if err := db.Record(dbTestRecord(serial, fmt.Sprintf("user%d", w), "t", dbBase.Add(time.Duration(serial)*time.Second))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// Readers run alongside the writers.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.List(Query{User: "user3"}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()

	all, err := db.List(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != workers*each {
		t.Fatalf("List = %d records, want %d", len(all), workers*each)
	}
	seen := map[int64]bool{}
	for _, r := range all {
		if seen[r.Serial.Int64()] {
			t.Errorf("duplicate serial %v", r.Serial)
		}
		seen[r.Serial.Int64()] = true
	}
	for s := int64(1); s <= workers*each; s++ {
		if !seen[s] {
			t.Errorf("serial %d missing", s)
		}
	}
	for w := range workers {
		got, err := db.List(Query{User: fmt.Sprintf("user%d", w)})
		if err != nil || len(got) != each {
			t.Errorf("user%d: %d records, %v", w, len(got), err)
		}
	}
	dbCheckIndexes(t, db)
}

// dbBenchRecord returns a record like the CA's: a random 127-bit serial
// (or, with timeOrdered, 64 bits of issuance time and 64 random bits),
// 700 bytes of DER, one of 5000 users and a NotAfter a year from now.
func dbBenchRecord(timeOrdered bool) *Record {
	s := make([]byte, 16)
	rand.Read(s)
	now := time.Now()
	if timeOrdered {
		binary.BigEndian.PutUint64(s, uint64(now.UnixNano()))
	}
	s[0] = s[0]&0x7f | 0x01
	der := make([]byte, 700)
	rand.Read(der)
	return &Record{
		Serial: new(big.Int).SetBytes(s), DER: der, Template: "smartcard", User: fmt.Sprintf("user%04d", mrand.IntN(5000)),
		Subject: "CN=someone,OU=People,DC=example,DC=org", NotBefore: now, NotAfter: now.Add(365 * 24 * time.Hour), IssuedAt: now,
	}
}

// BenchmarkDBRecord records from one goroutine: every call waits for its own
// commit (an idle committer commits at once).
func BenchmarkDBRecord(b *testing.B) {
	db, _ := dbOpenTest(b)
	for b.Loop() {
		if err := db.Record(dbBenchRecord(false)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDBRecordParallel records from 32 goroutines per CPU, as a busy CA
// would, so that calls share batches.
func BenchmarkDBRecordParallel(b *testing.B) {
	db, _ := dbOpenTest(b)
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := db.Record(dbBenchRecord(false)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDBIssue compares signing P-256 certificates alone with signing
// and recording each, from 32 goroutines per CPU: the figure that matters
// is the ratio of the rates. The last variant uses time-ordered serials,
// which turn most of the random B+tree inserts into appends.
func BenchmarkDBIssue(b *testing.B) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: dbBase, NotAfter: dbBase.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		b.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		b.Fatal(err)
	}
	userKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	// sign does what the CA does per certificate: sign (which verifies the
	// signature) and parse the result.
	sign := func(timeOrdered bool) (*Record, error) {
		r := dbBenchRecord(timeOrdered)
		tmpl := &x509.Certificate{SerialNumber: r.Serial, Subject: pkix.Name{CommonName: r.User}, NotBefore: r.NotBefore, NotAfter: r.NotAfter,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &userKey.PublicKey, caKey)
		if err != nil {
			return nil, err
		}
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, err
		}
		r.DER = der
		return r, nil
	}
	for _, bm := range []struct {
		name        string
		record      bool
		timeOrdered bool
	}{
		{"sign", false, false},
		{"sign+record", true, false},
		{"sign+record/time-ordered-serials", true, true},
	} {
		b.Run(bm.name, func(b *testing.B) {
			var db *DB
			if bm.record {
				db, _ = dbOpenTest(b)
			}
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r, err := sign(bm.timeOrdered)
					if err == nil && bm.record {
						err = db.Record(r)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
