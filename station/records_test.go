package station

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

// cardStation is a station with alice's active card holding a logon and a
// signing certificate.
type cardStation struct {
	st      *Station
	dir, id string
	serials []*big.Int
}

func newCardStation(t *testing.T, opts CAOptions) *cardStation {
	t.Helper()
	dir := t.TempDir()
	st, err := Init(dir, InitOptions{Domain: "example.test", CA: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.Actor = "cli:tester"
	d, _ := st.Directory()
	if _, err := d.AddUser(directory.User{Name: "alice", UPN: "alice@example.test", Mail: "alice@example.test"}); err != nil {
		t.Fatal(err)
	}
	cs := &cardStation{st: st, dir: dir, id: inventory.CardID(nil, 4242)}
	c := &inventory.Card{ID: cs.id, Serial: 4242, Owner: "alice", State: inventory.Active}
	for _, tc := range []struct{ slot, template string }{{"9a", "smartcard-logon"}, {"9c", "smime-signing"}} {
		_, csr := pkitest.NewCSR(t, pki.P256)
		issued, err := st.Issue(context.Background(), opts.Passphrase, tc.template, csr, "alice", "")
		if err != nil {
			t.Fatal(err)
		}
		cs.serials = append(cs.serials, issued.Record.Serial)
		c.Certificates = append(c.Certificates, inventory.CertRef{Slot: tc.slot, Serial: hexSerial(issued.Record.Serial), Template: tc.template, NotAfter: issued.Record.NotAfter})
	}
	inv, err := st.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	if err := inv.Create(c); err != nil {
		t.Fatal(err)
	}
	return cs
}

func (cs *cardStation) statuses(t *testing.T) []pki.Status {
	t.Helper()
	db, err := cs.st.CADB()
	if err != nil {
		t.Fatal(err)
	}
	var out []pki.Status
	for _, s := range cs.serials {
		r, err := db.Get(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.Status)
	}
	return out
}

func (cs *cardStation) state(t *testing.T) inventory.State {
	t.Helper()
	inv, _ := cs.st.Inventory()
	c, err := inv.Get(cs.id)
	if err != nil {
		t.Fatal(err)
	}
	return c.State
}

// crlText is openssl's reading of the published CRL.
func (cs *cardStation) crlText(t *testing.T, openssl string) string {
	t.Helper()
	out, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", cs.st.CRLPath(), "-noout", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	return string(out)
}

// opensslSerial is how openssl crl -text prints a serial.
func opensslSerial(n *big.Int) string {
	s := fmt.Sprintf("%X", n)
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return "Serial Number: " + s
}

func (cs *cardStation) actions(t *testing.T, q audit.Query) []string {
	t.Helper()
	return auditActions(t, cs.st, q)
}

func TestCardLifecycle(t *testing.T) {
	openssl := testpeer.Path(t, "openssl")
	ctx := context.Background()
	cs := newCardStation(t, CAOptions{})
	st := cs.st

	res, err := st.SuspendCard(ctx, cs.id, "reported missing")
	if err != nil {
		t.Fatal(err)
	}
	if res.Card.State != inventory.Suspended || len(res.Changed) != 2 || res.CRL == nil || res.CRLErr != nil {
		t.Fatalf("suspend: %+v", res)
	}
	if got := fmt.Sprint(cs.statuses(t)); got != "[hold hold]" {
		t.Fatalf("statuses after suspend: %s", got)
	}
	text := cs.crlText(t, openssl)
	for _, s := range cs.serials {
		if !strings.Contains(text, opensslSerial(s)) {
			t.Errorf("CRL lacks %s:\n%s", opensslSerial(s), text)
		}
	}
	if strings.Count(text, "Certificate Hold") != 2 {
		t.Errorf("CRL does not show two holds:\n%s", text)
	}

	// Illegal: suspending again changes nothing and is audited as refused.
	var te *inventory.TransitionError
	if _, err := st.SuspendCard(ctx, cs.id, ""); !errors.As(err, &te) {
		t.Fatalf("second suspend: %v", err)
	}
	if got := fmt.Sprint(cs.statuses(t)); got != "[hold hold]" {
		t.Fatalf("refused suspend changed statuses: %s", got)
	}

	res, err = st.ReinstateCard(ctx, cs.id, "found")
	if err != nil {
		t.Fatal(err)
	}
	if res.Card.State != inventory.Active || len(res.Changed) != 2 {
		t.Fatalf("reinstate: %+v", res)
	}
	if got := fmt.Sprint(cs.statuses(t)); got != "[valid valid]" {
		t.Fatalf("statuses after reinstate: %s", got)
	}
	if text := cs.crlText(t, openssl); strings.Contains(text, "Serial Number") {
		t.Fatalf("CRL still lists certificates after reinstate:\n%s", text)
	}

	// Suspend, then revoke from suspended: the holds become keyCompromise.
	if _, err := st.SuspendCard(ctx, cs.id, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RevokeCard(ctx, cs.id, pki.ReasonCertificateHold); !errors.Is(err, ErrBadReason) {
		t.Fatalf("revoke with hold: %v", err)
	}
	res, err = st.RevokeCard(ctx, cs.id, pki.ReasonKeyCompromise)
	if err != nil {
		t.Fatal(err)
	}
	if res.Card.State != inventory.Revoked || len(res.Changed) != 2 {
		t.Fatalf("revoke: %+v", res)
	}
	text = cs.crlText(t, openssl)
	if strings.Count(text, "Key Compromise") != 2 || strings.Contains(text, "Certificate Hold") {
		t.Fatalf("CRL after revoke:\n%s", text)
	}
	for _, f := range []func() error{
		func() error { _, err := st.ReinstateCard(ctx, cs.id, ""); return err },
		func() error { _, err := st.SuspendCard(ctx, cs.id, ""); return err },
		func() error { _, err := st.RevokeCard(ctx, cs.id, pki.ReasonSuperseded); return err },
	} {
		if err := f(); !errors.As(err, &te) {
			t.Fatalf("action on a revoked card: %v", err)
		}
	}
	if _, err := st.SuspendCard(ctx, "serial:1", ""); !errors.Is(err, inventory.ErrNotFound) {
		t.Fatalf("unknown card: %v", err)
	}

	inv, _ := st.Inventory()
	c, _ := inv.Get(cs.id)
	var hist []string
	for _, e := range c.History {
		hist = append(hist, fmt.Sprintf("%s %s->%s %s", e.Action, e.From, e.To, e.Actor))
	}
	want := []string{
		"card.suspend active->suspended cli:tester",
		"card.reinstate suspended->active cli:tester",
		"card.suspend active->suspended cli:tester",
		"card.revoke suspended->revoked cli:tester",
	}
	if fmt.Sprint(hist) != fmt.Sprint(want) {
		t.Errorf("history:\n%s\nwant\n%s", strings.Join(hist, "\n"), strings.Join(want, "\n"))
	}

	got := cs.actions(t, audit.Query{Card: cs.id})
	wantAudit := []string{
		"cert.hold:ok", "cert.hold:ok", "card.state:ok",
		"card.suspend:refused",
		"cert.release:ok", "cert.release:ok", "card.state:ok",
		"cert.hold:ok", "cert.hold:ok", "card.state:ok",
		"card.revoke:refused",
		"cert.revoke:ok", "cert.revoke:ok", "card.state:ok",
		"card.reinstate:refused", "card.suspend:refused", "card.revoke:refused",
	}
	if fmt.Sprint(got) != fmt.Sprint(wantAudit) {
		t.Errorf("audit:\n%v\nwant\n%v", got, wantAudit)
	}
	if n := len(cs.actions(t, audit.Query{Action: "crl.publish"})); n != 4 {
		t.Errorf("%d CRLs published, want 4", n)
	}
	if n := len(cs.actions(t, audit.Query{Action: "cert.issue", User: "alice"})); n != 2 {
		t.Errorf("%d issuances audited, want 2", n)
	}
	l, _ := st.Audit()
	if _, err := l.Verify(); err != nil {
		t.Fatal(err)
	}
}

// With an encrypted CA key and no way to unlock it without a prompt, the
// card is still suspended, and the result says the CRL is stale.
func TestSuspendWithEncryptedKeyLeavesCRLStale(t *testing.T) {
	pass := fixedPassphrase("correct horse")
	cs := newCardStation(t, CAOptions{Passphrase: pass})
	// A fresh process: the key is locked again.
	cs.st.Close()
	st, err := Open(cs.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs.st = st
	if _, err := st.PublishCRL(pass); err != nil {
		t.Fatal(err)
	}
	st.Close() // forget the unlocked key
	before, _ := os.ReadFile(st.CRLPath())
	res, err := st.SuspendCard(context.Background(), cs.id, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.CRL != nil || res.CRLErr == nil || res.Card.State != inventory.Suspended {
		t.Fatalf("result: %+v", res)
	}
	after, _ := os.ReadFile(st.CRLPath())
	if string(before) != string(after) {
		t.Fatal("the CRL changed without the CA key")
	}
	// With a passphrase source, the next action publishes.
	st.CRLPassphrase = pass
	res, err = st.ReinstateCard(context.Background(), cs.id, "")
	if err != nil || res.CRL == nil || res.CRLErr != nil {
		t.Fatalf("reinstate: %+v, %v", res, err)
	}
}

// The audit log is part of every action: when its chain head is broken,
// actions are refused before they change anything.
func TestBrokenAuditLogStopsActions(t *testing.T) {
	cs := newCardStation(t, CAOptions{})
	db0, _ := cs.st.CADB()
	issued, err := db0.List(pki.Query{})
	if err != nil {
		t.Fatal(err)
	}
	cs.st.Close()
	db, err := bolt.Open(filepath.Join(cs.dir, auditFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket([]byte("records")).Cursor().Last()
		return tx.Bucket([]byte("records")).Delete(k)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	st := cs.st
	var ae *AuditError
	if _, err := st.SuspendCard(context.Background(), cs.id, ""); !errors.As(err, &ae) {
		t.Fatalf("suspend: %v", err)
	}
	if _, err := st.Revoke(cs.serials[0], pki.ReasonKeyCompromise); !errors.As(err, &ae) {
		t.Fatalf("revoke: %v", err)
	}
	_, csr := pkitest.NewCSR(t, pki.P256)
	if _, err := st.Issue(context.Background(), nil, "smartcard-logon", csr, "alice", ""); !errors.As(err, &ae) {
		t.Fatalf("issue: %v", err)
	}
	if _, err := st.PublishCRL(nil); !errors.As(err, &ae) {
		t.Fatalf("crl: %v", err)
	}
	if got := fmt.Sprint(cs.statuses(t)); got != "[valid valid]" {
		t.Fatalf("statuses: %s", got)
	}
	if s := cs.state(t); s != inventory.Active {
		t.Fatalf("state: %s", s)
	}
	db2, _ := st.CADB()
	if recs, err := db2.List(pki.Query{}); err != nil || len(recs) != len(issued) {
		t.Fatalf("certificates: %d, want %d (%v)", len(recs), len(issued), err)
	}
}

func TestRevokeAndIssueAudited(t *testing.T) {
	cs := newCardStation(t, CAOptions{})
	st := cs.st
	if _, err := st.Revoke(cs.serials[0], pki.ReasonCertificateHold); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Release(cs.serials[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Release(cs.serials[0]); !errors.Is(err, pki.ErrNotOnHold) {
		t.Fatalf("second release: %v", err)
	}
	if _, err := st.Revoke(cs.serials[1], pki.ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	_, csr := pkitest.NewCSR(t, pki.P256)
	if _, err := st.Issue(context.Background(), nil, "smartcard-logon", csr, "nobody", ""); err == nil {
		t.Fatal("issued to an unknown user")
	}
	l, _ := st.Audit()
	// Init issued the services' certificate on its own.
	recs, err := l.List(audit.Query{Actor: "station"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Action != "cert.issue" || recs[0].Outcome != audit.OK || recs[0].Cert == "" || !strings.Contains(recs[0].Detail, "template server") {
		t.Fatalf("the station's own issuance: %+v", recs)
	}
	recs, err = l.List(audit.Query{Actor: "cli:tester"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		if r.Actor != "cli:tester" {
			t.Errorf("actor %q", r.Actor)
		}
		got = append(got, fmt.Sprintf("%s:%s:%s:%v", r.Action, r.Outcome, r.User, r.Cert != ""))
	}
	want := []string{
		"cert.issue:ok:alice:true", "cert.issue:ok:alice:true",
		"cert.hold:ok:alice:true", "cert.release:ok:alice:true", "cert.release:refused:alice:true",
		"cert.revoke:ok:alice:true", "cert.issue:refused:nobody:false",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit:\n%v\nwant\n%v", got, want)
	}
}

// A certificate whose issuance cannot be written to the audit log is
// revoked again, so none is valid without a record.
func TestUnrecordedIssuanceRevoked(t *testing.T) {
	cs := newCardStation(t, CAOptions{})
	st := cs.st
	ca, err := st.CA(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, csr := pkitest.NewCSR(t, pki.P256)
	req, err := pki.ParseRequest(csr)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ca.Issue(context.Background(), pki.IssueRequest{Template: "smartcard-logon", Request: req, Requester: pki.RequesterOperator, User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := st.Audit()
	l.Close() // the disk goes away under the log
	var ae *AuditError
	if err := st.recordIssued(issueRecord("smartcard-logon", "alice", ""), issued); !errors.As(err, &ae) {
		t.Fatalf("recordIssued: %v", err)
	}
	st.shared.audit = nil
	db, _ := st.CADB()
	r, err := db.Get(issued.Record.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != pki.StatusRevoked || r.Reason != pki.ReasonCessationOfOperation {
		t.Fatalf("unrecorded certificate is %s (%s)", r.Status, r.Reason)
	}
}

// The station's records are shared by serve's services and forwarded
// commands: concurrent first use opens each store once.
func TestRecordsConcurrent(t *testing.T) {
	st, err := Init(t.TempDir(), InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Close() // the stores are opened again, lazily, by the goroutines
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := st.Inventory(); err != nil {
				t.Error(err)
			}
			if err := st.Record(audit.Record{Action: "pin.failed", Detail: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	l, _ := st.Audit()
	if n, err := l.Verify(); n < 8 || err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

// A card one of whose certificates was revoked for good while it was
// suspended is not reinstated, and nothing changes; revoking it works.
func TestReinstateRefusedAfterPermanentRevocation(t *testing.T) {
	ctx := context.Background()
	cs := newCardStation(t, CAOptions{})
	st := cs.st
	if _, err := st.SuspendCard(ctx, cs.id, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Revoke(cs.serials[0], pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReinstateCard(ctx, cs.id, ""); !errors.Is(err, ErrCertRevoked) {
		t.Fatalf("reinstate: %v", err)
	}
	if got := fmt.Sprint(cs.statuses(t)); got != "[revoked hold]" || cs.state(t) != inventory.Suspended {
		t.Fatalf("refused reinstate changed things: %s, %s", got, cs.state(t))
	}
	res, err := st.RevokeCard(ctx, cs.id, pki.ReasonKeyCompromise)
	if err != nil || len(res.Changed) != 1 {
		t.Fatalf("revoke: %+v, %v", res, err)
	}
	if got := fmt.Sprint(cs.statuses(t)); got != "[revoked revoked]" {
		t.Fatalf("after revoke: %s", got)
	}
	if got := cs.actions(t, audit.Query{Card: cs.id, Action: "card.reinstate"}); fmt.Sprint(got) != "[card.reinstate:refused]" {
		t.Fatalf("audit: %v", got)
	}
}

// A card whose inventory lists a certificate the CA does not know changes
// nothing: no certificate of it is touched.
func TestUnknownCertificateChangesNothing(t *testing.T) {
	cs := newCardStation(t, CAOptions{})
	inv, _ := cs.st.Inventory()
	if _, err := inv.Update(cs.id, func(c *inventory.Card) error {
		c.Certificates = append(c.Certificates, inventory.CertRef{Slot: "9d", Serial: "7777"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.st.SuspendCard(context.Background(), cs.id, ""); !errors.Is(err, pki.ErrNotFound) {
		t.Fatalf("suspend: %v", err)
	}
	if got := fmt.Sprint(cs.statuses(t)); got != "[valid valid]" || cs.state(t) != inventory.Active {
		t.Fatalf("statuses %s, state %s", got, cs.state(t))
	}
}
