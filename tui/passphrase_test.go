package tui

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

const caPass = "correct horse battery"

// encryptedStation is newStation with a CA key under caPass and an
// officer, olga (PIN 97531864), signed in on a virtual card; the CA key is
// locked, as in a fresh process.
func encryptedStation(t *testing.T) *station.Station {
	t.Helper()
	st := newStation(t, caPass)
	pf := func(bool) ([]byte, error) { return []byte(caPass), nil }
	if _, err := st.BootstrapOfficer(context.Background(), station.OfficerOptions{User: "olga", PIN: "97531864", Passphrase: pf}); err != nil {
		t.Fatal(err)
	}
	dir := st.Dir
	st.Close()
	st, err := station.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.SignInVirtual(context.Background(), "olga", "97531864"); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestEnrollEncryptedCA enrolls with a CA key under a passphrase: the
// Enroll screen asks for it, masked; a wrong one is refused in place and
// changes nothing; the right one unlocks the key for the session, which
// ends with the lock.
func TestEnrollEncryptedCA(t *testing.T) {
	st := encryptedStation(t)
	blank, _ := blankCard(t, "blank-enc", 20261130)
	h := startWith(t, Options{Station: st, LocalCards: []LocalCard{blank}})
	h.waitFor("olga")
	h.key('5')
	h.waitFor("Enroll a card", "user:")
	h.typ("ali")
	h.waitFor("alice", "1 user")
	h.key(tea.KeyEnter)
	h.waitFor("┃ CA key passphrase")
	const wrong = "Tr0ub4dor&3"
	h.typ(wrong)
	t.Run("passphrase", func(t *testing.T) {
		h.t = t
		h.golden("┃ CA key passphrase", "> ***********")
	})
	h.t = t
	h.key(tea.KeyEnter)
	s := h.waitFor("wrong passphrase for the CA key", "┃ CA key passphrase")
	if strings.Contains(s, wrong) {
		t.Fatal("the passphrase is on the screen")
	}
	if st.CAUnlocked() {
		t.Fatal("a wrong passphrase unlocked the CA key")
	}
	inv, _ := st.Inventory()
	if cards, _ := inv.List(inventory.Query{Owner: "alice"}); len(cards) != 0 {
		t.Fatalf("a wrong passphrase left cards for alice: %v", cards)
	}
	log, _ := st.Audit()
	if recs, _ := log.List(audit.Query{Action: "ca.unlock"}); len(recs) != 1 || recs[0].Outcome != audit.Refused || recs[0].Actor != "officer:olga" {
		t.Fatalf("the wrong passphrase audited as %+v", recs)
	}

	h.typ(caPass)
	h.key(tea.KeyEnter)
	h.waitFor("Certificates for alice")
	h.randomPIN()
	h.waitFor("Card enrolled for alice: 1 certificate(s)")
	if cards, _ := inv.List(inventory.Query{Owner: "alice", State: inventory.Active}); len(cards) != 1 {
		t.Fatalf("alice's active cards: %v", cards)
	}

	// The next enrollment in the session asks nothing; the lock ends it.
	h.key(tea.KeyEnter)
	h.waitFor("user:")
	h.typ("bob")
	h.waitFor("bob", "1 user")
	h.key(tea.KeyEnter)
	h.waitFor("Certificates for bob")
	h.key(tea.KeyEscape)
	h.tm.Send(tea.KeyPressMsg{Code: 'l', Mod: tea.ModCtrl})
	h.waitFor("locked: locked by the officer")
	if st.CAUnlocked() {
		t.Error("the CA key stays unlocked after the lock")
	}
	if _, err := st.Officer(); !errors.Is(err, station.ErrNotSignedIn) {
		t.Errorf("still signed in after the lock: %v", err)
	}
}

// TestRenewEncryptedCA renews a card on the Cards screen while the CA key
// is locked: the renewal form asks for the passphrase; a wrong one is
// refused in place and leaves the card's certificates as they were.
func TestRenewEncryptedCA(t *testing.T) {
	st := encryptedStation(t)
	ctx := context.Background()
	if err := st.UnlockCA(func(bool) ([]byte, error) { return []byte(caPass), nil }); err != nil {
		t.Fatal(err)
	}
	blank, _ := blankCard(t, "alice-enc", 20261131)
	c, err := blank.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enroll(ctx, station.EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Reader: blank.Name, Card: c, PIN: "246813"}); err != nil {
		t.Fatal(err)
	}
	// A new session: the key is locked again.
	st.SignOut()
	if _, err := st.SignInVirtual(ctx, "olga", "97531864"); err != nil {
		t.Fatal(err)
	}
	db, _ := st.CADB()
	valid := func() []string {
		recs, _ := db.List(pki.Query{User: "alice", Status: pki.StatusValid, Template: "smartcard-logon"})
		var out []string
		for _, r := range recs {
			out = append(out, r.Serial.Text(16))
		}
		slices.Sort(out)
		return out
	}
	before := valid()

	h := startWith(t, Options{Station: st, LocalCards: []LocalCard{blank}})
	h.waitFor("olga")
	h.openCard("alice")
	// A suspension needs no CA key, but its CRL does: the screen says
	// where to publish it.
	h.key('S')
	h.waitFor("┃ Suspend card")
	h.key('y')
	h.waitFor("is suspended", "publish it on the CA screen (p)")
	h.key('R')
	h.waitFor("┃ Reinstate card")
	h.key('y')
	h.waitFor("is active")
	renew := func(pass string) {
		h.key('n')
		h.waitFor("┃ Where is the card?")
		h.key(tea.KeyEnter)
		h.waitFor("┃ The card holder's PIN")
		h.typ("246813")
		h.key(tea.KeyEnter)
		h.waitFor("┃ CA key passphrase")
		h.typ(pass)
		h.key(tea.KeyEnter)
	}
	renew("Tr0ub4dor&3")
	h.waitFor("wrong passphrase for the CA key")
	if after := valid(); !slices.Equal(after, before) || st.CAUnlocked() {
		t.Fatalf("a wrong passphrase changed the certificates (%v -> %v) or unlocked the key", before, after)
	}
	renew(caPass)
	h.waitFor("renewed: 1 new certificate(s)")
	// The card's certificate is replaced (newStation issued alice another
	// logon certificate, not on a card, which stays).
	if after := valid(); len(after) != len(before) || slices.Equal(after, before) {
		t.Fatalf("valid logon certificates after renewal: %v (before %v)", after, before)
	}
}
