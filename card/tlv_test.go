package card

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseTLV(t *testing.T) {
	tests := []struct {
		in       string
		tag      uint32
		value    string
		rest     string
		wantFail bool
	}{
		{"53 00", 0x53, "", "", false},
		{"53 01 AA BB", 0x53, "AA", "BB", false},
		{"7F49 03 860100", 0x7F49, "860100", "", false},
		{"5F2F 02 4000", 0x5F2F, "4000", "", false},
		{"53 81 01 AA", 0x53, "AA", "", false},
		{"53 82 0001 AA", 0x53, "AA", "", false},
		{"53 83 000001 AA", 0x53, "AA", "", false},
		{"", 0, "", "", true},
		{"53", 0, "", "", true},
		{"53 02 AA", 0, "", "", true},
		{"53 80", 0, "", "", true},             // indefinite
		{"53 84 00000001 AA", 0, "", "", true}, // 4-byte length
		{"53 82 00", 0, "", "", true},
		{"7F", 0, "", "", true},
		{"7F 81", 0, "", "", true},
		{"7F 81 81 81 01 00", 0, "", "", true}, // tag too long
		{"53 83 FFFFFF 00", 0, "", "", true},
	}
	for _, tc := range tests {
		tag, v, rest, err := parseTLV(unhex(t, tc.in))
		if tc.wantFail {
			if err == nil {
				t.Errorf("parseTLV(%s) = %X %X, want error", tc.in, tag, v)
			} else if !errors.Is(err, ErrMalformedResponse) {
				t.Errorf("parseTLV(%s): %v is not ErrMalformedResponse", tc.in, err)
			}
			continue
		}
		if err != nil || tag != tc.tag || !bytes.Equal(v, unhex(t, tc.value)) || !bytes.Equal(rest, unhex(t, tc.rest)) {
			t.Errorf("parseTLV(%s) = %X %X %X %v", tc.in, tag, v, rest, err)
		}
	}
}

func TestAppendTLV(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 255, 256, 65535, 65536} {
		v := bytes.Repeat([]byte{7}, n)
		for _, tag := range []uint32{0x53, 0x7F49, 0x5FC102} {
			b := appendTLV(nil, tag, v)
			if tag == 0x5FC102 {
				continue // not a BER tag, used only as 5C's value
			}
			gt, gv, rest, err := parseTLV(b)
			if err != nil || gt != tag || !bytes.Equal(gv, v) || len(rest) != 0 {
				t.Errorf("round trip of %X/%d: %X %d %d %v", tag, n, gt, len(gv), len(rest), err)
			}
		}
	}
}

