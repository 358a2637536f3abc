package station

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/pki"
)

// TestStationLogonRevoked: at the station, a logon the KDC refuses for a
// revoked certificate says when and why the CA revoked it (the KDC itself
// tells the client only "certificate revoked").
func TestStationLogonRevoked(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	vc, id := enrollMailCard(t, st, "alice", 5401, pki.P256, "smartcard-logon")
	k, stop := serveKDC(t, st, KDCOptions{TCP: "127.0.0.1:0", UDP: "127.0.0.1:0"})
	defer stop()

	p, err := card.OpenPIV(virtual.New(vc.State(), ""))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cert, err := p.Certificate(card.SlotAuthentication)
	if err != nil {
		t.Fatal(err)
	}
	key, err := p.PrivateKey(card.SlotAuthentication, cert.PublicKey, card.KeyAuth{PIN: alicePIN})
	if err != nil {
		t.Fatal(err)
	}
	opts := LogonOptions{User: "alice", Realm: st.Config.Realm, KDC: k.TCPAddr().String(), Roots: caRoots(t, st),
		Certificate: cert, Key: key.(crypto.Signer)}
	if _, err := st.Logon(ctx, opts); err != nil {
		t.Fatalf("logon before the revocation: %v", err)
	}
	if _, err := st.RevokeCard(ctx, id, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	_, lerr := st.Logon(ctx, opts)
	var le *LogonError
	db, err := st.CADB()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := db.Get(cert.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	want := "certificate revoked on " + rec.RevokedAt.UTC().Format(time.DateOnly) + " (keyCompromise)"
	if !errors.As(lerr, &le) || !le.Refused || !strings.HasPrefix(le.Reason, want) {
		t.Fatalf("logon after the revocation: %v; want a refusal starting %q", lerr, want)
	}
	// Without the station (package Logon), the KDC's words only.
	if _, err := Logon(ctx, opts); err == nil || strings.Contains(err.Error(), "revoked on") {
		t.Fatalf("package Logon: %v", err)
	}
}
