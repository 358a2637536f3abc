package station

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

// again is the card taken out and put back in.
func again(c *virtual.Card) *virtual.Card { return virtual.New(c.State(), "") }

func enrollAlice(t *testing.T, st *Station, serial uint32, templates ...string) (*virtual.Card, *EnrollResult) {
	t.Helper()
	vc := blankCard(t, serial)
	res, err := st.Enroll(context.Background(), EnrollRequest{User: "alice", Templates: templates, Card: vc, PIN: alicePIN})
	if err != nil {
		t.Fatal(err)
	}
	return vc, res
}

func certStatus(t *testing.T, st *Station, serial string) (pki.Status, pki.RevocationReason) {
	t.Helper()
	db, _ := st.CADB()
	recs, err := db.List(pki.Query{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Serial.Text(16) == serial {
			return r.Status, r.Reason
		}
	}
	t.Fatalf("certificate %s not in the CA database", serial)
	return "", 0
}

func TestUnblockCard(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	vc, res := enrollAlice(t, st, 11, "smartcard-logon")
	// Alice blocks her PIN.
	c := again(vc)
	p, err := card.OpenPIV(c)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		p.VerifyPIN("00000000")
	}
	if n, _ := p.PINRetries(); n != 0 {
		t.Fatalf("PIN not blocked: %d tries left", n)
	}
	// A weak new PIN is refused before the card is touched.
	if _, err := st.UnblockCard(ctx, UnblockRequest{CardRef: CardRef{Card: again(c)}, PIN: "111111"}); !errors.Is(err, card.ErrWeakPIN) {
		t.Fatalf("weak PIN: %v", err)
	}
	c2 := again(c)
	if _, err := st.UnblockCard(ctx, UnblockRequest{CardRef: CardRef{Card: c2}, PIN: "24681357"}); err != nil {
		t.Fatal(err)
	}
	if vs := c2.State(); string(vs.PIN) != "24681357" || vs.PINRetries != vs.PINMaxRetries {
		t.Fatal("PIN not set and unblocked")
	}
	// A random PIN, shown once.
	c3 := again(c2)
	ur, err := st.UnblockCard(ctx, UnblockRequest{CardRef: CardRef{Card: c3}, RandomPIN: true})
	if err != nil || CheckPIN(ur.PIN) != nil || string(c3.State().PIN) != ur.PIN {
		t.Fatalf("random PIN: %v", err)
	}
	// A card whose PUK was changed behind the station's back: each refusal
	// costs a try and is audited.
	vs := c3.State()
	vs.PUK = []byte("11223344")
	c4 := virtual.New(vs, "")
	for want := 2; want >= 1; want-- {
		_, err := st.UnblockCard(ctx, UnblockRequest{CardRef: CardRef{Card: c4}, PIN: "24681357"})
		var ae *card.AuthError
		if !errors.As(err, &ae) || ae.Retries != want || ae.What != "PUK" {
			t.Fatalf("wrong PUK: %v, want %d tries left", err, want)
		}
		c4 = again(c4)
	}
	if n := len(auditActions(t, st, audit.Query{Card: res.CardID, Action: "pin.failed"})); n != 2 {
		t.Errorf("%d pin.failed records, want 2", n)
	}
	acts := auditActions(t, st, audit.Query{Card: res.CardID, Action: "card.unblock"})
	if !slices.Equal(acts, []string{"card.unblock:ok", "card.unblock:ok", "card.unblock:refused", "card.unblock:refused"}) {
		t.Errorf("card.unblock audit: %v", acts)
	}
	// A card the station does not know.
	var nm *NotManagedError
	if _, err := st.UnblockCard(ctx, UnblockRequest{CardRef: CardRef{Card: blankCard(t, 12)}, PIN: "24681357"}); !errors.As(err, &nm) {
		t.Fatalf("foreign card: %v", err)
	}
}

func TestResetCard(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	vc, res := enrollAlice(t, st, 21, "smartcard-logon", "smime-signing")
	c := again(vc)
	if _, err := st.ResetCard(ctx, CardRef{Card: c}, "left the company"); err != nil {
		t.Fatal(err)
	}
	inv, _ := st.Inventory()
	rec, _ := inv.Get(res.CardID)
	if rec.State != inventory.Terminated {
		t.Fatalf("record %s after reset", rec.State)
	}
	for _, ref := range rec.Certificates {
		if s, r := certStatus(t, st, ref.Serial); s != pki.StatusRevoked || r != pki.ReasonCessationOfOperation {
			t.Errorf("certificate %s: %s %s", ref.Serial, s, r)
		}
	}
	vs := c.State()
	if len(vs.Keys) > 1 || string(vs.PIN) != card.DefaultPIN || string(vs.PUK) != card.DefaultPUK {
		t.Fatalf("card not blank: %d keys", len(vs.Keys))
	}
	// The blank card is a new card: it can be enrolled again.
	res2, err := st.Enroll(ctx, EnrollRequest{User: "bob", Templates: []string{"smartcard-logon"}, Card: again(c), PIN: alicePIN})
	if err != nil {
		t.Fatal(err)
	}
	if res2.CardID == res.CardID {
		t.Fatal("the reset card kept its identity")
	}
	// A terminated record cannot be reset again; an unknown card is refused.
	if acts := auditActions(t, st, audit.Query{Card: res.CardID, Action: "card.reset"}); !slices.Equal(acts, []string{"card.reset:ok"}) {
		t.Errorf("audit: %v", acts)
	}
	var nm *NotManagedError
	if _, err := st.ResetCard(ctx, CardRef{Card: blankCard(t, 22)}, ""); !errors.As(err, &nm) {
		t.Fatalf("foreign card: %v", err)
	}
}

