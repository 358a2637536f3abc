package station

import (
	"context"
	"encoding/pem"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/inventory"
)

// kinitCard logs alice on with MIT kinit and her card (its certificate
// 01) through opensc-pkcs11 against the KDC at kdcAddr, which trusts the
// station's CA chain; env is the card reader's cardtest.OpenSCEnv.
func kinitCard(t *testing.T, st *Station, kdcAddr string, env []string, pin string) {
	t.Helper()
	klist := testpeer.Path(t, "klist")
	kenv, _, err := mitKinit(t, env, kdcAddr, filepath.Join(st.Dir, caChainFile), kdctest.PKCS11Identity(t, "certid=01"), pin+"\n", "alice@EXAMPLE.TEST")
	if err != nil {
		t.Fatalf("with alice's card: %v", err)
	}
	out, err := runPeer(t, kenv, "", klist)
	if err != nil || !strings.Contains(out, "Default principal: alice@EXAMPLE.TEST") || !strings.Contains(out, "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST") {
		t.Fatalf("klist: %v\n%s", err, out)
	}
}

func runPeer(t *testing.T, env []string, stdin, prog string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, prog, args...)
	c.Env = env
	c.Stdin = strings.NewReader(stdin)
	out, err := c.CombinedOutput()
	return string(out), err
}

// TestEnrollPCSC enrolls alice's card through the real PC/SC stack (a
// virtual card in a vpcd reader of pcscd), reads it back with OpenSC and
// yubico-piv-tool, and logs alice on against the station's embedded KDC with
// the station's PKINIT client and (RSA; MIT 1.20 signs with RSA only through
// PKCS#11) with MIT kinit through opensc-pkcs11.
func TestEnrollPCSC(t *testing.T) {
	pkcs15, yubico := testpeer.Path(t, "pkcs15-tool"), testpeer.Path(t, "yubico-piv-tool")
	for _, alg := range []pki.KeyAlgorithm{pki.RSA2048, pki.P256} {
		t.Run(string(alg), func(t *testing.T) {
			st := demoStation(t)
			ctx := context.Background()
			vs, err := virtual.NewState(31337)
			if err != nil {
				t.Fatal(err)
			}
			reader := cardtest.Attach(t, virtual.New(vs, ""))
			res, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon", "smime-signing", "smime-encryption"},
				Reader: reader, PIN: alicePIN, KeyAlgorithm: alg,
				Progress: func(s Step) { t.Logf("%-15s %8v %s", s.Name, s.Took.Round(time.Microsecond), s.Detail) }})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("total %v, card %v, CA %v", res.Total, res.CardTime, res.CATime)
			inv, _ := st.Inventory()
			if rec, err := inv.Get(res.CardID); err != nil || rec.State != inventory.Active || rec.Reader != reader {
				t.Fatalf("inventory: %+v %v", rec, err)
			}

			env := cardtest.OpenSCEnv(t, reader)
			out, err := runPeer(t, env, "", pkcs15, "--list-certificates")
			if err != nil {
				t.Fatalf("pkcs15-tool --list-certificates: %v\n%s", err, out)
			}
			if n := strings.Count(out, "X.509 Certificate ["); n != 3 {
				t.Fatalf("pkcs15-tool sees %d certificates:\n%s", n, out)
			}
			for i, id := range []string{"01", "02", "03"} {
				out, err := runPeer(t, env, "", pkcs15, "--read-certificate", id)
				if err != nil {
					t.Fatalf("pkcs15-tool --read-certificate %s: %v\n%s", id, err, out)
				}
				b, _ := pem.Decode([]byte(out[strings.Index(out, "-----BEGIN"):]))
				if b == nil || string(b.Bytes) != string(res.Certificates[i].Raw) {
					t.Errorf("certificate %s read by OpenSC differs from the issued one", id)
				}
			}
			// The factory management key no longer works: only this station
			// administers the card.
			out, err = runPeer(t, env, "", yubico, "-r", reader, "-a", "set-chuid")
			if err == nil {
				t.Fatalf("yubico-piv-tool set-chuid with the default management key succeeded:\n%s", out)
			}
			t.Logf("yubico-piv-tool with the default management key: %s", strings.TrimSpace(out))
			out, err = runPeer(t, env, "", yubico, "-r", reader, "-a", "verify-pin", "-P", alicePIN)
			if err != nil {
				t.Fatalf("yubico-piv-tool verify-pin with alice's PIN: %v\n%s", err, out)
			}

			// MIT kinit with the card through opensc-pkcs11 against the
			// embedded KDC.
			k, stop := serveKDC(t, st, KDCOptions{TCP: "127.0.0.1:0", UDP: "127.0.0.1:0"})
			defer stop()
			// The station's own PKINIT client with the card, any key type.
			roots := caRoots(t, st)
			if _, err := Logon(ctx, LogonOptions{User: "alice", Realm: "EXAMPLE.TEST", KDC: k.TCPAddr().String(), Roots: roots, Reader: reader, PIN: alicePIN}); err != nil {
				t.Fatalf("logon with alice's card: %v", err)
			}
			if alg != pki.RSA2048 {
				// MIT 1.20's PKCS#11 identity signs with CKM_RSA_PKCS only:
				// kinit cannot use an EC card key.
				return
			}
			kinitCard(t, st, k.TCPAddr().String(), env, alicePIN)
		})
	}
}

// TestEnrollPCSCCardRemoved pulls the card out of its vpcd reader in the
// middle of an enrollment, then puts it back (into another reader) and
// enrolls it again.
func TestEnrollPCSCCardRemoved(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	vs, err := virtual.NewState(4242)
	if err != nil {
		t.Fatal(err)
	}
	vc := virtual.New(vs, "")
	reader := cardtest.Attach(t, vc)
	_, err = st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon", "smime-signing"}, Reader: reader, PIN: alicePIN,
		Progress: func(s Step) {
			if s.Name == "requests" {
				vc.Close()
			}
		}})
	var ee *EnrollError
	if !errors.As(err, &ee) || ee.Step != "write" || len(ee.Revoked) != 2 {
		t.Fatalf("want a failure at write with both certificates revoked: %v", err)
	}
	if !errors.Is(err, card.ErrCardRemoved) {
		t.Errorf("the error does not say the card was removed: %v", err)
	}
	checkNothingActive(t, st, "alice")
	reader2 := cardtest.Attach(t, virtual.New(vc.State(), ""))
	res, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon", "smime-signing"}, Reader: reader2, PIN: alicePIN})
	if err != nil {
		t.Fatal(err)
	}
	if res.CardID != ee.CardID {
		t.Errorf("the card came back as %s, not %s", res.CardID, ee.CardID)
	}
}
