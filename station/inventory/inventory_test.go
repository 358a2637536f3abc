package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "inventory.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// clock is a deterministic clock that moves one second per call.
func clock() func() time.Time {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

func TestCanTransitionEveryPair(t *testing.T) {
	want := map[[2]State]bool{
		{Uninitialized, Active}:     true,
		{Uninitialized, Terminated}: true,
		{Active, Suspended}:         true,
		{Suspended, Active}:         true,
		{Active, Revoked}:           true,
		{Suspended, Revoked}:        true,
		{Active, Terminated}:        true,
		{Suspended, Terminated}:     true,
		{Revoked, Terminated}:       true,
	}
	all := append(slices.Clone(States), "", "bogus")
	for _, from := range all {
		for _, to := range all {
			if got := CanTransition(from, to); got != want[[2]State{from, to}] {
				t.Errorf("CanTransition(%q, %q) = %v, want %v", from, to, got, !got)
			}
		}
	}
}

// TestTransitionEveryPair drives a stored card through every (from, to)
// pair: legal ones change the state and add one history event; illegal
// ones return a *TransitionError and leave the record exactly as it was.
func TestTransitionEveryPair(t *testing.T) {
	s, _ := openTemp(t)
	s.Now = clock()
	n := 0
	for _, from := range States {
		for _, to := range States {
			n++
			t.Run(fmt.Sprintf("%s-%s", from, to), func(t *testing.T) {
				id := CardID(nil, uint32(n))
				if err := s.Create(&Card{ID: id, State: from, Owner: "alice"}); err != nil {
					t.Fatal(err)
				}
				before, err := s.Get(id)
				if err != nil {
					t.Fatal(err)
				}
				c, err := s.Transition(id, to, "cli:test", "card.test", "because")
				after, gerr := s.Get(id)
				if gerr != nil {
					t.Fatal(gerr)
				}
				legal := CanTransition(from, to)
				if legal {
					if err != nil {
						t.Fatalf("legal transition refused: %v", err)
					}
					if c.State != to || after.State != to {
						t.Fatalf("state = %s (stored %s), want %s", c.State, after.State, to)
					}
					if len(after.History) != 1 {
						t.Fatalf("history = %+v, want one event", after.History)
					}
					e := after.History[0]
					if e.From != from || e.To != to || e.Actor != "cli:test" || e.Action != "card.test" || e.Detail != "because" || e.Time.IsZero() {
						t.Fatalf("event = %+v", e)
					}
					return
				}
				var te *TransitionError
				if !errors.As(err, &te) || te.From != from || te.To != to || te.ID != id {
					t.Fatalf("err = %v, want TransitionError %s->%s", err, from, to)
				}
				if want := fmt.Sprintf("inventory: card %s cannot go from %s to %s", id, from, to); err.Error() != want {
					t.Errorf("Error() = %q, want %q", err, want)
				}
				if fmt.Sprint(after) != fmt.Sprint(before) {
					t.Fatalf("refused transition changed the record:\n%+v\n%+v", before, after)
				}
			})
		}
	}
}

func TestUpdateStateChangeChecked(t *testing.T) {
	s, _ := openTemp(t)
	id := CardID([]byte("0123456789abcdef"), 7)
	if err := s.Create(&Card{ID: id}); err != nil {
		t.Fatal(err)
	}
	// A state change inside Update is checked and recorded.
	if _, err := s.Update(id, func(c *Card) error { c.State = Revoked; return nil }); err == nil {
		t.Fatal("uninitialized -> revoked through Update was allowed")
	}
	c, err := s.Update(id, func(c *Card) error { c.State = Active; c.Owner = "bob"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.History) != 1 || c.History[0].From != Uninitialized || c.History[0].To != Active || c.History[0].Action != "card.state" {
		t.Fatalf("history = %+v", c.History)
	}
	// Changing the ID is refused.
	if _, err := s.Update(id, func(c *Card) error { c.ID = "serial:1"; return nil }); err == nil {
		t.Fatal("ID change allowed")
	}
}

func TestUpdateRollback(t *testing.T) {
	s, _ := openTemp(t)
	id := "serial:42"
	if err := s.Create(&Card{ID: id, Owner: "alice", SealedPUK: []byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Get(id)
	boom := errors.New("boom")
	_, err := s.Update(id, func(c *Card) error {
		c.Owner = "mallory"
		c.State = Active
		c.SealedPUK[0] = 9
		c.Certificates = append(c.Certificates, CertRef{Slot: "9a", Serial: "01"})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	after, _ := s.Get(id)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("aborted update changed the record:\n%+v\n%+v", before, after)
	}
	if l, _ := s.List(Query{Owner: "mallory"}); len(l) != 0 {
		t.Fatalf("owner index changed by an aborted update: %v", l)
	}
	if _, err := s.Update("serial:43", func(*Card) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing card: %v", err)
	}
}

func TestCreateErrors(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.Create(&Card{ID: "serial:1"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    Card
		want error
	}{
		{"duplicate", Card{ID: "serial:1"}, ErrExists},
		{"bad id", Card{ID: "1"}, nil},
		{"upper guid", Card{ID: "guid:0123456789ABCDEF0123456789ABCDEF"}, nil},
		{"short guid", Card{ID: "guid:0123"}, nil},
		{"serial overflow", Card{ID: "serial:4294967296"}, nil},
		{"bad state", Card{ID: "serial:2", State: "lost"}, nil},
		{"NUL owner", Card{ID: "serial:3", Owner: "a\x00b"}, nil},
	} {
		err := s.Create(&tc.c)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
	if _, err := s.Get("serial:2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused card was stored: %v", err)
	}
}

func TestPersistence(t *testing.T) {
	s, path := openTemp(t)
	s.Now = clock()
	want := &Card{
		ID: CardID([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, 99), Serial: 99,
		GUID: "0102030405060708090a0b0c0d0e0f10", Reader: "Virtual PCD 00 00", Owner: "alice",
		Certificates:   []CertRef{{Slot: "9a", Serial: "abcdef", Template: "smartcard-logon", NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}},
		SealedPUK:      []byte("sealed"),
		MgmtKeyVersion: 2,
	}
	if err := s.Create(want); err != nil {
		t.Fatal(err)
	}
	c, err := s.Transition(want.ID, Active, "officer:bob", "card.enroll", "")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Get(want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(c) {
		t.Fatalf("after reopen:\n%+v\nwant\n%+v", got, c)
	}
}

func TestList(t *testing.T) {
	s, _ := openTemp(t)
	s.Now = clock()
	for i, owner := range []string{"alice", "bob", "alice", "carol", "alice"} {
		if err := s.Create(&Card{ID: CardID(nil, uint32(i+1)), Owner: owner}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Transition("serial:1", Active, "", "card.enroll", ""); err != nil {
		t.Fatal(err)
	}
	// Moving card 2 from bob to alice keeps the index right.
	if _, err := s.Update("serial:2", func(c *Card) error { c.Owner = "alice"; return nil }); err != nil {
		t.Fatal(err)
	}
	ids := func(cs []*Card) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	for _, tc := range []struct {
		q    Query
		want []string
	}{
		{Query{}, []string{"serial:2", "serial:1", "serial:5", "serial:4", "serial:3"}},
		{Query{Owner: "alice"}, []string{"serial:2", "serial:1", "serial:5", "serial:3"}},
		{Query{Owner: "bob"}, nil},
		{Query{Owner: "alice", State: Active}, []string{"serial:1"}},
		{Query{State: Uninitialized, Limit: 2}, []string{"serial:2", "serial:5"}},
		{Query{Owner: "al"}, nil},
	} {
		got, err := s.List(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.q, ids(got), tc.want)
		}
	}
	if _, err := s.List(Query{State: "lost"}); err == nil {
		t.Error("List with an unknown state succeeded")
	}
}

func TestCorruptRecord(t *testing.T) {
	s, path := openTemp(t)
	for _, id := range []string{"serial:1", "serial:2", "serial:3"} {
		if err := s.Create(&Card{ID: id, Owner: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCards)
		if err := b.Put([]byte("serial:1"), []byte("{not json")); err != nil {
			return err
		}
		if err := b.Put([]byte("serial:2"), b.Get([]byte("serial:3"))); err != nil {
			return err
		}
		return b.Put([]byte("serial:3"), []byte(`{"ID":"serial:3","State":"lost"}`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range []string{"serial:1", "serial:2", "serial:3"} {
		var ce *CorruptError
		if _, err := s.Get(id); !errors.As(err, &ce) {
			t.Errorf("Get(%s) = %v, want CorruptError", id, err)
		}
		if _, err := s.Update(id, func(*Card) error { return nil }); !errors.As(err, &ce) {
			t.Errorf("Update(%s) = %v, want CorruptError", id, err)
		}
	}
	if _, err := s.List(Query{Owner: "alice"}); err == nil {
		t.Error("List over corrupt records succeeded")
	}
}

func TestCardID(t *testing.T) {
	for _, tc := range []struct {
		guid   []byte
		serial uint32
		want   string
	}{
		{make([]byte, 16), 5, "serial:5"},
		{nil, 0, "serial:0"},
		{[]byte{0xAB, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 5, "guid:ab0102030405060708090a0b0c0d0e0f"},
		{[]byte{1, 2}, 3, "serial:3"},
	} {
		got := CardID(tc.guid, tc.serial)
		if got != tc.want {
			t.Errorf("CardID(%x, %d) = %s, want %s", tc.guid, tc.serial, got, tc.want)
		}
		if err := CheckID(got); err != nil {
			t.Error(err)
		}
	}
}

func ExampleStore_Transition() {
	dir, _ := os.MkdirTemp("", "inventory")
	defer os.RemoveAll(dir)
	s, err := Open(filepath.Join(dir, "inventory.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	id := CardID(nil, 1234)
	s.Create(&Card{ID: id, Serial: 1234, Owner: "alice"})
	s.Transition(id, Active, "officer:bob", "card.enroll", "")
	_, err = s.Transition(id, Uninitialized, "officer:bob", "card.reset", "")
	fmt.Println(err)
	c, _ := s.Get(id)
	fmt.Println(c.State, len(c.History))
	// Output:
	// inventory: card serial:1234 cannot go from active to uninitialized
	// active 1
}

func TestHistoryAppendOnly(t *testing.T) {
	s, _ := openTemp(t)
	id := "serial:5"
	if err := s.Create(&Card{ID: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transition(id, Active, "officer:bob", "card.enroll", ""); err != nil {
		t.Fatal(err)
	}
	for name, fn := range map[string]func(c *Card){
		"drop":    func(c *Card) { c.History = nil },
		"rewrite": func(c *Card) { c.History[0].Actor = "mallory" },
		"replace": func(c *Card) { c.History = []Event{{Action: "x"}, {Action: "y"}} },
	} {
		if _, err := s.Update(id, func(c *Card) error { fn(c); return nil }); err == nil {
			t.Errorf("%s: history change allowed", name)
		}
	}
	c, err := s.Update(id, func(c *Card) error {
		c.History = append(c.History, Event{Action: "card.note", Detail: "PIN unblocked"})
		return nil
	})
	if err != nil || len(c.History) != 2 || c.History[0].Actor != "officer:bob" {
		t.Fatalf("append: %+v, %v", c, err)
	}
}

func TestListOwnerLike(t *testing.T) {
	s, _ := openTemp(t)
	for i, owner := range []string{"alice", "Alicia", "bob", "malice", ""} {
		if err := s.Create(&Card{ID: fmt.Sprintf("serial:%d", i+1), Owner: owner}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		q    Query
		want int
	}{
		{Query{OwnerLike: "ali"}, 3}, // alice, Alicia, malice
		{Query{OwnerLike: "ALI"}, 3},
		{Query{OwnerLike: "lic"}, 3},
		{Query{OwnerLike: "bo"}, 1},
		{Query{OwnerLike: "zed"}, 0},
		{Query{OwnerLike: ""}, 5},
		{Query{Owner: "alice", OwnerLike: "ALI"}, 1},
		{Query{Owner: "bob", OwnerLike: "ali"}, 0},
	} {
		l, err := s.List(tc.q)
		if err != nil || len(l) != tc.want {
			t.Errorf("List(%+v) = %d cards (%v), want %d", tc.q, len(l), err, tc.want)
		}
	}
}