func TestRenewCard(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	vc, res := enrollAlice(t, st, 31, "smartcard-logon", "smime-encryption")
	c := again(vc)
	if _, err := st.RenewCard(ctx, RenewRequest{CardRef: CardRef{Card: c}, PIN: "97531864"}); !isAuth(err) {
		t.Fatalf("renew with a wrong PIN: %v", err)
	}
	c = again(c)
	rr, err := st.RenewCard(ctx, RenewRequest{CardRef: CardRef{Card: c}, PIN: alicePIN})
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := st.Inventory()
	rec, _ := inv.Get(res.CardID)
	if rec.State != inventory.Active || len(rec.Certificates) != 2 {
		t.Fatalf("record after renewal: %+v", rec)
	}
	_, p := reopen(t, c)
	for i, old := range res.Certificates {
		if s, r := certStatus(t, st, old.SerialNumber.Text(16)); s != pki.StatusRevoked || r != pki.ReasonSuperseded {
			t.Errorf("old certificate %x: %s %s", old.SerialNumber, s, r)
		}
		if rec.Certificates[i].Serial != rr.Certificates[i].SerialNumber.Text(16) {
			t.Errorf("inventory lists %s, renewed %x", rec.Certificates[i].Serial, rr.Certificates[i].SerialNumber)
		}
		onCard, err := p.Certificate(res.Slots[i])
		if err != nil || !onCard.Equal(rr.Certificates[i]) {
			t.Errorf("slot %v does not hold the new certificate", res.Slots[i])
		}
	}
	if acts := auditActions(t, st, audit.Query{Card: res.CardID, Action: "card.renew"}); !slices.Contains(acts, "card.renew:ok") {
		t.Errorf("audit: %v", acts)
	}
}

func isAuth(err error) bool {
	var ae *card.AuthError
	return errors.As(err, &ae)
}

func TestReplaceCard(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	_, res := enrollAlice(t, st, 41, "smartcard-logon", "smime-signing")
	nc := blankCard(t, 42)
	rr, err := st.ReplaceCard(ctx, res.CardID, pki.ReasonKeyCompromise, EnrollRequest{Card: nc, PIN: alicePIN})
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := st.Inventory()
	lost, _ := inv.Get(res.CardID)
	if lost.State != inventory.Terminated {
		t.Fatalf("lost card %s", lost.State)
	}
	for _, c := range res.Certificates {
		if s, r := certStatus(t, st, c.SerialNumber.Text(16)); s != pki.StatusRevoked || r != pki.ReasonKeyCompromise {
			t.Errorf("lost card's certificate %x: %s %s", c.SerialNumber, s, r)
		}
	}
	nrec, _ := inv.Get(rr.CardID)
	if nrec.State != inventory.Active || nrec.Owner != "alice" || len(nrec.Certificates) != 2 {
		t.Fatalf("new card %+v", nrec)
	}
	if _, err := st.ReplaceCard(ctx, res.CardID, pki.ReasonKeyCompromise, EnrollRequest{Card: blankCard(t, 43), PIN: alicePIN}); err == nil {
		t.Fatal("a terminated card was replaced twice")
	}
	if acts := auditActions(t, st, audit.Query{Card: res.CardID, Action: "card.replace"}); !slices.Contains(acts, "card.replace:ok") {
		t.Errorf("audit: %v", acts)
	}
}

// TestResetUnfinishedCard: a card whose enrollment stopped part-way (with
// or without the station's management key set) is reset and terminated.
func TestResetUnfinishedCard(t *testing.T) {
	for _, after := range []string{"record", "secure"} {
		t.Run(after, func(t *testing.T) {
			st := demoStation(t)
			ctx := context.Background()
			vc := blankCard(t, 51)
			_, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: vc, PIN: alicePIN,
				Progress: func(s Step) {
					if s.Name == after {
						vc.Close()
					}
				}})
			var ee *EnrollError
			if !errors.As(err, &ee) {
				t.Fatal(err)
			}
			c := again(vc)
			if _, err := st.ResetCard(ctx, CardRef{Card: c}, ""); err != nil {
				t.Fatal(err)
			}
			inv, _ := st.Inventory()
			if rec, _ := inv.Get(ee.CardID); rec.State != inventory.Terminated {
				t.Fatalf("record %s", rec.State)
			}
			if len(c.State().Keys) > 1 {
				t.Fatal("card not erased")
			}
		})
	}
}
