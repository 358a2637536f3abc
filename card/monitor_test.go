package card

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ebfe/scard"
)

// fakePCSC behaves like pcsc-lite's GetStatusChange for the monitor.
type fakePCSC struct {
	t       *testing.T
	mu      sync.Mutex
	readers map[string]*fakeReader
	down    bool
	wake    chan struct{}
	cancel  chan struct{}
	calls   int
}

type fakeReader struct {
	present bool
	atr     []byte
	counter uint32
}

func newFakePCSC(t *testing.T) *fakePCSC {
	return &fakePCSC{t: t, readers: map[string]*fakeReader{}, wake: make(chan struct{}, 1), cancel: make(chan struct{}, 1)}
}

func (f *fakePCSC) change(fn func()) {
	f.mu.Lock()
	fn()
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fakePCSC) addReader(name string) {
	f.change(func() { f.readers[name] = &fakeReader{} })
}
func (f *fakePCSC) removeReader(name string) { f.change(func() { delete(f.readers, name) }) }
func (f *fakePCSC) insert(name string, atr []byte) {
	f.change(func() { r := f.readers[name]; r.present, r.atr = true, atr; r.counter++ })
}
func (f *fakePCSC) pull(name string) {
	f.change(func() { r := f.readers[name]; r.present = false; r.counter++ })
}
func (f *fakePCSC) setDown(down bool) { f.change(func() { f.down = down }) }

func (f *fakePCSC) establish() (statusContext, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, scard.ErrNoService
	}
	return f, nil
}

func (f *fakePCSC) ListReaders() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, scard.ErrNoService
	}
	if len(f.readers) == 0 {
		return nil, scard.ErrNoReadersAvailable
	}
	var names []string
	for n := range f.readers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func (f *fakePCSC) GetStatusChange(rs []scard.ReaderState, timeout time.Duration) error {
	if len(rs) == 0 {
		f.t.Error("GetStatusChange with an empty state slice")
		return scard.ErrInvalidParameter
	}
	deadline := time.After(timeout)
	for {
		f.mu.Lock()
		f.calls++
		if f.down {
			f.mu.Unlock()
			return scard.ErrNoService
		}
		changed := false
		for i := range rs {
			r := &rs[i]
			var ev scard.StateFlag
			if r.Reader == pnpReader {
				ev = scard.StateFlag(len(f.readers) << 16)
			} else if fr, ok := f.readers[r.Reader]; !ok {
				ev = scard.StateUnknown
			} else {
				ev = scard.StateEmpty
				if fr.present {
					ev = scard.StatePresent
					r.Atr = fr.atr // like scard: Atr only set when there is one
				}
				ev |= scard.StateFlag(fr.counter << 16)
			}
			if ev != r.CurrentState {
				ev |= scard.StateChanged
				changed = true
			}
			r.EventState = ev
		}
		f.mu.Unlock()
		if changed {
			return nil
		}
		select {
		case <-f.wake:
		case <-f.cancel:
			return scard.ErrCancelled
		case <-deadline:
			return scard.ErrTimeout
		}
	}
}

func (f *fakePCSC) Cancel() error {
	select {
	case f.cancel <- struct{}{}:
	default:
	}
	return nil
}

func (f *fakePCSC) Release() error { return nil }

func startMonitor(t *testing.T, f *fakePCSC) (chan Event, context.CancelFunc, chan error) {
	m := &Monitor{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, establish: f.establish, fake: true}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event, 100)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, events) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return events, cancel, done
}

