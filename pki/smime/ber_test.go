package smime

import (
	"bytes"
	"testing"
)

func TestNormalizeBER(t *testing.T) {
	cases := []struct{ in, want []byte }{
		// Indefinite SEQUENCE with a constructed OCTET STRING of two segments.
		{[]byte{0x30, 0x80, 0x24, 0x80, 0x04, 0x01, 'a', 0x04, 0x02, 'b', 'c', 0x00, 0x00, 0x00, 0x00}, []byte{0x30, 0x05, 0x04, 0x03, 'a', 'b', 'c'}},
		// Non-minimal long-form length.
		{[]byte{0x04, 0x81, 0x01, 'x'}, []byte{0x04, 0x01, 'x'}},
		// DER stays DER.
		{[]byte{0x30, 0x03, 0x02, 0x01, 0x05}, []byte{0x30, 0x03, 0x02, 0x01, 0x05}},
	}
	for _, c := range cases {
		got, err := normalizeBER(c.in)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("normalizeBER(% x) = % x, %v; want % x", c.in, got, err, c.want)
		}
	}
	for _, bad := range [][]byte{{0x04, 0x80, 0x00, 0x00}, {0x30, 0x80}, {0x30, 0x05, 0x01}, {0x30}, {0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		if _, err := normalizeBER(bad); err == nil {
			t.Errorf("normalizeBER(% x) accepted", bad)
		}
	}
}

// FuzzBER: never a panic, and normalizing is idempotent.
func FuzzBER(f *testing.F) {
	f.Add([]byte{0x30, 0x80, 0x24, 0x80, 0x04, 0x01, 'a', 0x00, 0x00, 0x00, 0x00})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x05})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := normalizeBER(in)
		if err != nil {
			return
		}
		again, err := normalizeBER(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: % x -> % x -> % x (%v)", in, out, again, err)
		}
	})
}
