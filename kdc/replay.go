package kdc

import (
	"crypto/sha256"
	"sync"
	"time"
)

// replayCache remembers, for twice the clock skew (the span in which an
// authenticator's timestamp is acceptable):
//   - the replies to successful requests, by a hash of the request, so that
//     a retransmission (UDP, or a client retrying) gets the same reply;
//   - the authenticators seen (a PKINIT signature, an encrypted timestamp,
//     a TGS authenticator), by hash, with the request they came in, so that
//     a different request reusing one is refused (KRB_AP_ERR_REPEAT).
//
// Both are bounded. Replies are evicted oldest first; when the
// authenticator table is full of live entries, new requests are refused
// rather than letting a replay through.
type replayCache struct {
	mu     sync.Mutex
	window time.Duration

	maxSeen int
	seen    map[[32]byte]seenEntry
	seenQ   []queued

	maxReplies int
	replies    map[[32]byte]replyEntry
	repliesQ   []queued
}

type seenEntry struct {
	request [32]byte
	expires time.Time
}

type replyEntry struct {
	reply   []byte
	expires time.Time
}

type queued struct {
	key     [32]byte
	expires time.Time
}

func newReplayCache(window time.Duration, maxSeen, maxReplies int) *replayCache {
	return &replayCache{
		window: window, maxSeen: maxSeen, maxReplies: maxReplies,
		seen: map[[32]byte]seenEntry{}, replies: map[[32]byte]replyEntry{},
	}
}

// reply returns the cached reply to an identical request.
func (c *replayCache) reply(request [32]byte, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.replies[request]
	if !ok || now.After(e.expires) {
		return nil, false
	}
	return e.reply, true
}

func (c *replayCache) storeReply(request [32]byte, reply []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(now)
	for len(c.replies) >= c.maxReplies && len(c.repliesQ) > 0 {
		delete(c.replies, c.repliesQ[0].key)
		c.repliesQ = c.repliesQ[1:]
	}
	exp := now.Add(c.window)
	c.replies[request] = replyEntry{reply: reply, expires: exp}
	c.repliesQ = append(c.repliesQ, queued{request, exp})
}

// replayVerdict is what check says about an authenticator.
type replayVerdict int

const (
	replayFresh  replayVerdict = iota // first use, now recorded
	replaySame                        // seen in this same request (a retransmission)
	replayRepeat                      // seen in a different request: a replay
	replayFull                        // the table is full of live entries
)

// check records an authenticator seen in a request.
func (c *replayCache) check(authenticator []byte, request [32]byte, now time.Time) replayVerdict {
	key := hashOf(authenticator)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.seen[key]; ok && !now.After(e.expires) {
		if e.request == request {
			return replaySame
		}
		return replayRepeat
	}
	c.expireLocked(now)
	if len(c.seen) >= c.maxSeen {
		return replayFull
	}
	exp := now.Add(c.window)
	c.seen[key] = seenEntry{request: request, expires: exp}
	c.seenQ = append(c.seenQ, queued{key, exp})
	return replayFresh
}

// expireLocked drops expired entries from the front of the queues (they
// are in insertion order, and the window is fixed).
func (c *replayCache) expireLocked(now time.Time) {
	for len(c.seenQ) > 0 && now.After(c.seenQ[0].expires) {
		if e, ok := c.seen[c.seenQ[0].key]; ok && !now.Before(e.expires) {
			delete(c.seen, c.seenQ[0].key)
		}
		c.seenQ = c.seenQ[1:]
	}
	for len(c.repliesQ) > 0 && now.After(c.repliesQ[0].expires) {
		if e, ok := c.replies[c.repliesQ[0].key]; ok && !now.Before(e.expires) {
			delete(c.replies, c.repliesQ[0].key)
		}
		c.repliesQ = c.repliesQ[1:]
	}
	// Let the queues' backing arrays be reclaimed now and then.
	if cap(c.seenQ) > 1024 && len(c.seenQ) < cap(c.seenQ)/4 {
		c.seenQ = append([]queued(nil), c.seenQ...)
	}
	if cap(c.repliesQ) > 1024 && len(c.repliesQ) < cap(c.repliesQ)/4 {
		c.repliesQ = append([]queued(nil), c.repliesQ...)
	}
}

func hashOf(b []byte) [32]byte { return sha256.Sum256(b) }

// replayError turns a verdict into a refusal, or nil.
func replayError(v replayVerdict, what string) *Error {
	switch v {
	case replayRepeat:
		return refuse(ErrRepeat, "%s was already used in another request", what)
	case replayFull:
		return refuseQuiet(ErrServiceUnavailable, "KDC busy", "replay cache full")
	}
	return nil
}