func expect(t *testing.T, events chan Event, want ...Event) {
	t.Helper()
	for _, w := range want {
		select {
		case e := <-events:
			if e.Kind != w.Kind || e.Reader != w.Reader || string(e.ATR) != string(w.ATR) {
				t.Fatalf("event %v (ATR %X), want %v (ATR %X)", e, e.ATR, w, w.ATR)
			}
			if w.Kind == ServiceDown && !errors.Is(e.Err, ErrNoService) {
				t.Fatalf("ServiceDown error %v", e.Err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("no event, want %v", w)
		}
	}
}

func expectNone(t *testing.T, events chan Event) {
	t.Helper()
	select {
	case e := <-events:
		t.Fatalf("unexpected event %v", e)
	case <-time.After(50 * time.Millisecond):
	}
}

var atr1 = []byte{0x3B, 0x01}
var atr2 = []byte{0x3B, 0x02}

func TestMonitorEvents(t *testing.T) {
	f := newFakePCSC(t)
	f.addReader("A")
	f.addReader("B")
	f.insert("A", atr1)
	events, _, _ := startMonitor(t, f)
	expect(t, events,
		Event{Kind: ServiceUp},
		Event{Kind: ReaderAdded, Reader: "A"},
		Event{Kind: ReaderAdded, Reader: "B"},
		Event{Kind: CardInserted, Reader: "A", ATR: atr1},
	)
	expectNone(t, events)

	f.insert("B", atr2)
	expect(t, events, Event{Kind: CardInserted, Reader: "B", ATR: atr2})
	f.pull("A")
	expect(t, events, Event{Kind: CardRemoved, Reader: "A"}) // no stale ATR
	expectNone(t, events)

	// card swapped between two looks: removed and inserted
	f.mu.Lock()
	f.readers["B"].counter += 2
	f.readers["B"].atr = atr1
	f.mu.Unlock()
	f.change(func() {})
	expect(t, events, Event{Kind: CardRemoved, Reader: "B"}, Event{Kind: CardInserted, Reader: "B", ATR: atr1})

	// reader hotplug
	f.addReader("C")
	expect(t, events, Event{Kind: ReaderAdded, Reader: "C"})
	f.removeReader("B")
	expect(t, events, Event{Kind: CardRemoved, Reader: "B"}, Event{Kind: ReaderRemoved, Reader: "B"})
	expectNone(t, events)
}

func TestMonitorNoReaders(t *testing.T) {
	f := newFakePCSC(t)
	events, _, _ := startMonitor(t, f)
	expect(t, events, Event{Kind: ServiceUp})
	expectNone(t, events)
	f.addReader("A")
	f.insert("A", atr1)
	expect(t, events, Event{Kind: ReaderAdded, Reader: "A"}, Event{Kind: CardInserted, Reader: "A", ATR: atr1})
}

func TestMonitorServiceRestart(t *testing.T) {
	f := newFakePCSC(t)
	f.addReader("A")
	f.insert("A", atr1)
	events, _, _ := startMonitor(t, f)
	expect(t, events, Event{Kind: ServiceUp}, Event{Kind: ReaderAdded, Reader: "A"}, Event{Kind: CardInserted, Reader: "A", ATR: atr1})

	f.setDown(true)
	expect(t, events,
		Event{Kind: CardRemoved, Reader: "A"},
		Event{Kind: ReaderRemoved, Reader: "A"},
		Event{Kind: ServiceDown},
	)
	expectNone(t, events) // one ServiceDown while it stays down, retries in between
	f.setDown(false)
	expect(t, events, Event{Kind: ServiceUp}, Event{Kind: ReaderAdded, Reader: "A"}, Event{Kind: CardInserted, Reader: "A", ATR: atr1})
}

func TestMonitorStartsWithServiceDown(t *testing.T) {
	f := newFakePCSC(t)
	f.setDown(true)
	events, _, _ := startMonitor(t, f)
	expect(t, events, Event{Kind: ServiceDown})
	f.addReader("A")
	f.setDown(false)
	expect(t, events, Event{Kind: ServiceUp}, Event{Kind: ReaderAdded, Reader: "A"})
}

func TestMonitorCancel(t *testing.T) {
	f := newFakePCSC(t)
	f.addReader("A")
	events, cancel, done := startMonitor(t, f)
	expect(t, events, Event{Kind: ServiceUp}, Event{Kind: ReaderAdded, Reader: "A"})
	time.Sleep(20 * time.Millisecond) // blocked in GetStatusChange
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Run took %v to stop", d)
		}
		done <- err // for the cleanup
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// A consumer that stops reading does not keep Run from stopping.
func TestMonitorCancelWhileSending(t *testing.T) {
	f := newFakePCSC(t)
	f.addReader("A")
	m := &Monitor{establish: f.establish, fake: true}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, make(chan Event)) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestMonitorOnePerProcess(t *testing.T) {
	f := newFakePCSC(t)
	m1 := &Monitor{establish: f.establish}
	m2 := &Monitor{establish: f.establish}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event, 10)
	done := make(chan error, 1)
	go func() { done <- m1.Run(ctx, events) }()
	<-events // ServiceUp: m1 holds the lock
	if err := m2.Run(ctx, events); !errors.Is(err, ErrMonitorBusy) {
		t.Errorf("second monitor: %v", err)
	}
	cancel()
	<-done
}