func TestParsePublicKeyStrict(t *testing.T) {
	G := unhex(t, "046B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C2964FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5")
	good := tlvBytes(0x7F49, tlvBytes(0x86, G))
	if _, err := parseGenerateResponse(AlgECCP256, good); err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"trailing":        append(bytes.Clone(good), 0),
		"wrong curve":     good,
		"off curve":       tlvBytes(0x7F49, tlvBytes(0x86, append(bytes.Clone(G[:64]), G[64]^1))),
		"compressed":      tlvBytes(0x7F49, tlvBytes(0x86, append([]byte{2}, G[1:33]...))),
		"extra tag":       tlvBytes(0x7F49, append(tlvBytes(0x86, G), 0x87, 0x00)),
		"RSA tags for EC": tlvBytes(0x7F49, append(tlvBytes(0x81, G), tlvBytes(0x82, []byte{1, 0, 1})...)),
		"no 7F49":         tlvBytes(0x86, G),
	}
	for name, b := range bad {
		alg := AlgECCP256
		if name == "wrong curve" {
			alg = AlgECCP384
		}
		if _, err := parseGenerateResponse(alg, b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaResp := func(n, e []byte) []byte {
		return tlvBytes(0x7F49, append(tlvBytes(0x81, n), tlvBytes(0x82, e)...))
	}
	pub, err := parseGenerateResponse(AlgRSA1024, rsaResp(k.N.Bytes(), []byte{1, 0, 1}))
	if err != nil {
		t.Fatal(err)
	}
	if !k.PublicKey.Equal(pub) {
		t.Error("RSA public key differs")
	}
	for name, b := range map[string][]byte{
		"wrong size":    nil,
		"even exponent": rsaResp(k.N.Bytes(), []byte{1, 0, 0}),
		"exponent 1":    rsaResp(k.N.Bytes(), []byte{1}),
		"long exponent": rsaResp(k.N.Bytes(), []byte{1, 0, 0, 0, 1}),
		"swapped":       tlvBytes(0x7F49, append(tlvBytes(0x82, []byte{1, 0, 1}), tlvBytes(0x81, k.N.Bytes())...)),
		"even modulus":  rsaResp(append(bytes.Clone(k.N.Bytes()[:127]), k.N.Bytes()[127]&^1), []byte{1, 0, 1}),
	} {
		alg := AlgRSA1024
		if name == "wrong size" {
			alg, b = AlgRSA2048, rsaResp(k.N.Bytes(), []byte{1, 0, 1})
		}
		if _, err := parseGenerateResponse(alg, b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseGenerateResponse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/generate/*")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err == nil {
			f.Add(byte(AlgECCP256), b)
			f.Add(byte(AlgRSA2048), b)
		}
	}
	f.Fuzz(func(t *testing.T, alg byte, b []byte) {
		pub, err := parseGenerateResponse(Algorithm(alg), b)
		if err != nil {
			if pub != nil {
				t.Fatal("key with error")
			}
			return
		}
		if pub == nil {
			t.Fatal("nil key without error")
		}
	})
}

// FuzzTLV: parsing never panics, and what parses re-encodes to a TLV that
// parses the same.
func FuzzTLV(f *testing.F) {
	f.Add([]byte{0x53, 0x00})
	f.Add([]byte{0x7F, 0x49, 0x03, 0x86, 0x01, 0x00})
	f.Add([]byte{0x53, 0x82, 0x00, 0x01, 0xAA})
	f.Fuzz(func(t *testing.T, b []byte) {
		tlvs, err := parseTLVs(b)
		if err != nil {
			return
		}
		var out []byte
		for _, x := range tlvs {
			out = appendTLV(out, x.tag, x.value)
		}
		again, err := parseTLVs(out)
		if err != nil || len(again) != len(tlvs) {
			t.Fatalf("re-encoded TLVs do not parse: %v", err)
		}
		for i := range again {
			if again[i].tag != tlvs[i].tag || !bytes.Equal(again[i].value, tlvs[i].value) {
				t.Fatalf("TLV %d changed", i)
			}
		}
		// the object parsers must not panic either
		parseCHUID(b)
		parseCCC(b)
		parseDiscovery(b)
		parseMetadata(b)
		parseCertObject(b)
		dynAuthField(b, 0x82, -1)
	})
}

// FuzzResponseChaining: the transport survives any card answers.
func FuzzResponseChaining(f *testing.F) {
	f.Add([]byte{0x61, 0x02, 0xAA, 0xBB, 0x90, 0x00})
	f.Add([]byte{0x6C, 0x05, 0x00, 0x90, 0x00})
	f.Fuzz(func(t *testing.T, script []byte) {
		// script: a sequence of responses, each a length byte then bytes
		i := 0
		card := &fakeCard{fn: func(apdu []byte) ([]byte, error) {
			if len(apdu) < 4 {
				t.Fatal("short APDU sent")
			}
			if i >= len(script) {
				return []byte{0x90, 0x00}, nil
			}
			n := int(script[i])
			i++
			if n > len(script)-i {
				n = len(script) - i
			}
			r := script[i : i+n]
			i += n
			return r, nil
		}}
		tr := transport{card: card}
		tr.transmit(command{ins: 0xCB, p1: 0x3F, p2: 0xFF, data: make([]byte, 300), ne: 256})
	})
}
