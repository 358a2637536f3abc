package station

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/scstation/scstation/station/audit"
)

// A borrowed station (a forwarded command) shares the holder's inventory,
// audit log and master secret, but not what belongs to one command: its
// audit records carry the actor of the user who ran it, the holder's
// officer session is not its own, and closing it ends only its own session
// and closes nothing shared.
func TestBorrowPerCommandState(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "demo")
	st, _, err := Demo(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The holder acts as someone else (as the station's TUI does) and has
	// its officer signed in.
	st.Actor = "tui:holder"
	if _, err := st.SignInVirtual(ctx, DemoOfficer, DemoOfficerPIN); err != nil {
		t.Fatal(err)
	}

	b := st.Borrow(nil)
	if _, err := b.Officer(); !errors.Is(err, ErrNotSignedIn) {
		t.Errorf("the holder's officer session reached the borrowed station: %v", err)
	}
	if _, err := b.PublishCRL(nil); err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]func() (any, error){
		{func() (any, error) { return st.Inventory() }, func() (any, error) { return b.Inventory() }},
		{func() (any, error) { return st.Audit() }, func() (any, error) { return b.Audit() }},
		{func() (any, error) { return st.CADB() }, func() (any, error) { return b.CADB() }},
		{func() (any, error) { return st.UserDirectory() }, func() (any, error) { return b.UserDirectory() }},
	} {
		x, err1 := pair[0]()
		y, err2 := pair[1]()
		if err1 != nil || err2 != nil || x != y {
			t.Errorf("a store is not shared: %v %v (%T)", err1, err2, x)
		}
	}
	// The borrowed station's own officer session ends with it.
	if _, err := b.SignInVirtual(ctx, DemoOfficer, DemoOfficerPIN); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Officer(); err != nil {
		t.Errorf("closing the borrowed station ended the holder's session: %v", err)
	}
	// The shared log is still open for the holder.
	if err := st.Record(audit.Record{Action: "officer.check", Outcome: audit.OK}); err != nil {
		t.Fatalf("the audit log was closed with the borrowed station: %v", err)
	}
	l, err := st.Audit()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := l.List(audit.Query{Action: "crl.publish"})
	if err != nil || len(recs) == 0 {
		t.Fatalf("crl.publish records: %v %v", recs, err)
	}
	if recs[0].Actor != DefaultActor() {
		t.Errorf("the borrowed station's CRL is audited as %q, want %q", recs[0].Actor, DefaultActor())
	}
	signouts, err := l.List(audit.Query{Action: "officer.signout"})
	if err != nil || len(signouts) != 1 || signouts[0].Actor != "officer:"+DemoOfficer {
		t.Errorf("officer.signout records: %+v %v", signouts, err)
	}
	if n, err := l.Verify(); err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

// A data directory without a master secret yet gets one, the same for
// every forwarded command that asks at once.
func TestBorrowMasterSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "st")
	st, err := Init(dir, InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Remove(filepath.Join(dir, masterKeyFile)); err != nil {
		t.Fatal(err)
	}
	st, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secrets := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range secrets {
		wg.Go(func() {
			b := st.Borrow(nil)
			defer b.Close()
			m, err := b.masterSecret()
			if err != nil {
				t.Error(err)
			}
			secrets[i] = bytes.Clone(m)
		})
	}
	wg.Wait()
	onDisk, err := os.ReadFile(filepath.Join(dir, masterKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range secrets {
		if !bytes.Equal(m, onDisk) {
			t.Fatalf("command %d used a master secret other than the one kept", i)
		}
	}
}
