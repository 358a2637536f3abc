package card_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
)

// TestPCSCDRestart stops and restarts a real pcscd under a running reader
// Monitor and a virtual card served through vpcd: the Monitor must report
// the service, readers and card going and coming back by itself, and the
// emulator must reconnect to vpcd by itself (same ServeVPCD call), so that
// the card answers again through a new PC/SC context.
//
// It needs pcscd to itself, so it runs only with SCSTATION_PCSCD_RESTART=1:
// make test runs it in a phase of its own, after the other tests and their
// shared pcscd are done.
func TestPCSCDRestart(t *testing.T) {
	if os.Getenv("SCSTATION_PCSCD_RESTART") != "1" {
		t.Skip("stops and restarts pcscd, so it runs alone in its own phase of make test (SCSTATION_PCSCD_RESTART=1)")
	}
	const cycles = 2
	// Bounds, not sleeps: every wait below polls or blocks on an event
	// and returns as soon as it is satisfied.
	const (
		downWithin = 5 * time.Second  // monitor and emulator notice pcscd gone
		upWithin   = 20 * time.Second // back, with readers and the card
	)

	d := cardtest.StartPCSCD(t, t.TempDir())
	reader, addr := cardtest.Readers[0].Name, cardtest.Readers[0].Addr
	var allReaders []string
	for _, r := range cardtest.Readers {
		allReaders = append(allReaders, r.Name)
	}

	// The card, served once for the whole test.
	st, err := virtual.NewState(0x5C0DE)
	if err != nil {
		t.Fatal(err)
	}
	guid := st.GUID()
	vc := virtual.New(st, "")
	vlog := &logRecorder{t: t}
	sctx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- vc.ServeVPCD(sctx, addr, vlog.logger()) }()
	t.Cleanup(func() {
		stopServe()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("ServeVPCD = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("ServeVPCD did not return after cancel")
		}
	})
	stillServing := func() {
		t.Helper()
		select {
		case err := <-served:
			t.Fatalf("ServeVPCD returned (%v): it must keep reconnecting by itself", err)
		default:
		}
	}

	// The monitor, also one Run for the whole test.
	mctx, stopMonitor := context.WithCancel(context.Background())
	events := make(chan card.Event, 256)
	ran := make(chan error, 1)
	go func() { ran <- card.NewMonitor().Run(mctx, events) }()
	t.Cleanup(func() {
		stopMonitor()
		select {
		case err := <-ran:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Monitor.Run = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Monitor.Run did not return after cancel")
		}
	})
	ev := &eventLog{t: t, events: events}

	// Readers and card are there, and the card answers.
	start := time.Now()
	got := ev.until(isEvent(card.CardInserted, reader), upWithin)
	ev.checkUp(got, allReaders, reader, vc.ATR())
	t.Logf("first start: monitor saw the card %v after it began", time.Since(start).Round(time.Millisecond))
	old := readGUID(t, reader, guid) // stays open across the restarts

	for cycle := 1; cycle <= cycles; cycle++ {
		inserted := vlog.count("card inserted into virtual reader")

		// pcscd goes away.
		killed := time.Now()
		if err := d.Stop(); err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		stopped := time.Since(killed)
		for _, f := range []string{cardtest.PIDFile, cardtest.Socket} {
			if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cycle %d: after stopping pcscd, %s: %v", cycle, f, err)
			}
		}
		got := ev.until(isEvent(card.ServiceDown, ""), downWithin)
		sawDown := time.Since(killed)
		down := got[len(got)-1]
		if !errors.Is(down.Err, card.ErrNoService) {
			t.Errorf("cycle %d: %v, want an error matching ErrNoService", cycle, down)
		}
		ev.checkGone(got, allReaders, reader)
		if !waitUntil(func() bool { return vlog.count("virtual reader connection lost") >= cycle }, downWithin) {
			t.Fatalf("cycle %d: the emulator did not notice vpcd going away; its log:\n%s", cycle, vlog)
		}
		// Down for real: the emulator's redials are refused before pcscd
		// is back.
		if !waitUntil(func() bool { return vlog.count("cannot reach vpcd") >= cycle }, downWithin) {
			t.Fatalf("cycle %d: the emulator did not retry while vpcd was gone; its log:\n%s", cycle, vlog)
		}
		stillServing()
		if _, err := card.EstablishContext(); !errors.Is(err, card.ErrNoService) {
			t.Errorf("cycle %d: EstablishContext while pcscd is down = %v, want ErrNoService", cycle, err)
		}

		// pcscd comes back, same configuration.
		restarted := time.Now()
		if err := d.Start(); err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		ready := time.Since(restarted)
		got = ev.until(isEvent(card.CardInserted, reader), upWithin)
		sawCard := time.Since(restarted)
		ev.checkUp(got, allReaders, reader, vc.ATR())
		if !waitUntil(func() bool { return vlog.count("card inserted into virtual reader") > inserted }, upWithin) {
			t.Fatalf("cycle %d: the emulator did not reconnect; its log:\n%s", cycle, vlog)
		}
		stillServing()

		// The card answers through a new context; the old connection does
		// not pretend to work.
		answered := time.Now()
		readGUID(t, reader, guid)
		pivTime := time.Since(answered)
		if c, err := old.CHUID(); err == nil {
			t.Errorf("cycle %d: the connection from before the restart still reads the CHUID (%s)", cycle, c.GUIDString())
		} else {
			t.Logf("cycle %d: connection from before the restart: %v", cycle, err)
		}
		t.Logf("cycle %d: pcscd stopped in %v, monitor reported it down after %v; "+
			"pcscd ready %v after start, monitor saw readers and card after %v; "+
			"PIV open + CHUID through a new context in %v",
			cycle, stopped.Round(time.Millisecond), sawDown.Round(time.Millisecond),
			ready.Round(time.Millisecond), sawCard.Round(time.Millisecond), pivTime.Round(time.Millisecond))
	}
	if n := vlog.count("card inserted into virtual reader"); n != cycles+1 {
		t.Errorf("the emulator connected to vpcd %d times, want %d (one per pcscd start); its log:\n%s", n, cycles+1, vlog)
	}
}

