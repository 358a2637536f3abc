package station

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

const alicePIN = "13572468"

// demoStation is a demo station with its officer signed in.
func demoStation(t testing.TB) *Station {
	t.Helper()
	st, _, err := Demo(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.SignInVirtual(context.Background(), DemoOfficer, DemoOfficerPIN); err != nil {
		t.Fatal(err)
	}
	return st
}

// blankCard is a factory-fresh in-process virtual card.
func blankCard(t *testing.T, serial uint32) *virtual.Card {
	t.Helper()
	vs, err := virtual.NewState(serial)
	if err != nil {
		t.Fatal(err)
	}
	return virtual.New(vs, "")
}

// reopen is the card after it was taken out and put back.
func reopen(t *testing.T, c *virtual.Card) (*virtual.Card, *card.PIV) {
	t.Helper()
	c2 := virtual.New(c.State(), "")
	p, err := card.OpenPIV(c2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return c2, p
}

func auditActions(t *testing.T, st *Station, q audit.Query) []string {
	t.Helper()
	l, err := st.Audit()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := l.List(q)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Action+":"+r.Outcome)
	}
	return out
}

func TestEnrollInProcess(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	vc := blankCard(t, 4711)
	var steps []string
	res, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon", "smime-signing", "smime-encryption"},
		Card: vc, Reader: "in-process", PIN: alicePIN, Progress: func(s Step) { steps = append(steps, s.Name) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"card", "management key", "record", "secure", "keys", "requests", "issue", "write", "activate"}
	if !slices.Equal(steps, want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
	if res.PIN != "" {
		t.Error("a chosen PIN came back in the result")
	}
	inv, _ := st.Inventory()
	rec, err := inv.Get(res.CardID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != inventory.Active || rec.Owner != "alice" || len(rec.Certificates) != 3 || rec.MgmtKeyVersion != MgmtKeyVersion {
		t.Fatalf("inventory record %+v", rec)
	}
	if bytes.Contains(rec.SealedPUK, []byte(card.DefaultPUK)) {
		t.Fatal("the PUK is stored in the clear")
	}
	// The card: the station's management key, the sealed PUK, the PIN,
	// the certificates in their slots for keys made on the card.
	vs := vc.State()
	if bytes.Equal(vs.ManagementKey, card.DefaultManagementKey) || vs.ManagementKeyAlg != virtual.AlgAES192 {
		t.Errorf("management key not replaced (alg %x)", vs.ManagementKeyAlg)
	}
	mk, _ := st.CardManagementKey(res.CardID, card.MgmtAES192, MgmtKeyVersion)
	if !bytes.Equal(vs.ManagementKey, mk) {
		t.Error("the card's management key is not the derived one")
	}
	puk, err := st.OpenPUK(res.CardID, rec.SealedPUK)
	if err != nil || string(vs.PUK) != puk || puk == card.DefaultPUK || len(puk) != 8 {
		t.Errorf("PUK on the card does not match the sealed one (%v)", err)
	}
	if string(vs.PIN) != alicePIN {
		t.Error("PIN not set")
	}
	_, p := reopen(t, vc)
	for i, slot := range []card.Slot{card.SlotAuthentication, card.SlotSignature, card.SlotKeyManagement} {
		c, err := p.Certificate(slot)
		if err != nil {
			t.Fatalf("slot %v: %v", slot, err)
		}
		if !c.Equal(res.Certificates[i]) {
			t.Errorf("slot %v holds another certificate", slot)
		}
		if vs.Keys[virtual.Slot(slot)] == nil || vs.Keys[virtual.Slot(slot)].Origin != virtual.OriginGenerated {
			t.Errorf("slot %v: key not generated on the card", slot)
		}
	}
	db, _ := st.CADB()
	r, err := db.Get(res.Certificates[0].SerialNumber)
	if err != nil || r.Agent != DemoOfficer || r.User != "alice" {
		t.Fatalf("CA record %+v %v", r, err)
	}
	acts := auditActions(t, st, audit.Query{Card: res.CardID})
	if !slices.Contains(acts, "card.enroll:ok") {
		t.Errorf("audit for the card: %v", acts)
	}
	// Enrolling an active card again is refused and changes nothing.
	vc2, _ := reopen(t, vc)
	_, err = st.Enroll(ctx, EnrollRequest{User: "bob", Templates: []string{"smartcard-logon"}, Card: vc2, PIN: alicePIN})
	var cse *CardStateError
	if !errors.As(err, &cse) || cse.State != inventory.Active {
		t.Fatalf("enrolling an active card: %v", err)
	}
	if rec2, _ := inv.Get(res.CardID); rec2.Owner != "alice" || rec2.State != inventory.Active {
		t.Fatalf("refused enrollment changed the record: %+v", rec2)
	}
}

func TestEnrollRandomPINAndPolicy(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	for _, pin := range []string{"123456", "111111", "654321", "12345", "123456789", "12ab56", ""} {
		_, err := st.Enroll(ctx, EnrollRequest{User: "bob", Templates: []string{"smartcard-logon"}, Card: blankCard(t, 1), PIN: pin})
		if !errors.Is(err, card.ErrWeakPIN) {
			t.Errorf("PIN %q: %v", pin, err)
		}
		if err != nil && pin != "" && strings.Contains(err.Error(), pin) {
			t.Errorf("the PIN is in the error: %v", err)
		}
	}
	vc := blankCard(t, 2)
	res, err := st.Enroll(ctx, EnrollRequest{User: "bob", Templates: []string{"smartcard-logon"}, Card: vc, RandomPIN: true, KeyAlgorithm: pki.RSA2048})
	if err != nil {
		t.Fatal(err)
	}
	if CheckPIN(res.PIN) != nil || string(vc.State().PIN) != res.PIN {
		t.Fatal("random PIN not on the card or not per policy")
	}
	l, _ := st.Audit()
	recs, _ := l.List(audit.Query{})
	for _, r := range recs {
		if strings.Contains(fmt.Sprint(r), res.PIN) {
			t.Fatalf("the PIN reached the audit log: %+v", r)
		}
	}
}

func TestSignInRefusals(t *testing.T) {
	st, _, err := Demo(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: blankCard(t, 3), PIN: alicePIN}); !errors.Is(err, ErrNotSignedIn) {
		t.Fatalf("enroll without an officer: %v", err)
	}
	_, err = st.SignInVirtual(ctx, DemoOfficer, "97531864")
	var ae *card.AuthError
	if !errors.As(err, &ae) || ae.Retries != 2 {
		t.Fatalf("wrong officer PIN: %v", err)
	}
	if acts := auditActions(t, st, audit.Query{Action: "pin.failed"}); len(acts) != 1 {
		t.Fatalf("pin.failed not audited: %v", acts)
	}
	// A card without an agent certificate.
	if _, err := st.SignInCard(ctx, blankCard(t, 5), "blank", card.DefaultPIN); !errors.Is(err, ErrNoAgentCertificate) {
		t.Fatalf("blank card: %v", err)
	}
	// A revoked agent certificate.
	o, err := st.SignInVirtual(ctx, DemoOfficer, DemoOfficerPIN)
	if err != nil {
		t.Fatal(err)
	}
	serial := o.Certificate.SerialNumber
	st.SignOut()
	if _, err := st.Revoke(serial, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	var agentErr *AgentError
	if _, err := st.SignInVirtual(ctx, DemoOfficer, DemoOfficerPIN); !errors.As(err, &agentErr) {
		t.Fatalf("revoked agent: %v", err)
	}
	// An agent certificate of another CA.
	other, _, err := Demo(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err := other.VirtualCard(DemoOfficer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SignInCard(ctx, c, "foreign", DemoOfficerPIN); !errors.As(err, &agentErr) {
		t.Fatalf("foreign agent: %v", err)
	}
}

func TestSecrets(t *testing.T) {
	st, err := Init(t.TempDir(), InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sealed, err := st.SealPUK("guid:00", "87654321")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.OpenPUK("guid:00", sealed); err != nil || got != "87654321" {
		t.Fatalf("OpenPUK: %q %v", got, err)
	}
	if _, err := st.OpenPUK("guid:01", sealed); !errors.Is(err, ErrSealedPUK) {
		t.Fatalf("a PUK opened for another card: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := st.OpenPUK("guid:00", sealed); !errors.Is(err, ErrSealedPUK) {
		t.Fatalf("a damaged PUK opened: %v", err)
	}
	if _, err := st.OpenPUK("guid:00", nil); !errors.Is(err, ErrSealedPUK) {
		t.Fatal("empty sealed PUK")
	}
	a, _ := st.CardManagementKey("guid:00", card.MgmtAES192, MgmtKeyVersion)
	b, _ := st.CardManagementKey("guid:01", card.MgmtAES192, MgmtKeyVersion)
	t3, _ := st.CardManagementKey("guid:00", card.MgmtTDES, MgmtKeyVersion)
	if len(a) != 24 || bytes.Equal(a, b) || !bytes.Equal(a, t3) {
		t.Fatal("management keys")
	}
	// Another station has another master secret.
	st2, err := Init(t.TempDir(), InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	c, _ := st2.CardManagementKey("guid:00", card.MgmtAES192, MgmtKeyVersion)
	if bytes.Equal(a, c) {
		t.Fatal("two stations derive the same management key")
	}
}

// TestEnrollFailureInjection breaks an enrollment after each step (the
// card pulled, the CA refusing, the directory gone) and checks that nothing
// inconsistent is left: no card active, no issued certificate still valid,
// the failure audited; then enrolls the same card again from the start.
func TestEnrollFailureInjection(t *testing.T) {
	steps := []string{"card", "management key", "record", "secure", "keys", "requests", "issue"}
	type inject struct {
		name  string
		after string
		do    func(t *testing.T, st *Station, vc *virtual.Card)
	}
	var cases []inject
	for _, s := range steps {
		cases = append(cases, inject{"removed after " + s, s, func(t *testing.T, st *Station, vc *virtual.Card) { vc.Close() }})
	}
	cases = append(cases,
		inject{"user deleted before issue", "requests", func(t *testing.T, st *Station, vc *virtual.Card) {
			d, _ := st.Directory()
			if err := d.DeleteUser("alice"); err != nil {
				t.Fatal(err)
			}
		}},
		inject{"directory down before issue", "requests", func(t *testing.T, st *Station, vc *virtual.Card) {
			d, _ := st.Directory()
			d.Close()
		}},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := demoStation(t)
			ctx := context.Background()
			vc := blankCard(t, 99)
			_, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon", "smime-signing"}, Card: vc, PIN: alicePIN,
				Progress: func(s Step) {
					if s.Name == tc.after {
						tc.do(t, st, vc)
					}
				}})
			var ee *EnrollError
			if !errors.As(err, &ee) {
				t.Fatalf("enrollment did not fail: %v", err)
			}
			t.Logf("%v", err)
			checkNothingActive(t, st, "alice")
			if acts := auditActions(t, st, audit.Query{Action: "card.enroll"}); !slices.ContainsFunc(acts, func(a string) bool { return a != "card.enroll:ok" }) {
				t.Errorf("failure not audited: %v", acts)
			}
			if strings.HasPrefix(tc.name, "directory down") {
				return // the station must be reopened to get its directory back
			}
			if strings.HasPrefix(tc.name, "user deleted") {
				d, _ := st.Directory()
				if _, err := d.AddUser(DemoUsers[1]); err != nil {
					t.Fatal(err)
				}
			}
			// The same card again: it starts over and succeeds.
			vc2, _ := reopen(t, vc)
			res, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon", "smime-signing"}, Card: vc2, PIN: alicePIN})
			if err != nil {
				t.Fatalf("enrolling the card again: %v", err)
			}
			if ee.CardID != "" && ee.CardID != res.CardID {
				t.Errorf("the card changed identity: %s then %s", ee.CardID, res.CardID)
			}
			db, _ := st.CADB()
			valid, _ := db.List(pki.Query{User: "alice", Status: pki.StatusValid})
			if len(valid) != 2 {
				t.Errorf("%d valid certificates for alice after the retry, want 2", len(valid))
			}
		})
	}
}

// A CA refusal of the second template revokes the first, already issued.
func TestEnrollSecondTemplateRefused(t *testing.T) {
	st := demoStation(t)
	tmpl := pki.DefaultTemplates()
	var sign *pki.Template
	for _, x := range tmpl {
		if x.Name == "smime-signing" {
			sign = x
		}
	}
	sign.Name = "smime-restricted"
	sign.Agents = []string{"somebody-else"}
	if err := pki.WriteTemplate(st.TemplatesDir()+"/restricted.toml", sign); err != nil {
		t.Fatal(err)
	}
	st.SignOut()
	st.Close()
	st2, err := Open(st.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if _, err := st2.SignInVirtual(context.Background(), DemoOfficer, DemoOfficerPIN); err != nil {
		t.Fatal(err)
	}
	_, err = st2.Enroll(context.Background(), EnrollRequest{User: "alice", Templates: []string{"smartcard-logon", "smime-restricted"}, Card: blankCard(t, 7), PIN: alicePIN})
	var ee *EnrollError
	var pe *pki.PolicyError
	if !errors.As(err, &ee) || !errors.As(err, &pe) || len(ee.Revoked) != 1 {
		t.Fatalf("want a CA refusal that revoked one certificate: %v", err)
	}
	checkNothingActive(t, st2, "alice")
	db, _ := st2.CADB()
	all, _ := db.List(pki.Query{User: "alice"})
	if len(all) != 1 || all[0].Status != pki.StatusRevoked || all[0].Reason != pki.ReasonCessationOfOperation {
		t.Fatalf("CA records for alice: %+v", all)
	}
	if acts := auditActions(t, st2, audit.Query{Action: "card.enroll"}); !slices.Contains(acts, "card.enroll:refused") {
		t.Errorf("refusal not audited: %v", acts)
	}
}

// checkNothingActive: no card of user is active, none has certificates
// recorded, and the CA has no valid certificate for user.
func checkNothingActive(t *testing.T, st *Station, user string) {
	t.Helper()
	inv, _ := st.Inventory()
	cards, err := inv.List(inventory.Query{Owner: user})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cards {
		if c.State != inventory.Uninitialized || len(c.Certificates) != 0 {
			t.Errorf("card %s left %s with %d certificates", c.ID, c.State, len(c.Certificates))
		}
	}
	db, _ := st.CADB()
	valid, err := db.List(pki.Query{User: user, Status: pki.StatusValid})
	if err != nil {
		t.Fatal(err)
	}
	if len(valid) != 0 {
		t.Errorf("%d certificates of %s still valid", len(valid), user)
	}
}

// TestEnrollResumesPartialSecure: a card pulled in the middle of the
// "secure" step (management key already the station's, PUK already the
// sealed one, or both) is started over from whatever state it is in.
func TestEnrollResumesPartialSecure(t *testing.T) {
	for _, tc := range []struct {
		name         string
		mgmtKey, puk bool
		blockPIN     bool
	}{
		{"management key changed", true, false, false},
		{"management key and PUK changed", true, true, false},
		{"PIN blocked meanwhile", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := demoStation(t)
			ctx := context.Background()
			vc := blankCard(t, 77)
			var id string
			_, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: vc, PIN: alicePIN,
				Progress: func(s Step) {
					if s.Name == "record" {
						vc.Close()
					}
				}})
			var ee *EnrollError
			if !errors.As(err, &ee) || ee.CardID == "" {
				t.Fatalf("first attempt: %v", err)
			}
			id = ee.CardID
			inv, _ := st.Inventory()
			rec, _ := inv.Get(id)
			// What the card would have done before it was pulled.
			vs := vc.State()
			if tc.mgmtKey {
				k, _ := st.CardManagementKey(id, card.MgmtAES192, MgmtKeyVersion)
				vs.ManagementKeyAlg, vs.ManagementKey = virtual.AlgAES192, k
			}
			if tc.puk {
				puk, err := st.OpenPUK(id, rec.SealedPUK)
				if err != nil {
					t.Fatal(err)
				}
				vs.PUK = []byte(puk)
			}
			if tc.blockPIN {
				vs.PINRetries = 0
			}
			vc2 := virtual.New(vs, "")
			res, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: vc2, PIN: alicePIN})
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			if res.CardID != id {
				t.Fatalf("resumed as %s, not %s", res.CardID, id)
			}
			if got := vc2.State(); string(got.PIN) != alicePIN || got.PINRetries != got.PINMaxRetries {
				t.Fatal("PIN not set on resume")
			}
		})
	}
}

