package audit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func clock() func() time.Time {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Minute); return t }
}

// fill creates a log with n records and closes it.
func fill(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Now = clock()
	for i := range n {
		if _, err := l.Append(Record{Actor: "cli:root", Action: "cert.issue", User: fmt.Sprintf("user%d", i), Outcome: OK}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// edit changes the bbolt file directly, as an attacker with the file would.
func edit(t *testing.T, path string, fn func(recs, meta *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketRecords), tx.Bucket(bucketMeta)) }); err != nil {
		t.Fatal(err)
	}
}

func key(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func rewrite(recs *bolt.Bucket, seq uint64, fn func(r map[string]any)) error {
	var m map[string]any
	if err := json.Unmarshal(recs.Get(key(seq)), &m); err != nil {
		return err
	}
	fn(m)
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return recs.Put(key(seq), v)
}

func TestAppendAndVerify(t *testing.T) {
	path := fill(t, 5)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n, err := l.Verify()
	if n != 5 || err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	recs, err := l.List(Query{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || len(r.Hash) != 32 || (i == 0) != (r.Prev == nil) {
			t.Fatalf("record %d: %+v", i, r)
		}
		if i > 0 && string(r.Prev) != string(recs[i-1].Hash) {
			t.Fatalf("record %d does not link to %d", i+1, i)
		}
	}
	r, err := l.Append(Record{Action: "crl.publish", Actor: "station", Outcome: OK})
	if err != nil || r.Seq != 6 || r.Time.IsZero() {
		t.Fatalf("Append = %+v, %v", r, err)
	}
	if _, err := l.Append(Record{Actor: "station"}); err == nil {
		t.Fatal("a record without an action was appended")
	}
	if n, err := l.Verify(); n != 6 || err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestTamperDetected(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(recs, meta *bolt.Bucket) error
		seq  uint64
		want string
	}{
		{"change a field", func(recs, _ *bolt.Bucket) error {
			return rewrite(recs, 3, func(r map[string]any) { r["User"] = "mallory" })
		}, 3, "altered"},
		{"change the outcome", func(recs, _ *bolt.Bucket) error {
			return rewrite(recs, 5, func(r map[string]any) { r["Outcome"] = "failed" })
		}, 5, "altered"},
		{"change the time", func(recs, _ *bolt.Bucket) error {
			return rewrite(recs, 1, func(r map[string]any) { r["Time"] = "2020-01-01T00:00:00Z" })
		}, 1, "altered"},
		{"delete a middle record", func(recs, _ *bolt.Bucket) error { return recs.Delete(key(3)) }, 3, "missing"},
		{"delete a middle record and renumber", func(recs, _ *bolt.Bucket) error {
			for s := uint64(4); s <= 5; s++ {
				v := recs.Get(key(s))
				if err := recs.Put(key(s-1), v); err != nil {
					return err
				}
				if err := rewrite(recs, s-1, func(r map[string]any) { r["Seq"] = s - 1 }); err != nil {
					return err
				}
			}
			return recs.Delete(key(5))
		}, 3, "does not follow"},
		{"delete the last record", func(recs, _ *bolt.Bucket) error { return recs.Delete(key(5)) }, 5, "truncated"},
		{"delete the first record", func(recs, _ *bolt.Bucket) error { return recs.Delete(key(1)) }, 1, "missing"},
		{"delete everything", func(recs, _ *bolt.Bucket) error {
			for s := uint64(1); s <= 5; s++ {
				if err := recs.Delete(key(s)); err != nil {
					return err
				}
			}
			return nil
		}, 1, "truncated"},
		{"swap two records", func(recs, _ *bolt.Bucket) error {
			a, b := append([]byte(nil), recs.Get(key(2))...), append([]byte(nil), recs.Get(key(4))...)
			if err := recs.Put(key(2), b); err != nil {
				return err
			}
			return recs.Put(key(4), a)
		}, 2, "says it is 4"},
		{"swap two records and their numbers", func(recs, _ *bolt.Bucket) error {
			a, b := append([]byte(nil), recs.Get(key(2))...), append([]byte(nil), recs.Get(key(4))...)
			if err := recs.Put(key(2), b); err != nil {
				return err
			}
			if err := recs.Put(key(4), a); err != nil {
				return err
			}
			if err := rewrite(recs, 2, func(r map[string]any) { r["Seq"] = 2 }); err != nil {
				return err
			}
			return rewrite(recs, 4, func(r map[string]any) { r["Seq"] = 4 })
		}, 2, "does not follow"},
		{"append a forged record", func(recs, _ *bolt.Bucket) error {
			v := recs.Get(key(5))
			if err := recs.Put(key(6), append([]byte(nil), v...)); err != nil {
				return err
			}
			return rewrite(recs, 6, func(r map[string]any) { r["Seq"] = 6 })
		}, 6, "does not follow"},
		{"garbage record", func(recs, _ *bolt.Bucket) error { return recs.Put(key(2), []byte("\x00garbage")) }, 2, "cannot decode"},
		{"damaged head", func(_, meta *bolt.Bucket) error { return meta.Put(metaHead, []byte("short")) }, 0, "head"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := fill(t, 5)
			edit(t, path, tc.fn)
			l, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			_, err = l.Verify()
			var te *TamperError
			if !errors.As(err, &te) {
				t.Fatalf("Verify = %v, want a TamperError", err)
			}
			if te.Seq != tc.seq || !strings.Contains(te.Reason, tc.want) {
				t.Errorf("Verify = %v, want record %d: ...%s...", err, tc.seq, tc.want)
			}
		})
	}
}

// A log whose tail was cut off refuses new records rather than hiding the
// cut behind them.
func TestAppendAfterTruncationRefused(t *testing.T) {
	path := fill(t, 3)
	edit(t, path, func(recs, _ *bolt.Bucket) error { return recs.Delete(key(3)) })
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var te *TamperError
	if _, err := l.Append(Record{Action: "cert.issue"}); !errors.As(err, &te) {
		t.Fatalf("Append = %v, want a TamperError", err)
	}
	if _, err := l.Verify(); !errors.As(err, &te) {
		t.Fatalf("Verify = %v", err)
	}
}

func TestList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Now = clock() // 00:01, 00:02, ...
	for _, r := range []Record{
		{Actor: "cli:root", Action: "cert.issue", User: "alice", Cert: "01", Outcome: OK},
		{Actor: "officer:bob", Action: "card.enroll", User: "alice", Card: "serial:1", Outcome: OK},
		{Actor: "officer:bob", Action: "cert.issue", User: "carol", Outcome: Refused},
		{Actor: "cli:root", Action: "card.state", User: "alice", Card: "serial:1", Outcome: OK},
	} {
		if _, err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	at := func(m int) time.Time { return time.Date(2026, 1, 1, 0, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		q    Query
		want []uint64
	}{
		{Query{}, []uint64{1, 2, 3, 4}},
		{Query{User: "alice"}, []uint64{1, 2, 4}},
		{Query{Actor: "officer:bob"}, []uint64{2, 3}},
		{Query{Action: "cert.issue"}, []uint64{1, 3}},
		{Query{Card: "serial:1"}, []uint64{2, 4}},
		{Query{Since: at(2)}, []uint64{2, 3, 4}},
		{Query{Until: at(2)}, []uint64{1}},
		{Query{Since: at(2), Until: at(4)}, []uint64{2, 3}},
		{Query{User: "alice", Limit: 2}, []uint64{2, 4}},
		{Query{User: "dave"}, nil},
	} {
		got, err := l.List(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, r := range got {
			seqs = append(seqs, r.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.q, seqs, tc.want)
		}
	}
}

func TestConcurrentAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				if _, err := l.Append(Record{Action: "pin.failed", Detail: fmt.Sprint(i, j)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n, err := l.Verify(); n != 80 || err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func Example() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	l, err := Open(filepath.Join(dir, "audit.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	l.Append(Record{Actor: "officer:alice", Action: "cert.revoke", User: "bob", Cert: "1f", Outcome: OK, Detail: "keyCompromise"})
	l.Append(Record{Actor: "officer:alice", Action: "crl.publish", Outcome: OK})
	n, err := l.Verify()
	fmt.Println(n, err)
	recs, _ := l.List(Query{User: "bob"})
	for _, r := range recs {
		fmt.Println(r.Seq, r.Actor, r.Action, r.User, r.Cert, r.Outcome, r.Detail)
	}
	// Output:
	// 2 <nil>
	// 1 officer:alice cert.revoke bob 1f ok keyCompromise
}

func TestReady(t *testing.T) {
	path := fill(t, 2)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Ready(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	edit(t, path, func(recs, _ *bolt.Bucket) error { return recs.Delete(key(2)) })
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var te *TamperError
	if err := l.Ready(); !errors.As(err, &te) {
		t.Fatalf("Ready on a truncated log: %v", err)
	}
}

func TestGet(t *testing.T) {
	path := fill(t, 3)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r, err := l.Get(2)
	if err != nil || r.Seq != 2 || r.User != "user1" {
		t.Fatalf("Get(2) = %+v, %v", r, err)
	}
	if _, err := l.Get(4); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(4): %v", err)
	}
}

func TestHead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if seq, hash, err := l.Head(); seq != 0 || hash != nil || err != nil {
		t.Fatalf("empty Head = %d, %x, %v", seq, hash, err)
	}
	r, err := l.Append(Record{Action: "crl.publish"})
	if err != nil {
		t.Fatal(err)
	}
	if seq, hash, err := l.Head(); seq != 1 || string(hash) != string(r.Hash) || err != nil {
		t.Fatalf("Head = %d, %x, %v; want 1, %x", seq, hash, err, r.Hash)
	}
}

// TestHashKnownAnswer pins the canonical encoding: existing logs must keep
// verifying. The value was computed independently (Python hashlib) from the
// encoding described in Record.hash.
func TestHashKnownAnswer(t *testing.T) {
	r := Record{Seq: 7, Time: time.Date(2026, 11, 24, 18, 0, 0, 123456789, time.UTC), Actor: "officer:alice", Action: "cert.revoke",
		User: "bob", Card: "serial:1", Cert: "1f", Outcome: OK, Detail: "keyCompromise", Prev: []byte{1, 2, 3}}
	const want = "d38c5078a610b940ef60388b2eb32e68f8da4fdba355cb67e5f27c004d87caa1"
	if got := fmt.Sprintf("%x", r.hash()); got != want {
		t.Fatalf("hash = %s, want %s", got, want)
	}
	// Moving a byte between adjacent fields changes the hash.
	r2 := r
	r2.User, r2.Card = "bobs", "erial:1"
	if fmt.Sprintf("%x", r2.hash()) == want {
		t.Fatal("field boundaries are not part of the hash")
	}
}
