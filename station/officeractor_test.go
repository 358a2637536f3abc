package station

import (
	"context"
	"errors"
	"testing"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

// actorsSince are the audit records after the first n.
func actorsSince(t *testing.T, st *Station, n int) []audit.Record {
	t.Helper()
	l, err := st.Audit()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := l.List(audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return recs[n:]
}

func auditCount(t *testing.T, st *Station) int {
	t.Helper()
	return len(actorsSince(t, st, 0))
}

// TestOfficerActs checks that every action taken on a station while an
// officer is signed in is audited as the officer (including the
// certificates issued inside an enrollment and the CRL published after a
// suspension), that the process acts again once the officer is gone, and
// that a borrowed station keeps its own actor.
func TestOfficerActs(t *testing.T) {
	st := demoStation(t) // the officer is signed in
	st.Actor = "cli:tester"
	officer := "officer:" + DemoOfficer
	ctx := context.Background()

	// each runs one action and checks that every record it appended names
	// want, and that it appended one of the actions in have.
	each := func(name, want string, have []string, do func() error) {
		t.Helper()
		n := auditCount(t, st)
		if err := do(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		recs := actorsSince(t, st, n)
		seen := map[string]bool{}
		for _, r := range recs {
			seen[r.Action] = true
			if r.Actor != want {
				t.Errorf("%s: %s audited as %q, want %q", name, r.Action, r.Actor, want)
			}
		}
		for _, a := range have {
			if !seen[a] {
				t.Errorf("%s: no %s record among %d", name, a, len(recs))
			}
		}
	}

	var id string
	var serial = new(pki.Record)
	each("enroll", officer, []string{"cert.issue", "card.enroll"}, func() error {
		res, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: blankCard(t, 5151), PIN: alicePIN})
		if err == nil {
			id = res.CardID
			db, _ := st.CADB()
			serial, err = db.Get(res.Certificates[0].SerialNumber)
		}
		return err
	})
	each("suspend", officer, []string{"cert.hold", "card.state", "crl.publish"}, func() error {
		_, err := st.SuspendCard(ctx, id, "test")
		return err
	})
	each("reinstate", officer, []string{"cert.release", "card.state", "crl.publish"}, func() error {
		_, err := st.ReinstateCard(ctx, id, "test")
		return err
	})
	each("hold", officer, []string{"cert.hold"}, func() error {
		_, err := st.Revoke(serial.Serial, pki.ReasonCertificateHold)
		return err
	})
	each("release", officer, []string{"cert.release"}, func() error {
		_, err := st.Release(serial.Serial)
		return err
	})
	each("crl", officer, []string{"crl.publish"}, func() error {
		_, err := st.PublishCRL(nil)
		return err
	})
	// A command forwarded over the control socket acts as itself, even
	// while the officer is signed in at the station.
	b := st.Borrow(nil)
	b.Actor = "cli:other"
	each("borrowed crl", "cli:other", []string{"crl.publish"}, func() error {
		_, err := b.PublishCRL(nil)
		return err
	})
	each("revoke card", officer, []string{"cert.revoke", "card.state"}, func() error {
		_, err := st.RevokeCard(ctx, id, pki.ReasonKeyCompromise)
		return err
	})
	inv, _ := st.Inventory()
	c, err := inv.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.History {
		if e.Actor != officer {
			t.Errorf("inventory event %s by %q, want %q", e.Action, e.Actor, officer)
		}
	}

	// Signed out, the process acts again.
	st.SignOut()
	each("crl signed out", "cli:tester", []string{"crl.publish"}, func() error {
		_, err := st.PublishCRL(nil)
		return err
	})
}

// TestRequireOfficer checks that a station that requires an officer (the
// kiosk) refuses the status changes made without the card while nobody
// is signed in: audited as refused, nothing changed.
func TestRequireOfficer(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	res, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: blankCard(t, 5152), PIN: alicePIN})
	if err != nil {
		t.Fatal(err)
	}
	st.SignOut()
	st.Actor = "cli:kiosk"
	st.RequireOfficer = true
	serial := res.Certificates[0].SerialNumber
	for name, do := range map[string]func() error{
		"suspend":     func() error { _, err := st.SuspendCard(ctx, res.CardID, ""); return err },
		"reinstate":   func() error { _, err := st.ReinstateCard(ctx, res.CardID, ""); return err },
		"revoke card": func() error { _, err := st.RevokeCard(ctx, res.CardID, pki.ReasonKeyCompromise); return err },
		"revoke":      func() error { _, err := st.Revoke(serial, pki.ReasonKeyCompromise); return err },
		"hold":        func() error { _, err := st.Revoke(serial, pki.ReasonCertificateHold); return err },
		"release":     func() error { _, err := st.Release(serial); return err },
	} {
		n := auditCount(t, st)
		if err := do(); !errors.Is(err, ErrNotSignedIn) {
			t.Errorf("%s without an officer: %v, want ErrNotSignedIn", name, err)
		}
		recs := actorsSince(t, st, n)
		if len(recs) != 1 || recs[0].Outcome != audit.Refused || recs[0].Actor != "cli:kiosk" {
			t.Errorf("%s without an officer audited as %+v", name, recs)
		}
	}
	inv, _ := st.Inventory()
	if c, _ := inv.Get(res.CardID); c.State != inventory.Active {
		t.Errorf("the card is %s after refused actions", c.State)
	}
	db, _ := st.CADB()
	if r, _ := db.Get(serial); r.Status != pki.StatusValid {
		t.Errorf("the certificate is %s after refused actions", r.Status)
	}
	// Signed in again, the same station acts, as the officer.
	if _, err := st.SignInVirtual(ctx, DemoOfficer, DemoOfficerPIN); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SuspendCard(ctx, res.CardID, ""); err != nil {
		t.Fatalf("suspend with the officer signed in: %v", err)
	}
}

