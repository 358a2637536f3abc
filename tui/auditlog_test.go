package tui

import (
	"path/filepath"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/scstation/scstation/station"
)

func TestAuditGolden(t *testing.T) {
	st := demoStation(t)
	h := start(t, st, false)
	h.key('7')
	h.waitFor("chain verified")
	h.key('a')
	h.typ("officer.signin")
	h.key(tea.KeyEnter)
	h.waitFor("no record matches")
	h.key('a')
	for range len("officer.signin") {
		h.key(tea.KeyBackspace)
	}
	h.typ("cert.issue")
	h.key(tea.KeyEnter)
	h.key('u')
	h.typ("officer")
	h.key(tea.KeyEnter)
	t.Run("filtered", func(t *testing.T) {
		h.t = t
		h.golden("chain verified", "cert.issue", "enrollment-agent", "1 record(s)", "u user filter")
	})
	h.t = t
	// A sign-in is audited and shows at once.
	h.key('4')
	h.typ(station.DemoOfficerPIN)
	h.key(tea.KeyEnter)
	h.waitFor("signed in as officer")
	h.key('7')
	h.key('a')
	for range len("cert.issue") {
		h.key(tea.KeyBackspace)
	}
	h.typ("officer.signin")
	h.key(tea.KeyEnter)
	h.waitFor("officer.signin", "agent card in virtual card")
	h.key('u')
	for range len("officer") {
		h.key(tea.KeyBackspace)
	}
	h.typ("bob")
	h.key(tea.KeyEnter)
	h.waitFor("no record matches")
}

// TestAuditTampered alters one record in the log file and checks that
// the screen says the chain is broken, and where.
func TestAuditTampered(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	st, _, err := station.Demo(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := bolt.Open(filepath.Join(dir, "audit", "audit.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("records"))
		k := []byte{0, 0, 0, 0, 0, 0, 0, 2}
		v := string(b.Get(k))
		if !strings.Contains(v, `"Outcome":"ok"`) {
			t.Fatalf("record 2 is not what the test expects: %s", v)
		}
		return b.Put(k, []byte(strings.Replace(v, `"Outcome":"ok"`, `"Outcome":"failed"`, 1)))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	st, err = station.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := start(t, st, false)
	h.key('7')
	h.waitFor("chain BROKEN")
	h.key('u')
	h.typ("officer")
	h.key(tea.KeyEnter)
	h.golden("chain BROKEN at record 2", "altered", "2 record(s)", "u user filter")
}
