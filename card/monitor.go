package card

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ebfe/scard"
)

// EventKind says what happened.
type EventKind int

const (
	ReaderAdded EventKind = iota + 1
	ReaderRemoved
	CardInserted
	CardRemoved
	ServiceDown // PC/SC is not available; Err says why
	ServiceUp   // PC/SC is (again) available; reader and card events follow
)

func (k EventKind) String() string {
	switch k {
	case ReaderAdded:
		return "reader added"
	case ReaderRemoved:
		return "reader removed"
	case CardInserted:
		return "card inserted"
	case CardRemoved:
		return "card removed"
	case ServiceDown:
		return "PC/SC service down"
	case ServiceUp:
		return "PC/SC service up"
	}
	return fmt.Sprintf("event %d", int(k))
}

// Event is a change the Monitor saw.
type Event struct {
	Kind   EventKind
	Reader string
	ATR    []byte // CardInserted only
	Err    error  // ServiceDown only
}

func (e Event) String() string {
	switch {
	case e.Err != nil:
		return fmt.Sprintf("%s: %v", e.Kind, e.Err)
	case e.Reader != "":
		return fmt.Sprintf("%s: %s", e.Kind, e.Reader)
	}
	return e.Kind.String()
}

// pnpReader is pcsc-lite's pseudo-reader that changes when readers come and go.
const pnpReader = `\\?PnP?\Notification`

// statusContext is the part of a PC/SC context the Monitor uses (an
// interface so tests can drive it).
type statusContext interface {
	ListReaders() ([]string, error)
	GetStatusChange(rs []scard.ReaderState, timeout time.Duration) error
	Cancel() error
	Release() error
}

// monitorMu keeps GetStatusChange to one goroutine per process: scard
// writes a package-global map in it without a lock.
var monitorMu sync.Mutex

// ErrMonitorBusy: another Monitor is running in this process.
var ErrMonitorBusy = errors.New("card: another reader monitor is running in this process")

// Monitor watches PC/SC readers and reports readers and cards coming and
// going. It survives pcscd restarts. One Monitor runs per process.
type Monitor struct {
	// MinBackoff and MaxBackoff bound the wait between attempts to reach
	// pcscd while it is down.
	MinBackoff, MaxBackoff time.Duration
	// PollInterval is how often readers are listed again when the PC/SC
	// service has no hotplug notification.
	PollInterval time.Duration

	establish func() (statusContext, error)
	fake      bool // tests: no process-wide lock
}

// NewMonitor returns a Monitor on the system's PC/SC service.
func NewMonitor() *Monitor {
	return &Monitor{
		MinBackoff:   250 * time.Millisecond,
		MaxBackoff:   5 * time.Second,
		PollInterval: time.Second,
		establish: func() (statusContext, error) {
			c, err := scard.EstablishContext()
			if err != nil {
				return nil, err
			}
			return c, nil
		},
	}
}

type readerInfo struct {
	state   scard.StateFlag // last EventState minus StateChanged
	known   bool            // state came from the service
	present bool
}

