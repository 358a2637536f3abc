package station

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/audit"
)

// enrollMailCard enrolls user on a fresh in-process virtual card with
// templates and returns the card and its inventory ID.
func enrollMailCard(t *testing.T, st *Station, user string, serial uint32, alg pki.KeyAlgorithm, templates ...string) (*virtual.Card, string) {
	t.Helper()
	vc := blankCard(t, serial)
	res, err := st.Enroll(context.Background(), EnrollRequest{User: user, Templates: templates, KeyAlgorithm: alg,
		Card: vc, Reader: "in-process", PIN: alicePIN})
	if err != nil {
		t.Fatal(err)
	}
	return vc, res.CardID
}

// runMailTest runs the self-test on the card, as put back in the reader.
func runMailTest(t *testing.T, st *Station, vc *virtual.Card, pin string) (*MailTestReport, error) {
	t.Helper()
	return st.MailTest(context.Background(), CardRef{Reader: "in-process", Card: virtual.New(vc.State(), "")}, pin, nil)
}

// TestMailTest: a card enrolled for mail passes the self-test, with EC and
// RSA keys, and openssl cms verifies the message it signed.
func TestMailTest(t *testing.T) {
	openssl := testpeer.Path(t, "openssl")
	st := demoStation(t)
	for i, alg := range []pki.KeyAlgorithm{pki.P256, pki.RSA2048} {
		t.Run(string(alg), func(t *testing.T) {
			vc, _ := enrollMailCard(t, st, "alice", uint32(5100+i), alg, "smartcard-logon", "smime-signing", "smime-encryption")
			var streamed []string
			rep, err := st.MailTest(context.Background(), CardRef{Reader: "in-process", Card: virtual.New(vc.State(), "")}, alicePIN,
				func(s LogonStep) { streamed = append(streamed, s.Name) })
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"PIN verified on the card", "signing certificate checked", "encryption certificate checked",
				"message signed on the card", "message encrypted", "message decrypted on the card", "signature verified"}
			var names []string
			for _, s := range rep.Steps {
				names = append(names, s.Name)
			}
			if !slices.Equal(names, want) || !slices.Equal(streamed, want) {
				t.Fatalf("steps %v (streamed %v), want %v", names, streamed, want)
			}
			if !strings.Contains(rep.Steps[1].Detail, "slot 9C") || !strings.Contains(rep.Steps[2].Detail, "slot 9D") {
				t.Errorf("certificates not from their slots: %q, %q", rep.Steps[1].Detail, rep.Steps[2].Detail)
			}

			// openssl, a real peer, verifies the signed message against the
			// station CA and gets the text back.
			dir := t.TempDir()
			signed := filepath.Join(dir, "signed.eml")
			if err := os.WriteFile(signed, rep.Signed, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(openssl, "cms", "-verify", "-in", signed, "-CAfile", filepath.Join(st.Dir, "ca", "chain.pem"),
				"-purpose", "smimesign").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "signed and encrypted by the card") || !strings.Contains(string(out), "Verification successful") {
				t.Fatalf("openssl cms -verify: %v\n%s", err, out)
			}
			// What was encrypted is an S/MIME enveloped message for the card.
			if !strings.Contains(string(rep.Encrypted), "application/pkcs7-mime") {
				t.Errorf("the encrypted message is not S/MIME:\n%.300s", rep.Encrypted)
			}
		})
	}
}

// TestMailTestFailures: each failure says in plain words why, and changes
// nothing but what a failure must (a wrong PIN counts and is audited).
func TestMailTestFailures(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	full, fullID := enrollMailCard(t, st, "alice", 5201, pki.P256, "smartcard-logon", "smime-signing", "smime-encryption")
	signOnly, _ := enrollMailCard(t, st, "bob", 5202, pki.P256, "smartcard-logon", "smime-signing")
	logonOnly, _ := enrollMailCard(t, st, "carol", 5203, pki.P256, "smartcard-logon")

	check := func(t *testing.T, err error, step, reason string, refused bool) {
		t.Helper()
		var me *MailTestError
		if !errors.As(err, &me) {
			t.Fatalf("want a *MailTestError, got %v", err)
		}
		if me.Step != step || !strings.Contains(me.Reason, reason) || me.Refused != refused {
			t.Fatalf("got step %q reason %q refused %v; want step %q, reason with %q, refused %v", me.Step, me.Reason, me.Refused, step, reason, refused)
		}
		if strings.Contains(err.Error(), alicePIN) {
			t.Fatalf("the PIN is in the error: %v", err)
		}
	}

	t.Run("wrong PIN", func(t *testing.T) {
		_, err := runMailTest(t, st, full, "11335577")
		check(t, err, "PIN", "wrong PIN — 2 tries left", true)
		if acts := auditActions(t, st, audit.Query{Card: fullID}); !slices.Contains(acts, "pin.failed:refused") {
			t.Errorf("the wrong PIN is not audited: %v", acts)
		}
		// The right PIN still works (and resets the counter).
		if _, err := runMailTest(t, st, full, alicePIN); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no PIN", func(t *testing.T) {
		_, err := runMailTest(t, st, full, "")
		check(t, err, "PIN", "no PIN given", false)
	})
	t.Run("no encryption certificate", func(t *testing.T) {
		rep, err := runMailTest(t, st, signOnly, alicePIN)
		check(t, err, "encryption certificate", "no encryption certificate on the card (enroll the smime-encryption template)", true)
		if len(rep.Steps) != 2 || rep.Signed != nil {
			t.Errorf("went on after the failed step: %+v", rep.Steps)
		}
	})
	t.Run("no mail certificates", func(t *testing.T) {
		_, err := runMailTest(t, st, logonOnly, alicePIN)
		check(t, err, "signing certificate", "no signing certificate on the card", true)
	})
	t.Run("revoked", func(t *testing.T) {
		if _, err := st.RevokeCard(ctx, fullID, pki.ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
		_, err := runMailTest(t, st, full, alicePIN)
		check(t, err, "signing certificate", "certificate revoked on ", true)
	})
}

// TestMailTestPCSC runs the mail self-test on a card in a real pcscd
// (vpcd) reader, as the diagnostics screen does for a card holder's card.
func TestMailTestPCSC(t *testing.T) {
	st := demoStation(t)
	vs, err := virtual.NewState(5301)
	if err != nil {
		t.Fatal(err)
	}
	reader := cardtest.Attach(t, virtual.New(vs, ""))
	if _, err := st.Enroll(context.Background(), EnrollRequest{User: "alice", Reader: reader, PIN: alicePIN,
		Templates: []string{"smartcard-logon", "smime-signing", "smime-encryption"}}); err != nil {
		t.Fatal(err)
	}
	rep, err := st.MailTest(context.Background(), CardRef{Reader: reader}, alicePIN, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rep.Steps); n != 7 {
		t.Fatalf("%d steps: %+v", n, rep.Steps)
	}
	_, err = st.MailTest(context.Background(), CardRef{Reader: reader}, "97531864", nil)
	var me *MailTestError
	if !errors.As(err, &me) || me.Step != "PIN" || me.Reason != "wrong PIN — 2 tries left" {
		t.Fatalf("wrong PIN through PC/SC: %v", err)
	}
}
