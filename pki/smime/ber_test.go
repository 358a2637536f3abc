package smime

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
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
		// The fast path agrees with the slow one.
		slow, rest, err := berValue(in, 0, nil)
		if err != nil || len(rest) != 0 || !bytes.Equal(slow, out) {
			t.Fatalf("not idempotent: % x -> % x -> % x (%v)", in, out, again, err)
		}
	})
}

func TestSevenBitSafe(t *testing.T) {
	line := func(n int) string { return string(bytes.Repeat([]byte{'a'}, n)) }
	cases := map[string]bool{
		"":                             true,
		"hello\r\nworld\r\n":           true,
		line(998) + "\r\n" + line(998): true,
		line(999) + "\r\n":             false,
		line(999):                      false,
		"caf\xc3\xa9\r\n":              false,
		"nul\x00\r\n":                  false,
		"bare\rcr\r\n":                 false,
		line(20) + "\x80" + line(20):   false,
		"12345678\r\n1234567\xff\r\n":  false,
	}
	for in, want := range cases {
		if got := sevenBitSafe([]byte(in)); got != want {
			t.Errorf("sevenBitSafe(%.30q...) = %v, want %v", in, got, want)
		}
	}
}

// TestAESKeyWrap uses the RFC 3394 section 4.1 and 4.6 vectors.
func TestAESKeyWrap(t *testing.T) {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, v := range []struct{ kek, key, wrapped string }{
		{"000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF", "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},
		{"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
			"28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
	} {
		got, err := aesKeyWrap(unhex(v.kek), unhex(v.key))
		if err != nil || !bytes.Equal(got, unhex(v.wrapped)) {
			t.Errorf("wrap: %X, %v", got, err)
		}
		back, err := aesKeyUnwrap(unhex(v.kek), unhex(v.wrapped))
		if err != nil || !bytes.Equal(back, unhex(v.key)) {
			t.Errorf("unwrap: %X, %v", back, err)
		}
		bad := unhex(v.wrapped)
		bad[5] ^= 1
		if _, err := aesKeyUnwrap(unhex(v.kek), bad); err != ErrDecrypt {
			t.Errorf("tampered unwrap: %v", err)
		}
	}
}

// FuzzEntity parses mail to sign or encrypt: no panic, and what comes out
// is a MIME entity whose body is safe for any transport.
func FuzzEntity(f *testing.F) {
	f.Add([]byte("From: a@example.test\nSubject: x\n\nhello\n"))
	f.Add([]byte("Content-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9\r\n"))
	f.Add([]byte("Content-Type: application/octet-stream\n\n\x00\xff\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		outer, ent, err := entity(msg)
		if err != nil {
			return
		}
		if bytes.Contains(outer, []byte("\nContent-")) || bytes.HasPrefix(outer, []byte("Content-")) {
			t.Fatalf("Content field outside: %q", outer)
		}
		m, err := parseMessage(ent.bytes())
		if err != nil {
			t.Fatalf("entity does not parse: %v\n%q", err, ent)
		}
		if !sevenBitSafe(m.body) {
			t.Fatalf("8-bit body left as it was: %q", m.body)
		}
	})
}

func TestAppendBase64(t *testing.T) {
	ref := func(b []byte) []byte {
		enc := base64.StdEncoding.EncodeToString(b)
		var out []byte
		for len(enc) > 0 {
			n := min(76, len(enc))
			out = append(append(out, enc[:n]...), '\r', '\n')
			enc = enc[n:]
		}
		return out
	}
	src := make([]byte, 1<<20+13)
	for i := range src {
		src[i] = byte(i * 7)
	}
	for _, n := range []int{0, 1, 56, 57, 58, 114, 256<<10 - 1, 256 << 10, 256<<10 + 57*3 + 5, 1<<20 + 13} {
		got := appendBase64([]byte("x"), src[:n])
		if want := append([]byte("x"), ref(src[:n])...); !bytes.Equal(got, want) {
			t.Errorf("%d bytes: differs from the reference (len %d vs %d)", n, len(got), len(want))
		}
	}
}