// TestOfficerCardRemoved: the officer session ends when the officer card
// goes away, and the end is audited.
func TestOfficerCardRemoved(t *testing.T) {
	st, _, err := Demo(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.VirtualCard(DemoOfficer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SignInCard(context.Background(), c, "officer reader", DemoOfficerPIN); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Officer(); err != nil {
		t.Fatal(err)
	}
	st.CardGone("another reader")
	if _, err := st.Officer(); err != nil {
		t.Fatalf("another reader's card ended the session: %v", err)
	}
	c.Close()
	if _, err := st.Officer(); !errors.Is(err, ErrNotSignedIn) {
		t.Fatalf("officer after the card went away: %v", err)
	}
	// Signed in again, then told by the monitor that the card is gone.
	c2, _ := st.VirtualCard(DemoOfficer)
	if _, err := st.SignInCard(context.Background(), c2, "officer reader", DemoOfficerPIN); err != nil {
		t.Fatal(err)
	}
	st.CardGone("officer reader")
	if _, err := st.Officer(); !errors.Is(err, ErrNotSignedIn) {
		t.Fatalf("officer after CardGone: %v", err)
	}
	_, err = st.Enroll(context.Background(), EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: blankCard(t, 8), PIN: alicePIN})
	if !errors.Is(err, ErrNotSignedIn) {
		t.Fatalf("enroll without the officer card: %v", err)
	}
	acts := auditActions(t, st, audit.Query{Actor: "officer:" + DemoOfficer})
	if !slices.Equal(acts[len(acts)-2:], []string{"officer.signin:ok", "officer.signout:ok"}) {
		t.Fatalf("officer audit: %v", acts)
	}
}

// TestOfficerCardRemovedMidEnrollment: the officer card pulled before the
// requests are signed fails the enrollment cleanly and ends the session.
func TestOfficerCardRemovedMidEnrollment(t *testing.T) {
	st, _, err := Demo(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	oc, err := st.VirtualCard(DemoOfficer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SignInCard(context.Background(), oc, "officer reader", DemoOfficerPIN); err != nil {
		t.Fatal(err)
	}
	_, err = st.Enroll(context.Background(), EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: blankCard(t, 9), PIN: alicePIN,
		Progress: func(s Step) {
			if s.Name == "requests" {
				oc.Close()
			}
		}})
	var ee *EnrollError
	if !errors.As(err, &ee) || ee.Step != "issue" || !errors.Is(err, card.ErrCardRemoved) {
		t.Fatalf("want a failure at issue with the officer card removed: %v", err)
	}
	checkNothingActive(t, st, "alice")
	if _, err := st.Officer(); !errors.Is(err, ErrNotSignedIn) {
		t.Fatalf("officer still signed in: %v", err)
	}
}

// FuzzOpenPUK: sealed bytes from the inventory are decrypted, never
// trusted: anything but what SealPUK made for that card is refused, never
// a panic.
func FuzzOpenPUK(f *testing.F) {
	st, err := Init(f.TempDir(), InitOptions{Domain: "example.test"})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	good, err := st.SealPUK("guid:00", "12345678")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, "guid:00")
	f.Fuzz(func(t *testing.T, sealed []byte, id string) {
		puk, err := st.OpenPUK(id, sealed)
		if err != nil {
			if !errors.Is(err, ErrSealedPUK) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if id != "guid:00" || puk != "12345678" {
			t.Fatalf("forged sealed PUK opened: %q for %q", puk, id)
		}
	})
}

// TestEnrollOldYubiKey: a card without AES management keys or metadata
// (firmware 5.2) gets a 3DES station key, and resumes after being pulled
// once its PUK is already the station's.
func TestEnrollOldYubiKey(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	vs, err := virtual.NewState(52, virtual.WithVersion(5, 2, 7))
	if err != nil {
		t.Fatal(err)
	}
	vc := virtual.New(vs, "")
	_, err = st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: vc, PIN: alicePIN,
		Progress: func(s Step) {
			if s.Name == "secure" {
				vc.Close()
			}
		}})
	if err == nil {
		t.Fatal("enrollment with the card pulled succeeded")
	}
	vc2 := again(vc)
	res, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: vc2, PIN: alicePIN})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	got := vc2.State()
	mk, _ := st.CardManagementKey(res.CardID, card.MgmtTDES, MgmtKeyVersion)
	if got.ManagementKeyAlg != virtual.Alg3DES || !bytes.Equal(got.ManagementKey, mk) || string(got.PIN) != alicePIN {
		t.Fatalf("card after resume: alg %x", got.ManagementKeyAlg)
	}
}