// Run watches until ctx is done, sending events; it returns ctx.Err().
// It starts with ServiceUp, then ReaderAdded for each reader and
// CardInserted for each card present. While pcscd is unreachable it sends
// one ServiceDown (with the reason, matching ErrNoService when pcscd is not
// running), after CardRemoved/ReaderRemoved for everything it knew, and it
// keeps retrying with backoff.
func (m *Monitor) Run(ctx context.Context, events chan<- Event) error {
	if !m.fake {
		if !monitorMu.TryLock() {
			return ErrMonitorBusy
		}
		defer monitorMu.Unlock()
	}
	minB, maxB := m.MinBackoff, m.MaxBackoff
	if minB <= 0 {
		minB = 250 * time.Millisecond
	}
	if maxB < minB {
		maxB = minB
	}

	// The canceller: Cancel aborts a blocking GetStatusChange. Repeat it
	// until Run is out, as a Cancel that comes before the call blocks is lost.
	var mu sync.Mutex
	var cur statusContext
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			mu.Lock()
			if cur != nil {
				cur.Cancel()
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()

	send := func(e Event) bool {
		select {
		case events <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	sleep := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}

	backoff := minB
	down := false
	readers := map[string]*readerInfo{}
	for ctx.Err() == nil {
		c, err := m.establish()
		if err != nil {
			if !down {
				down = true
				if !send(Event{Kind: ServiceDown, Err: pcscError("establish PC/SC context", err, false)}) {
					break
				}
			}
			if !sleep(backoff) {
				break
			}
			backoff = min(backoff*2, maxB)
			continue
		}
		mu.Lock()
		cur = c
		mu.Unlock()
		down = false
		start := time.Now()
		if send(Event{Kind: ServiceUp}) {
			err = m.watch(ctx, c, readers, send)
		}
		mu.Lock()
		cur = nil
		c.Release()
		mu.Unlock()
		if ctx.Err() != nil {
			break
		}
		// The service went away (or misbehaves): forget what it told us.
		for _, name := range sortedKeys(readers) {
			if readers[name].present && !send(Event{Kind: CardRemoved, Reader: name}) {
				return ctx.Err()
			}
			if !send(Event{Kind: ReaderRemoved, Reader: name}) {
				return ctx.Err()
			}
		}
		clear(readers)
		down = true
		// Say why as plainly as possible: when pcscd is gone, that it is
		// not running, rather than what the broken call returned.
		downErr := pcscError("watch readers", err, false)
		if probe, perr := m.establish(); perr != nil {
			downErr = pcscError("establish PC/SC context", perr, false)
		} else {
			probe.Release()
		}
		if !send(Event{Kind: ServiceDown, Err: downErr}) {
			break
		}
		if time.Since(start) > 10*time.Second {
			backoff = minB
		}
		if !sleep(backoff) {
			break
		}
		backoff = min(backoff*2, maxB)
	}
	return ctx.Err()
}

func sortedKeys(m map[string]*readerInfo) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// watch runs GetStatusChange until ctx is done (nil) or the service fails
// (the error).
func (m *Monitor) watch(ctx context.Context, c statusContext, readers map[string]*readerInfo, send func(Event) bool) error {
	poll := m.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	pnp := scard.ReaderState{Reader: pnpReader, CurrentState: scard.StateUnaware}
	usePnP := true
	relist := true
	for {
		if ctx.Err() != nil {
			return nil
		}
		if relist {
			relist = false
			names, err := c.ListReaders()
			if errors.Is(err, scard.ErrNoReadersAvailable) {
				names, err = nil, nil
			}
			if err != nil {
				return err
			}
			for _, name := range sortedKeys(readers) {
				if slices.Contains(names, name) {
					continue
				}
				if readers[name].present && !send(Event{Kind: CardRemoved, Reader: name}) {
					return nil
				}
				delete(readers, name)
				if !send(Event{Kind: ReaderRemoved, Reader: name}) {
					return nil
				}
			}
			for _, name := range names {
				if _, ok := readers[name]; ok || name == pnpReader {
					continue
				}
				readers[name] = &readerInfo{}
				if !send(Event{Kind: ReaderAdded, Reader: name}) {
					return nil
				}
			}
		}
		names := sortedKeys(readers)
		states := make([]scard.ReaderState, 0, len(names)+1)
		for _, n := range names {
			states = append(states, scard.ReaderState{Reader: n, CurrentState: readers[n].state})
		}
		if usePnP {
			states = append(states, pnp)
		}
		timeout := 30 * time.Second
		if !usePnP {
			timeout = poll
		}
		if len(states) == 0 { // never hand scard an empty slice
			relist = true
			t := time.NewTimer(poll)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		err := c.GetStatusChange(states, timeout)
		switch {
		case err == nil:
		case errors.Is(err, scard.ErrTimeout):
			if !usePnP {
				relist = true
			}
			continue
		case errors.Is(err, scard.ErrCancelled):
			continue // ctx checked at the top
		case errors.Is(err, scard.ErrUnknownReader):
			// A reader went away between listing and waiting, or the
			// service has no PnP pseudo-reader.
			if usePnP && len(names) == 0 {
				usePnP = false
			}
			relist = true
			continue
		default:
			return err
		}
		for i := range states {
			st := &states[i]
			now := st.EventState &^ scard.StateChanged
			if st.Reader == pnpReader {
				if st.EventState&scard.StateChanged != 0 {
					relist = true
				}
				if st.EventState&scard.StateUnknown != 0 {
					usePnP = false
					relist = true
				}
				pnp.CurrentState = now
				continue
			}
			r := readers[st.Reader]
			if now&(scard.StateUnknown|scard.StateIgnore) != 0 {
				relist = true // reader gone
			}
			present := now&scard.StatePresent != 0
			counterMoved := r.known && now>>16 != r.state>>16
			switch {
			case present && r.present && counterMoved && now>>16 >= r.state>>16+2:
				// pulled and another (or the same) card put back between looks
				if !send(Event{Kind: CardRemoved, Reader: st.Reader}) ||
					!send(Event{Kind: CardInserted, Reader: st.Reader, ATR: slices.Clone(st.Atr)}) {
					return nil
				}
			case present && !r.present:
				if !send(Event{Kind: CardInserted, Reader: st.Reader, ATR: slices.Clone(st.Atr)}) {
					return nil
				}
			case !present && r.present:
				// scard does not clear Atr on removal: send none.
				if !send(Event{Kind: CardRemoved, Reader: st.Reader}) {
					return nil
				}
			}
			r.state, r.known, r.present = now, true, present
		}
	}
}
