package card_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
)

// attach puts a fresh virtual card into a vpcd reader of the real pcscd
// and connects to it through PC/SC.
func attach(t *testing.T, serial uint32) (*virtual.Card, string, *card.Context, card.Card) {
	t.Helper()
	st, err := virtual.NewState(serial)
	if err != nil {
		t.Fatal(err)
	}
	vc := virtual.New(st, "")
	reader := cardtest.Attach(t, vc)
	ctx, err := card.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctx.Release() })
	readers, err := ctx.ListReaders()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(readers, reader) {
		t.Fatalf("ListReaders = %q, no %q", readers, reader)
	}
	c, err := ctx.Connect(reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return vc, reader, ctx, c
}

// TestFlowPCSC runs the same flow as TestFlowInProcess through pcscd and
// vpcd.
func TestFlowPCSC(t *testing.T) {
	vc, _, _, c := attach(t, 87654321)
	if a, ok := c.(interface{ ATR() []byte }); !ok || !bytes.Equal(a.ATR(), vc.ATR()) {
		t.Errorf("ATR through PC/SC differs from the card's")
	}
	p, err := card.OpenPIV(c)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	flow(t, p, 87654321)
	t.Logf("flow through pcscd in %v", time.Since(start))
}

func TestPCSCCardRemoved(t *testing.T) {
	vc, _, _, c := attach(t, 1)
	p, err := card.OpenPIV(c)
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, p)
	vc.Close() // pulled
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := p.GenerateKey(card.SlotAuthentication, card.AlgECCP256, card.KeyPolicy{})
		if err == nil {
			// possible only before vpcd saw the socket close
			if time.Now().After(deadline) {
				t.Fatal("card still answers 5 s after removal")
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !errors.Is(err, card.ErrCardRemoved) {
			t.Fatalf("after removal: %v, want ErrCardRemoved", err)
		}
		t.Logf("after removal: %v", err)
		break
	}
	if err := p.VerifyPIN(card.DefaultPIN); !errors.Is(err, card.ErrCardRemoved) {
		t.Errorf("later: %v", err)
	}
}

func TestPCSCConnectErrors(t *testing.T) {
	cardtest.PCSCD(t)
	ctx, err := card.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Release()
	if _, err := ctx.Connect("No Such Reader 00 00"); !errors.Is(err, card.ErrNoReader) {
		t.Errorf("unknown reader: %v", err)
	}
	reader, _ := cardtest.Reader(t) // free, so empty
	if _, err := ctx.Connect(reader); !errors.Is(err, card.ErrNoCard) {
		t.Errorf("empty reader: %v", err)
	}
}

func TestMonitorPCSC(t *testing.T) {
	cardtest.PCSCD(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan card.Event, 64)
	done := make(chan error, 1)
	go func() { done <- card.NewMonitor().Run(ctx, events) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(3 * time.Second):
			t.Error("Run did not stop after cancel")
		}
	}()
	wait := func(kind card.EventKind, reader string) card.Event {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case e := <-events:
				if e.Kind == kind && (reader == "" || e.Reader == reader) {
					return e
				}
			case <-timeout:
				t.Fatalf("no %v event for %q", kind, reader)
			}
		}
	}
	wait(card.ServiceUp, "")

	st, err := virtual.NewState(5)
	if err != nil {
		t.Fatal(err)
	}
	vc := virtual.New(st, "")
	reader := cardtest.Attach(t, vc)
	e := wait(card.CardInserted, reader)
	if !bytes.Equal(e.ATR, vc.ATR()) {
		t.Errorf("ATR %X, want %X", e.ATR, vc.ATR())
	}
	vc.Close()
	e = wait(card.CardRemoved, reader)
	if e.ATR != nil {
		t.Errorf("CardRemoved with ATR %X", e.ATR)
	}
}

// TestNoService runs EstablishContext and the Monitor in a child process
// whose PC/SC client looks for pcscd at a socket where none listens.
func TestNoService(t *testing.T) {
	if os.Getenv("SCSTATION_NO_PCSCD_CHILD") == "1" {
		noServiceChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoService$", "-test.v")
	cmd.Env = append(os.Environ(), "SCSTATION_NO_PCSCD_CHILD=1",
		"PCSCLITE_CSOCK_NAME="+t.TempDir()+"/no-pcscd.comm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "PC/SC service (pcscd) is not running") {
		t.Errorf("child output lacks the message:\n%s", out)
	}
}

func noServiceChild(t *testing.T) {
	_, err := card.EstablishContext()
	if !errors.Is(err, card.ErrNoService) {
		t.Fatalf("EstablishContext: %v, want ErrNoService", err)
	}
	t.Logf("EstablishContext: %v", err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	events := make(chan card.Event, 8)
	done := make(chan error, 1)
	go func() { done <- card.NewMonitor().Run(ctx, events) }()
	select {
	case e := <-events:
		if e.Kind != card.ServiceDown || !errors.Is(e.Err, card.ErrNoService) {
			t.Fatalf("first event %v", e)
		}
		t.Logf("event: %v", e)
	case <-ctx.Done():
		t.Fatal("no ServiceDown event")
	}
	cancel()
	<-done
}

// TestPCSCResetByOtherApp: another application resets the card between two
// operations; the PIV connection carries on, with the PIN no longer
// verified.
func TestPCSCResetByOtherApp(t *testing.T) {
	_, reader, ctx, c := attach(t, 2)
	p, err := card.OpenPIV(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyPIN(card.DefaultPIN); err != nil {
		t.Fatal(err)
	}
	if _, verified, err := p.PINStatus(); err != nil || !verified {
		t.Fatalf("PINStatus = %v, %v", verified, err)
	}
	other, err := ctx.Connect(reader)
	if err != nil {
		t.Fatal(err)
	}
	other.Close() // resets the card
	n, verified, err := p.PINStatus()
	if err != nil {
		t.Fatalf("after reset: %v", err)
	}
	if verified || n != 3 {
		t.Errorf("after reset: retries %d verified %v", n, verified)
	}
	if _, err := p.CHUID(); err != nil {
		t.Errorf("CHUID after reset: %v", err)
	}
}
