package inventory

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the record decoder, as a damaged or
// edited inventory file would: it must never panic, must reject with a
// CorruptError, and what it accepts must survive re-encoding.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"ID":"serial:1","State":"active","Owner":"alice","Certificates":[{"Slot":"9a","Serial":"1f"}],"History":[{"Action":"card.enroll","From":"uninitialized","To":"active"}]}`))
	f.Add([]byte(`{"ID":"serial:1","State":"lost"}`))
	f.Add([]byte(`{"ID":"serial:2","State":"active"}`))
	f.Add([]byte(`{"ID":"serial:1","State":"active","SealedPUK":"not base64!"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decode("serial:1", data)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a CorruptError: %v", err)
			}
			return
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decode("serial:1", again); err != nil {
			t.Fatalf("accepted record fails after re-encoding: %v", err)
		}
	})
}