// encryptedOfficerStation is a station whose CA key has a passphrase, with
// an officer (olga, PIN 97531864) on a virtual card and the user alice,
// reopened so that the CA key is locked.
func encryptedOfficerStation(t *testing.T, pass string) *Station {
	t.Helper()
	dir := t.TempDir()
	pf := func(bool) ([]byte, error) { return []byte(pass), nil }
	st, err := Init(dir, InitOptions{Domain: "example.test", CA: CAOptions{KeyAlgorithm: pki.P256, Passphrase: pf}})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := st.Directory()
	for _, u := range DemoUsers {
		if _, err := d.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.BootstrapOfficer(context.Background(), OfficerOptions{User: "olga", PIN: "97531864", Passphrase: pf}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if st, err = Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestUnlockCAForTheSession unlocks an encrypted CA key once in an officer
// session: a wrong passphrase is refused (audited) and leaves it locked,
// the right one lets enrollment run without asking again, and signing out
// locks it again.
func TestUnlockCAForTheSession(t *testing.T) {
	st := encryptedOfficerStation(t, "correct horse battery")
	ctx := context.Background()
	if _, err := st.SignInVirtual(ctx, "olga", "97531864"); err != nil {
		t.Fatal(err)
	}
	if st.CAUnlocked() {
		t.Fatal("the CA key is unlocked before anyone gave the passphrase")
	}
	n := auditCount(t, st)
	wrong := func(bool) ([]byte, error) { return []byte("wrong"), nil }
	if err := st.UnlockCA(wrong); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("a wrong passphrase: %v", err)
	}
	if st.CAUnlocked() {
		t.Fatal("a wrong passphrase unlocked the CA key")
	}
	recs := actorsSince(t, st, n)
	if len(recs) != 1 || recs[0].Action != "ca.unlock" || recs[0].Outcome != audit.Refused || recs[0].Actor != "officer:olga" {
		t.Fatalf("a wrong passphrase audited as %+v", recs)
	}
	right := func(bool) ([]byte, error) { return []byte("correct horse battery"), nil }
	if err := st.UnlockCA(right); err != nil {
		t.Fatal(err)
	}
	if !st.CAUnlocked() {
		t.Fatal("the right passphrase left the CA key locked")
	}
	// No passphrase asked for any more in this session.
	if _, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: blankCard(t, 6161), PIN: alicePIN}); err != nil {
		t.Fatalf("enroll after unlocking: %v", err)
	}
	st.SignOut()
	if st.CAUnlocked() {
		t.Fatal("the CA key stays unlocked after the officer signed out")
	}
	if _, err := st.PublishCRL(nil); err == nil {
		t.Fatal("a CRL was signed without the passphrase after sign-out")
	}
}

// TestRollbackWithoutOfficer: on a station that requires an officer, a
// failed enrollment still revokes what it issued when the officer's
// session ended during it.
func TestRollbackWithoutOfficer(t *testing.T) {
	st := demoStation(t)
	st.RequireOfficer = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: blankCard(t, 5153), PIN: alicePIN,
		Progress: func(s Step) {
			if s.Name == "issue" {
				st.SignOut()
				cancel()
			}
		}})
	var ee *EnrollError
	if !errors.As(err, &ee) || len(ee.Revoked) != 1 {
		t.Fatalf("enrollment cancelled after the officer left: %v", err)
	}
	checkNothingActive(t, st, "alice")
}
