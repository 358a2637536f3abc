package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzCheckNext feeds arbitrary bytes to the record decoder and chain
// check that Verify runs over a (possibly tampered) file: it must never
// panic, must report a TamperError for anything it rejects, and anything
// it accepts must re-encode to a record that is accepted again.
func FuzzCheckNext(f *testing.F) {
	prev := bytes.Repeat([]byte{0xab}, 32)
	good := Record{Seq: 2, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Actor: "cli:root", Action: "cert.issue", User: "alice", Cert: "1f", Outcome: OK, Prev: prev}
	good.Hash = good.hash()
	v, _ := json.Marshal(&good)
	f.Add(v)
	f.Add([]byte(`{"Seq":2}`))
	f.Add([]byte(`{"Seq":2,"Time":"not a time"}`))
	f.Add([]byte(`null`))
	f.Add([]byte{})
	key := seqKey(2)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := checkNext(key, data, 1, prev)
		if err != nil {
			var te *TamperError
			if !errors.As(err, &te) {
				t.Fatalf("error is not a TamperError: %v", err)
			}
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checkNext(key, again, 1, prev); err != nil {
			t.Fatalf("accepted record fails after re-encoding: %v", err)
		}
	})
}