// TestEnrollCancelled: a cancelled context stops the enrollment between
// steps and rolls it back.
func TestEnrollCancelled(t *testing.T) {
	st := demoStation(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: blankCard(t, 13), PIN: alicePIN,
		Progress: func(s Step) {
			if s.Name == "issue" {
				cancel()
			}
		}})
	var ee *EnrollError
	if !errors.As(err, &ee) || !errors.Is(err, context.Canceled) || ee.Step != "write" || len(ee.Revoked) != 1 {
		t.Fatalf("cancelled enrollment: %v", err)
	}
	if !strings.Contains(ee.CardState(), "revoked again") {
		t.Errorf("the card's state after a cancelled write: %q", ee.CardState())
	}
	checkNothingActive(t, st, "alice")
}

// TestEnrollPublicationFails: a certificate the CA issued but could not
// publish is revoked and the enrollment fails (here a standalone station
// whose publication directory has become unwritable).
func TestEnrollPublicationFails(t *testing.T) {
	dir := t.TempDir()
	st, err := Init(dir, InitOptions{Domain: "example.test", Standalone: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, _ := st.Directory()
	if _, err := d.AddUser(DemoUsers[1]); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.BootstrapOfficer(ctx, OfficerOptions{User: "olga", PIN: "97531864"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SignInVirtual(ctx, "olga", "97531864"); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, publishedDir)
	_, err = st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: blankCard(t, 14), PIN: alicePIN,
		Progress: func(s Step) {
			if s.Name == "requests" {
				os.RemoveAll(pub)
				os.WriteFile(pub, []byte("not a directory"), 0o600)
			}
		}})
	var ee *EnrollError
	if !errors.As(err, &ee) || ee.Step != "issue" || len(ee.Revoked) != 1 || !strings.Contains(err.Error(), "not published") {
		t.Fatalf("want a publication failure with the certificate revoked: %v", err)
	}
	checkNothingActive(t, st, "alice")
}

// TestEnrollForeignAndBareCards: a card another system administers is
// refused untouched; a card without CHUID or CCC gets them.
func TestEnrollForeignAndBareCards(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	other := bytes.Repeat([]byte{7}, 24)
	vs, err := virtual.NewState(61, virtual.WithManagementKey(virtual.AlgAES192, other))
	if err != nil {
		t.Fatal(err)
	}
	vc := virtual.New(vs, "")
	_, err = st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: vc, PIN: alicePIN})
	if !errors.Is(err, card.ErrWrongManagementKey) {
		t.Fatalf("foreign card: %v", err)
	}
	if got := vc.State(); !bytes.Equal(got.ManagementKey, other) || string(got.PIN) != card.DefaultPIN || len(got.Keys) > 1 {
		t.Fatal("the foreign card was changed")
	}
	inv, _ := st.Inventory()
	if cards, _ := inv.List(inventory.Query{}); len(cards) != 1 { // the officer's own card
		t.Fatalf("%d cards in the inventory", len(cards))
	}
	if acts := auditActions(t, st, audit.Query{Action: "card.enroll"}); !slices.Contains(acts, "card.enroll:refused") {
		t.Errorf("audit: %v", acts)
	}

	bare, err := virtual.NewState(62)
	if err != nil {
		t.Fatal(err)
	}
	delete(bare.Objects, virtual.TagCHUID)
	delete(bare.Objects, virtual.TagCCC)
	bc := virtual.New(bare, "")
	res, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Card: bc, PIN: alicePIN})
	if err != nil {
		t.Fatal(err)
	}
	got := bc.State()
	if got.Objects[virtual.TagCHUID] == nil || got.Objects[virtual.TagCCC] == nil {
		t.Fatal("CHUID or CCC not written")
	}
	if want := "guid:" + fmt.Sprintf("%x", got.GUID()); res.CardID != want {
		t.Fatalf("card ID %s, want %s", res.CardID, want)
	}
}

func TestCardTemplates(t *testing.T) {
	st := demoStation(t)
	ts, err := st.CardTemplates(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ct := range ts {
		got = append(got, ct.Template.Name+":"+ct.Slot.String())
	}
	want := []string{"smartcard-logon:9A", "smartcard-user:9A", "smime-encryption:9D", "smime-signing:9C"}
	if !slices.Equal(got, want) {
		t.Fatalf("card templates %v, want %v", got, want)
	}
}
