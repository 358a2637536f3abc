package virtual

import (
	"crypto"
	"sync"
	"testing"
)

var (
	fuzzOnce  sync.Once
	fuzzState *State
	fuzzKeys  = map[byte]crypto.Signer{}
)

func fuzzSetup(tb testing.TB) {
	fuzzOnce.Do(func() {
		st, err := NewState(31337)
		if err != nil {
			tb.Fatal(err)
		}
		fuzzState = st
		for _, alg := range []byte{AlgRSA1024, AlgRSA2048, AlgECCP256, AlgECCP384} {
			k, err := generateKey(alg)
			if err != nil {
				tb.Fatal(err)
			}
			fuzzKeys[alg] = k
		}
		// RSA 3072/4096 reuse the 2048-bit key: the fuzzer checks parsing
		// and state handling, not key sizes.
		fuzzKeys[AlgRSA3072], fuzzKeys[AlgRSA4096] = fuzzKeys[AlgRSA2048], fuzzKeys[AlgRSA2048]
	})
	generateKeyFunc = func(alg byte) (crypto.Signer, error) {
		if k, ok := fuzzKeys[alg]; ok {
			return k, nil
		}
		return generateKey(alg)
	}
	repanic = true
}

// FuzzTransmit feeds a fresh card a sequence of APDUs. The input's first
// byte sets the starting security status (bit 0 PIV selected, bit 1 PIN
// verified, bit 2 management key authenticated), so that the fuzzer reaches
// the commands behind them; then each APDU is a length byte (0xFF: two
// length bytes follow) and the APDU. Every response must be at least a
// status word, and nothing may panic.
func FuzzTransmit(f *testing.F) {
	fuzzSetup(f)
	f.Cleanup(func() { generateKeyFunc, repanic = generateKey, false })
	f.Fuzz(func(t *testing.T, in []byte) {
		// Longer inputs add nothing (chains are bounded by the card) and
		// make the fuzzer's minimisation of new inputs crawl.
		if len(in) == 0 || len(in) > 1024 {
			return
		}
		c := New(fuzzState.Clone(), "")
		flags := in[0]
		in = in[1:]
		c.selected = flags&1 != 0
		c.pinVerified = flags&2 != 0
		c.pinFresh = flags&2 != 0
		c.mgmtAuthed = flags&4 != 0
		for n := 0; len(in) > 0 && n < 64; n++ {
			l := int(in[0])
			in = in[1:]
			if l == 0xFF && len(in) >= 2 {
				l = int(in[0])<<8 | int(in[1])
				in = in[2:]
			}
			l = min(l, len(in))
			apdu := in[:l]
			in = in[l:]
			resp, err := c.Transmit(apdu)
			if err != nil {
				t.Fatalf("Transmit(%x): %v", apdu, err)
			}
			if len(resp) < 2 {
				t.Fatalf("Transmit(%x) = %x: no status word", apdu, resp)
			}
		}
	})
}
