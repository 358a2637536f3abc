package station

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station/audit"
)

func pinFailures(t *testing.T, st *Station) []audit.Record {
	t.Helper()
	l, err := st.Audit()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := l.List(audit.Query{Action: "pin.failed"})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestPINFailed: every PIN a card refuses at the station is audited with
// the card, its owner, the reader and the tries left, never the PIN.
func TestPINFailed(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	vc, res := enrollAlice(t, st, 51, "smartcard-logon")
	const wrong = "86420864"

	// A front's own PIN check (PINFailed).
	vc2, p := reopen(t, vc)
	err := p.VerifyPIN(wrong)
	if !IsPINFailure(err) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if err := st.PINFailed(p, "Test PCD 00 00", "diagnostics", err); err != nil {
		t.Fatal(err)
	}
	// Anything but a refused PIN records nothing.
	if err := st.PINFailed(p, "Test PCD 00 00", "diagnostics", card.ErrNoCard); err != nil {
		t.Fatal(err)
	}
	if err := st.PINFailed(p, "Test PCD 00 00", "diagnostics", nil); err != nil {
		t.Fatal(err)
	}
	recs := pinFailures(t, st)
	if len(recs) != 1 {
		t.Fatalf("%d pin.failed records, want 1", len(recs))
	}
	r := recs[0]
	if r.Card != res.CardID || r.User != "alice" || r.Outcome != audit.Refused || r.Actor != st.actor() ||
		r.Detail != "wrong PIN (diagnostics) in reader Test PCD 00 00, 2 tries left" {
		t.Errorf("record %+v", r)
	}

	// Renewal with a wrong PIN.
	c := again(vc2)
	if _, err := st.RenewCard(ctx, RenewRequest{CardRef: CardRef{Card: c, Reader: "Test PCD 00 01"}, PIN: wrong}); !IsPINFailure(err) {
		t.Fatalf("renewal with a wrong PIN: %v", err)
	}
	recs = pinFailures(t, st)
	if r := recs[len(recs)-1]; len(recs) != 2 || r.Card != res.CardID || r.User != "alice" ||
		r.Detail != "wrong PIN (renewal) in reader Test PCD 00 01, 1 try left" {
		t.Errorf("renewal: %d records, last %+v", len(recs), r)
	}

	// The officer's own card.
	if _, err := st.SignInVirtual(ctx, DemoOfficer, wrong); !IsPINFailure(err) {
		t.Fatalf("sign-in with a wrong PIN: %v", err)
	}
	recs = pinFailures(t, st)
	if r := recs[len(recs)-1]; len(recs) != 3 || r.User != DemoOfficer || !strings.HasPrefix(r.Card, "guid:") ||
		!strings.HasPrefix(r.Detail, "wrong PIN (officer sign-in) in reader virtual card ") || !strings.HasSuffix(r.Detail, ", 2 tries left") {
		t.Errorf("officer sign-in: %d records, last %+v", len(recs), r)
	}
	for _, r := range recs {
		if strings.Contains(r.Detail, wrong) {
			t.Errorf("the PIN is in the audit log: %+v", r)
		}
	}
}

// TestPINFailedWithoutAudit: with the audit log unusable the failure is
// reported, not swallowed.
func TestPINFailedWithoutAudit(t *testing.T) {
	st := demoStation(t)
	vc, _ := enrollAlice(t, st, 52, "smartcard-logon")
	_, p := reopen(t, vc)
	err := p.VerifyPIN("86420864")
	l, _ := st.Audit()
	l.Close()
	var ae *AuditError
	if aerr := st.PINFailed(p, "r", "diagnostics", err); !errors.As(aerr, &ae) || ae.Action != "pin.failed" {
		t.Fatalf("PINFailed with the audit log closed: %v", aerr)
	}
}