// readGUID connects to the card in reader through a new PC/SC context,
// opens PIV and checks the CHUID's GUID. The PIV stays open until the end
// of the test.
func readGUID(t *testing.T, reader string, want []byte) *card.PIV {
	t.Helper()
	p := cardtest.OpenPIV(t, reader)
	chuid, err := p.CHUID()
	if err != nil {
		t.Fatalf("CHUID: %v", err)
	}
	if !bytes.Equal(chuid.GUID[:], want) {
		t.Fatalf("CHUID GUID %X, want the card's %X", chuid.GUID, want)
	}
	return p
}

// eventLog reads the Monitor's events.
type eventLog struct {
	t      *testing.T
	events chan card.Event
}

func isEvent(kind card.EventKind, reader string) func(card.Event) bool {
	return func(e card.Event) bool { return e.Kind == kind && (reader == "" || e.Reader == reader) }
}

// until returns the events up to and including the first that matches,
// failing the test if none comes within limit.
func (l *eventLog) until(match func(card.Event) bool, limit time.Duration) []card.Event {
	l.t.Helper()
	timeout := time.NewTimer(limit)
	defer timeout.Stop()
	var got []card.Event
	for {
		select {
		case e := <-l.events:
			got = append(got, e)
			if match(e) {
				return got
			}
		case <-timeout.C:
			l.t.Fatalf("no such event within %v; events so far: %v", limit, got)
		}
	}
}

// checkUp: the events of the service coming up, ending with the card
// inserted into reader.
func (l *eventLog) checkUp(got []card.Event, readers []string, reader string, atr []byte) {
	l.t.Helper()
	if got[0].Kind != card.ServiceUp {
		l.t.Errorf("first event %v, want ServiceUp; events: %v", got[0], got)
	}
	added := map[string]bool{}
	for _, e := range got {
		switch e.Kind {
		case card.ReaderAdded:
			added[e.Reader] = true
		case card.ServiceDown, card.ReaderRemoved, card.CardRemoved:
			l.t.Errorf("unexpected %v while coming up; events: %v", e, got)
		}
	}
	for _, r := range readers {
		if !added[r] {
			l.t.Errorf("no ReaderAdded for %q; events: %v", r, got)
		}
	}
	if last := got[len(got)-1]; !bytes.Equal(last.ATR, atr) {
		l.t.Errorf("%v with ATR %X, want %X", last, last.ATR, atr)
	}
}

// checkGone: the events of the service going away, ending with
// ServiceDown: the card and every reader removed first.
func (l *eventLog) checkGone(got []card.Event, readers []string, reader string) {
	l.t.Helper()
	removed := map[string]bool{}
	cardOut := false
	for _, e := range got[:len(got)-1] {
		switch {
		case e.Kind == card.CardRemoved && e.Reader == reader:
			if removed[reader] {
				l.t.Errorf("CardRemoved after ReaderRemoved for %q; events: %v", reader, got)
			}
			cardOut = true
		case e.Kind == card.ReaderRemoved:
			removed[e.Reader] = true
		default:
			l.t.Errorf("unexpected %v while going down; events: %v", e, got)
		}
	}
	if !cardOut {
		l.t.Errorf("no CardRemoved for %q before ServiceDown; events: %v", reader, got)
	}
	for _, r := range readers {
		if !removed[r] {
			l.t.Errorf("no ReaderRemoved for %q before ServiceDown; events: %v", r, got)
		}
	}
}

func waitUntil(cond func() bool, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// logRecorder keeps the emulator's log messages (to count its
// connections to vpcd) and passes them on to the test log.
type logRecorder struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) logger() *slog.Logger { return slog.New(recordHandler{r: r}) }

func (r *logRecorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if strings.Contains(l, msg) {
			n++
		}
	}
	return n
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// recordHandler is the slog.Handler of a logRecorder.
type recordHandler struct {
	r     *logRecorder
	attrs []slog.Attr
}

func (h recordHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h recordHandler) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", rec.Time.Format("15:04:05.000"), rec.Level, rec.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s", a); return true })
	h.r.mu.Lock()
	h.r.lines = append(h.r.lines, b.String())
	h.r.mu.Unlock()
	h.r.t.Log("emulator: " + b.String())
	return nil
}

func (h recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return recordHandler{r: h.r, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h recordHandler) WithGroup(string) slog.Handler { return h }
