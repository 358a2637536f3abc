package tui

import (
	"context"
	"sync"

	"github.com/scstation/scstation/card"
)

// localSlots holds the in-process cards (the demo's virtual cards) the
// way readers hold cards: it is a source of card.Event, like the PC/SC
// monitor, so that the screens learn of a virtual card being inserted or
// removed by the same messages as of a real one. The Home screen inserts
// and removes them with a key; all start inserted.
type localSlots struct {
	ctx   context.Context // the station's: toggle gives up when it ends
	cards []LocalCard
	ch    chan card.Event
	// sending keeps the events in the order of the changes.
	sending sync.Mutex

	mu sync.Mutex
	in map[string]bool
}

func newLocalSlots(ctx context.Context, cards []LocalCard) *localSlots {
	l := &localSlots{ctx: ctx, cards: cards, ch: make(chan card.Event), in: map[string]bool{}}
	for _, c := range cards {
		l.in[c.Name] = true
	}
	return l
}

// watch reports the cards that are in, then every insert and remove,
// until ctx ends.
func (l *localSlots) watch(ctx context.Context, events chan<- card.Event) error {
	send := func(ev card.Event) error {
		select {
		case events <- ev:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.mu.Lock()
	var first []card.Event
	for _, c := range l.cards {
		if l.in[c.Name] {
			first = append(first, card.Event{Kind: card.CardInserted, Reader: c.Name})
		}
	}
	l.mu.Unlock()
	for _, ev := range first {
		if err := send(ev); err != nil {
			return err
		}
	}
	for {
		select {
		case ev := <-l.ch:
			if err := send(ev); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// toggle inserts the card when it is out and removes it when it is in,
// and reports it to watch (blocking until watch takes it, or the
// station's context ends).
func (l *localSlots) toggle(name string) {
	l.sending.Lock()
	defer l.sending.Unlock()
	l.mu.Lock()
	if _, ok := l.in[name]; !ok {
		l.mu.Unlock()
		return
	}
	l.in[name] = !l.in[name]
	ev := card.Event{Kind: card.CardRemoved, Reader: name}
	if l.in[name] {
		ev.Kind = card.CardInserted
	}
	l.mu.Unlock()
	select {
	case l.ch <- ev:
	case <-l.ctx.Done():
	}
}

// isLocal says whether reader names an in-process card.
func isLocal(local []LocalCard, reader string) bool {
	for _, l := range local {
		if l.Name == reader {
			return true
		}
	}
	return false
}

// trackCard keeps a screen's set of readers with a card (PC/SC readers
// and in-process cards alike) up to date with a reader event. The PC/SC
// service going down empties its readers, not the in-process cards.
func trackCard(present map[string]bool, local []LocalCard, ev card.Event) {
	switch ev.Kind {
	case card.CardInserted:
		present[ev.Reader] = true
	case card.CardRemoved, card.ReaderRemoved:
		delete(present, ev.Reader)
	case card.ServiceDown:
		for r := range present {
			if !isLocal(local, r) {
				delete(present, r)
			}
		}
	}
}
