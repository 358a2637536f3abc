package virtual

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"testing"
)

// host drives a Card the way a PC/SC client does, with response chaining.
type host struct {
	t testing.TB
	c *Card
}

func newHost(t testing.TB) (host, *State) {
	t.Helper()
	st, err := NewState(4242)
	if err != nil {
		t.Fatal(err)
	}
	return host{t, New(st, "")}, st
}

func mkAPDU(cla, ins, p1, p2 byte, data []byte) []byte {
	b := []byte{cla, ins, p1, p2}
	if len(data) > 0 {
		b = append(b, byte(len(data)))
		b = append(b, data...)
	}
	return b
}

func hx(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// raw sends one APDU, no chaining.
func (h host) raw(apdu []byte) ([]byte, uint16) {
	h.t.Helper()
	r, err := h.c.Transmit(apdu)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(r) < 2 {
		h.t.Fatalf("response %x too short", r)
	}
	return r[:len(r)-2], uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1])
}

// send sends an APDU, chaining commands over 255 bytes and collecting
// 61xx responses.
func (h host) send(ins, p1, p2 byte, data []byte) ([]byte, uint16) {
	h.t.Helper()
	for len(data) > 255 {
		_, sw := h.raw(mkAPDU(0x10, ins, p1, p2, data[:255]))
		if sw != swOK {
			return nil, sw
		}
		data = data[255:]
	}
	out, sw := h.raw(mkAPDU(0x00, ins, p1, p2, data))
	for sw>>8 == 0x61 {
		var more []byte
		more, sw = h.raw([]byte{0x00, 0xC0, 0x00, 0x00, byte(sw)})
		out = append(out, more...)
	}
	return out, sw
}

func (h host) ok(ins, p1, p2 byte, data []byte) []byte {
	h.t.Helper()
	out, sw := h.send(ins, p1, p2, data)
	if sw != swOK {
		h.t.Fatalf("INS %02X P1 %02X P2 %02X: SW %04X", ins, p1, p2, sw)
	}
	return out
}

func (h host) wantSW(want uint16, ins, p1, p2 byte, data []byte) []byte {
	h.t.Helper()
	out, sw := h.send(ins, p1, p2, data)
	if sw != want {
		h.t.Fatalf("INS %02X P1 %02X P2 %02X: SW %04X, want %04X", ins, p1, p2, sw, want)
	}
	return out
}

func (h host) selectPIV() { h.t.Helper(); h.ok(0xA4, 0x04, 0x00, pivAID[:5]) }

func (h host) verify(pin string) uint16 {
	h.t.Helper()
	_, sw := h.send(0x20, 0x00, 0x80, padded8([]byte(pin)))
	return sw
}

// mutualAuth authenticates with the management key the way
// yubico-piv-tool and piv-go do.
func (h host) mutualAuth(alg byte, key []byte) uint16 {
	h.t.Helper()
	block, err := mgmtCipher(alg, key)
	if err != nil {
		h.t.Fatal(err)
	}
	bs := block.BlockSize()
	resp := h.ok(0x87, alg, 0x9B, hx("7C028000"))
	ts, _ := parseTLVs(resp)
	inner, _ := parseTLVs(ts[0].value)
	enc, _ := findTLV(inner, 0x80)
	if len(enc) != bs {
		h.t.Fatalf("witness of %d bytes", len(enc))
	}
	w := make([]byte, bs)
	block.Decrypt(w, enc)
	ch := make([]byte, bs)
	rand.Read(ch)
	req := mkTLV(0x7C, append(mkTLV(0x80, w), mkTLV(0x81, ch)...))
	resp, sw := h.send(0x87, alg, 0x9B, req)
	if sw != swOK {
		return sw
	}
	ts, _ = parseTLVs(resp)
	inner, _ = parseTLVs(ts[0].value)
	got, _ := findTLV(inner, 0x82)
	want := make([]byte, bs)
	block.Encrypt(want, ch)
	if !bytes.Equal(got, want) {
		h.t.Fatal("card's response to the challenge is wrong")
	}
	return sw
}

// externalAuth is the one-way form OpenSC uses (7C 02 81 00).
func (h host) externalAuth(alg byte, key []byte) uint16 {
	h.t.Helper()
	block, _ := mgmtCipher(alg, key)
	resp := h.ok(0x87, alg, 0x9B, hx("7C028100"))
	ts, _ := parseTLVs(resp)
	inner, _ := parseTLVs(ts[0].value)
	ch, _ := findTLV(inner, 0x81)
	enc := make([]byte, block.BlockSize())
	block.Encrypt(enc, ch)
	_, sw := h.send(0x87, alg, 0x9B, mkTLV(0x7C, mkTLV(0x82, enc)))
	return sw
}

func (h host) auth() {
	h.t.Helper()
	if sw := h.mutualAuth(Alg3DES, DefaultManagementKey); sw != swOK {
		h.t.Fatalf("management key auth: %04X", sw)
	}
}

func (h host) generate(slot, alg byte, extra ...byte) crypto.PublicKey {
	h.t.Helper()
	tmpl := append([]byte{0x80, 0x01, alg}, extra...)
	resp := h.ok(0x47, 0x00, slot, mkTLV(0xAC, tmpl))
	return parsePublic(h.t, resp, alg)
}

func parsePublic(t testing.TB, resp []byte, alg byte) crypto.PublicKey {
	t.Helper()
	ts, err := parseTLVs(resp)
	if err != nil || len(ts) != 1 || ts[0].tag != 0x7F49 {
		t.Fatalf("bad GENERATE response %x", resp)
	}
	inner, err := parseTLVs(ts[0].value)
	if err != nil {
		t.Fatal(err)
	}
	switch alg {
	case AlgECCP256, AlgECCP384:
		curve := elliptic.P256()
		if alg == AlgECCP384 {
			curve = elliptic.P384()
		}
		pt, _ := findTLV(inner, 0x86)
		x, y := elliptic.Unmarshal(curve, pt)
		if x == nil {
			t.Fatal("bad point")
		}
		return &ecdsa.PublicKey{Curve: curve, X: x, Y: y}
	default:
		n, _ := findTLV(inner, 0x81)
		e, _ := findTLV(inner, 0x82)
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
}

// sign runs GENERAL AUTHENTICATE 7C 82 00 81 data.
func (h host) sign(alg, slot byte, data []byte) ([]byte, uint16) {
	h.t.Helper()
	req := mkTLV(0x7C, append([]byte{0x82, 0x00}, mkTLV(0x81, data)...))
	resp, sw := h.send(0x87, alg, slot, req)
	if sw != swOK {
		return nil, sw
	}
	ts, _ := parseTLVs(resp)
	inner, _ := parseTLVs(ts[0].value)
	sig, _ := findTLV(inner, 0x82)
	return sig, sw
}

func TestParseAPDU(t *testing.T) {
	for _, tc := range []struct {
		apdu  string
		ok    bool
		ndata int
		ne    int
		ext   bool
	}{
		{"00A40400", true, 0, 256, false},
		{"00CB3FFF08", true, 0, 8, false},
		{"00CB3FFF00", true, 0, 256, false},
		{"00A4040005A000000308", true, 5, 256, false},
		{"00A4040005A00000030800", true, 5, 256, false},
		{"00A4040005A00000030810", true, 5, 16, false},
		{"00A4040005A0000003", false, 0, 0, false},
		{"00A4040005A000000308AABB", false, 0, 0, false},
		{"00CB3FFF000000", true, 0, 65536, true},
		{"00CB3FFF000100", true, 0, 256, true},
		{"00DB3FFF000002AABB", true, 2, 65536, true},
		{"00DB3FFF000002AABB0000", true, 2, 65536, true},
		{"00DB3FFF000002AABB0010", true, 2, 16, true},
		{"00DB3FFF000000", true, 0, 65536, true}, // case 2E with Le 0
		{"00DB3FFF0000", false, 0, 0, false},
		{"00DB3FFF000000AA", false, 0, 0, false},
		{"00DB3FFF000003AABB", false, 0, 0, false},
		{"00DB3F", false, 0, 0, false},
	} {
		c, ok := parseAPDU(hx(tc.apdu))
		if ok != tc.ok || (ok && (len(c.data) != tc.ndata || c.ne != tc.ne || c.extended != tc.ext)) {
			t.Errorf("%s: ok=%v data=%d ne=%d ext=%v, want %v %d %d %v", tc.apdu, ok, len(c.data), c.ne, c.extended,
				tc.ok, tc.ndata, tc.ne, tc.ext)
		}
	}
}

func TestSelectAndDiscovery(t *testing.T) {
	h, _ := newHost(t)
	// Nothing before SELECT.
	h.wantSW(swINSNotSupported, 0xCB, 0x3F, 0xFF, hx("5C017E"))
	h.wantSW(swNotFound, 0xA4, 0x04, 0x00, hx("A000000527471117")) // Yubico management AID
	h.wantSW(swNotFound, 0xA4, 0x04, 0x00, hx("A00000"))
	h.wantSW(swWrongP1P2, 0xA4, 0x00, 0x00, pivAID)
	if got := h.ok(0xA4, 0x04, 0x00, pivAID); !bytes.Equal(got, applicationTemplate) {
		t.Fatalf("SELECT answered %x", got)
	}
	if got := h.ok(0xCB, 0x3F, 0xFF, hx("5C017E")); !bytes.Equal(got, discoveryObject) {
		t.Fatalf("discovery %x", got)
	}
	h.wantSW(swNotFound, 0xCB, 0x3F, 0xFF, hx("5C035FC105"))
	h.wantSW(swWrongP1P2, 0xCB, 0x3F, 0xFE, hx("5C017E"))
	h.wantSW(swWrongData, 0xCB, 0x3F, 0xFF, hx("5C"))
	h.wantSW(swWrongData, 0xCB, 0x3F, 0xFF, hx("5C0401020304"))
	h.wantSW(swINSNotSupported, 0x99, 0x00, 0x00, nil)
	if _, sw := h.raw(hx("80A4040005A000000308")); sw != swCLANotSupported {
		t.Fatalf("CLA 80: %04X", sw)
	}
	if _, sw := h.raw(hx("00")); sw != swWrongLength {
		t.Fatalf("1-byte APDU: %04X", sw)
	}
	if _, sw := h.raw(nil); sw != swWrongLength {
		t.Fatalf("empty APDU: %04X", sw)
	}
	// Yubico: version and serial.
	if v := h.ok(0xFD, 0, 0, nil); !bytes.Equal(v, []byte{5, 4, 3}) {
		t.Fatalf("version %x", v)
	}
	if s := h.ok(0xF8, 0, 0, nil); !bytes.Equal(s, []byte{0, 0, 0x10, 0x92}) {
		t.Fatalf("serial %x", s)
	}
}

func TestGetDataLeAndResponseChaining(t *testing.T) {
	h, st := newHost(t)
	h.selectPIV()
	obj := make([]byte, 1000)
	rand.Read(obj)
	st.Objects[0x5FC105] = obj
	want := mkTLV(0x53, obj)

	// OpenSC asks for 8 bytes first to learn the length.
	out, sw := h.raw(hx("00CB3FFF055C035FC10508"))
	if sw != 0x6100 || !bytes.Equal(out, want[:8]) {
		t.Fatalf("Le=8: %x %04X", out, sw)
	}
	// Then the rest in 256-byte pieces.
	got := out
	for sw>>8 == 0x61 {
		out, sw = h.raw([]byte{0x00, 0xC0, 0x00, 0x00, byte(sw)})
		if len(out) > 256 {
			t.Fatalf("GET RESPONSE gave %d bytes", len(out))
		}
		got = append(got, out...)
	}
	if sw != swOK || !bytes.Equal(got, want) {
		t.Fatalf("reassembled %d bytes, SW %04X", len(got), sw)
	}
	// Le absent (yubico-piv-tool): 256 bytes then 61xx.
	out, sw = h.raw(hx("00CB3FFF055C035FC105"))
	if len(out) != 256 || sw != 0x6100 {
		t.Fatalf("no Le: %d bytes %04X", len(out), sw)
	}
	// Any other command drops the pending response.
	h.ok(0xFD, 0, 0, nil)
	if _, sw := h.raw(hx("00C0000000")); sw != swConditions {
		t.Fatalf("stale GET RESPONSE: %04X", sw)
	}
	// Extended Le takes everything at once.
	out, sw = h.raw(hx("00CB3FFF0000055C035FC1050000"))
	if sw != swOK || !bytes.Equal(out, want) {
		t.Fatalf("extended: %d bytes %04X", len(out), sw)
	}
}

func TestVerifyBlockUnblock(t *testing.T) {
	h, st := newHost(t)
	h.selectPIV()
	if _, sw := h.raw(hx("0020008000")); sw != 0x63C3 {
		t.Fatalf("status query %04X", sw)
	}
	if _, sw := h.raw(hx("00200080")); sw != 0x63C3 {
		t.Fatalf("status query case 1 %04X", sw)
	}
	h.wantSW(swWrongData, 0x20, 0x00, 0x80, []byte("123456"))      // not padded
	h.wantSW(swRefNotFound, 0x20, 0x00, 0x81, padded8(DefaultPUK)) // VERIFY is for the PIN
	h.wantSW(swWrongP1P2, 0x20, 0x01, 0x80, padded8(DefaultPIN))
	if sw := h.verify("123456"); sw != swOK {
		t.Fatalf("right PIN: %04X", sw)
	}
	if _, sw := h.raw(hx("0020008000")); sw != swOK {
		t.Fatalf("status after verify %04X", sw)
	}
	h.ok(0x20, 0xFF, 0x80, nil) // Yubico: unverify
	if _, sw := h.raw(hx("0020008000")); sw != 0x63C3 {
		t.Fatalf("status after unverify %04X", sw)
	}
	for i, want := range []uint16{0x63C2, 0x63C1, 0x63C0, swAuthBlocked} {
		if sw := h.verify("654321"); sw != want {
			t.Fatalf("wrong PIN #%d: %04X, want %04X", i+1, sw, want)
		}
	}
	if sw := h.verify("123456"); sw != swAuthBlocked {
		t.Fatalf("right PIN when blocked: %04X", sw)
	}
	if _, sw := h.raw(hx("0020008000")); sw != swAuthBlocked {
		t.Fatalf("status when blocked %04X", sw)
	}
	// CHANGE REFERENCE DATA on a blocked PIN.
	h.wantSW(swAuthBlocked, 0x24, 0x00, 0x80, append(padded8(DefaultPIN), padded8([]byte("111111"))...))
	// RESET RETRY COUNTER: wrong PUK, bad new PIN, then right.
	h.wantSW(0x63C2, 0x2C, 0x00, 0x80, append(padded8([]byte("87654321")), padded8([]byte("222222"))...))
	h.wantSW(swWrongData, 0x2C, 0x00, 0x80, append(padded8(DefaultPUK), padded8([]byte("22"))...))
	h.wantSW(swWrongData, 0x2C, 0x00, 0x80, padded8(DefaultPUK))
	h.ok(0x2C, 0x00, 0x80, append(padded8(DefaultPUK), padded8([]byte("222222"))...))
	if st.PINRetries != 3 || st.PUKRetries != 3 || string(st.PIN) != "222222" {
		t.Fatalf("after unblock: %d %d", st.PINRetries, st.PUKRetries)
	}
	if sw := h.verify("222222"); sw != swOK {
		t.Fatalf("new PIN: %04X", sw)
	}
	// CHANGE REFERENCE DATA for PIN and PUK.
	h.wantSW(0x63C2, 0x24, 0x00, 0x80, append(padded8([]byte("999999")), padded8([]byte("333333"))...))
	h.ok(0x24, 0x00, 0x80, append(padded8([]byte("222222")), padded8([]byte("33333333"))...))
	h.ok(0x24, 0x00, 0x81, append(padded8(DefaultPUK), padded8([]byte("abcdefgh"))...))
	h.wantSW(swRefNotFound, 0x24, 0x00, 0x82, append(padded8(DefaultPUK), padded8([]byte("abcdefgh"))...))
	h.wantSW(swWrongData, 0x24, 0x00, 0x80, append(padded8([]byte("33333333")), hx("31FF313131313131")...))
	if sw := h.verify("33333333"); sw != swOK {
		t.Fatalf("changed PIN: %04X", sw)
	}
	// Block the PUK too; then (and only then) Yubico RESET works.
	h.wantSW(swConditions, 0xFB, 0, 0, nil)
	for range 3 {
		h.send(0x24, 0x00, 0x81, append(padded8([]byte("00000000")), padded8([]byte("11111111"))...))
	}
	for range 3 {
		h.verify("000000")
	}
	if st.PINRetries != 0 || st.PUKRetries != 0 {
		t.Fatal("not blocked")
	}
	guid := st.GUID()
	h.ok(0xFB, 0, 0, nil)
	if st.PINRetries != 3 || !bytes.Equal(st.PIN, DefaultPIN) || bytes.Equal(st.GUID(), guid) {
		t.Fatal("RESET did not restore the factory state")
	}
	if st.Keys[SlotAttestation] == nil || st.Objects[TagAttestation] == nil {
		t.Fatal("RESET removed the attestation key")
	}
	h.auth() // default management key again
}

func TestManagementKeyAuth(t *testing.T) {
	for _, alg := range []byte{Alg3DES, AlgAES128, AlgAES192, AlgAES256} {
		h, st := newHost(t)
		h.selectPIV()
		key := make([]byte, mgmtKeyLen(alg))
		rand.Read(key)
		// Before auth: PUT DATA, GENERATE, FF refused.
		h.wantSW(swSecurityStatus, 0xDB, 0x3F, 0xFF, hx("5C035FC1095300"))
		h.wantSW(swSecurityStatus, 0x47, 0x00, 0x9A, hx("AC03800111"))
		h.wantSW(swSecurityStatus, 0xFF, 0xFF, 0xFF, append([]byte{alg, 0x9B, byte(len(key))}, key...))
		// Wrong algorithm for the key.
		h.wantSW(swWrongP1P2, 0x87, AlgAES128, 0x9B, hx("7C028000"))
		h.auth()
		h.ok(0xFF, 0xFF, 0xFE, append([]byte{alg, 0x9B, byte(len(key))}, key...))
		if st.ManagementKeyAlg != alg || !bytes.Equal(st.ManagementKey, key) {
			t.Fatal("key not set")
		}
		h.selectPIV() // resets the security status
		h.wantSW(swSecurityStatus, 0xDB, 0x3F, 0xFF, hx("5C035FC1095300"))
		if alg != Alg3DES {
			h.wantSW(swWrongP1P2, 0x87, Alg3DES, 0x9B, hx("7C028000"))
		} else if sw := h.mutualAuth(alg, DefaultManagementKey); sw != swSecurityStatus {
			t.Fatalf("old key: %04X", sw)
		}
		if sw := h.mutualAuth(alg, key); sw != swOK {
			t.Fatalf("mutual auth alg %02X: %04X", alg, sw)
		}
		h.ok(0xDB, 0x3F, 0xFF, hx("5C035FC1095300"))
		h.selectPIV()
		if sw := h.externalAuth(alg, key); sw != swOK {
			t.Fatalf("external auth alg %02X: %04X", alg, sw)
		}
		h.ok(0xDB, 0x3F, 0xFF, hx("5C035FC1095300"))
		// Step 2 without step 1.
		h.selectPIV()
		bs := 8
		if alg != Alg3DES {
			bs = 16
		}
		z := make([]byte, bs)
		h.wantSW(swConditions, 0x87, alg, 0x9B, mkTLV(0x7C, mkTLV(0x82, z)))
		h.wantSW(swConditions, 0x87, alg, 0x9B, mkTLV(0x7C, append(mkTLV(0x80, z), mkTLV(0x81, z)...)))
		// Metadata of the management key.
		md := h.ok(0xF7, 0x00, 0x9B, nil)
		if !bytes.Equal(md, []byte{0x01, 0x01, alg, 0x02, 0x02, 0x00, 0x01, 0x05, 0x01, 0x00}) {
			t.Fatalf("metadata %x", md)
		}
	}
}

func TestPutDataChainingAndLimits(t *testing.T) {
	h, st := newHost(t)
	h.selectPIV()
	h.auth()
	cert := make([]byte, 3000)
	rand.Read(cert)
	obj := certObject(cert)
	h.ok(0xDB, 0x3F, 0xFF, append(hx("5C035FC105"), mkTLV(0x53, obj)...))
	if !bytes.Equal(st.Objects[0x5FC105], obj) {
		t.Fatal("object not stored")
	}
	if got := h.ok(0xCB, 0x3F, 0xFF, hx("5C035FC105")); !bytes.Equal(got, mkTLV(0x53, obj)) {
		t.Fatal("object read back differs")
	}
	// Extended APDU, no chaining.
	ext := append(hx("00DB3FFF00"), 0, 0)
	body := append(hx("5C035FC10A"), mkTLV(0x53, []byte("hello"))...)
	ext[5], ext[6] = byte(len(body)>>8), byte(len(body))
	ext = append(ext, body...)
	if _, sw := h.raw(ext); sw != swOK || string(st.Objects[0x5FC10A]) != "hello" {
		t.Fatalf("extended PUT DATA %04X", sw)
	}
	// Delete with an empty 53.
	h.ok(0xDB, 0x3F, 0xFF, hx("5C035FC10A5300"))
	if _, ok := st.Objects[0x5FC10A]; ok {
		t.Fatal("not deleted")
	}
	h.wantSW(swWrongData, 0xDB, 0x3F, 0xFF, hx("5C017E5300"))
	h.wantSW(swWrongData, 0xDB, 0x3F, 0xFF, hx("5C035FC10A53"))
	h.wantSW(swWrongData, 0xDB, 0x3F, 0xFF, hx("5C035FC10A5305AA"))
	// Chains are bounded: the card refuses, it does not buffer forever.
	piece := mkAPDU(0x10, 0xDB, 0x3F, 0xFF, make([]byte, 255))
	var sw uint16
	for i := 0; i < 100 && sw != swWrongLength; i++ {
		_, sw = h.raw(piece)
	}
	if sw != swWrongLength || len(h.c.chain) != 0 {
		t.Fatalf("unbounded chain: %04X", sw)
	}
	// A chain abandoned for another command is dropped.
	h.raw(piece)
	h.ok(0xFD, 0, 0, nil)
	if h.c.chaining {
		t.Fatal("chain survived another command")
	}
	// Printed information needs the PIN to be read.
	h.ok(0xDB, 0x3F, 0xFF, append(hx("5C035FC109"), mkTLV(0x53, []byte("x"))...))
	h.wantSW(swSecurityStatus, 0xCB, 0x3F, 0xFF, hx("5C035FC109"))
	h.verify("123456")
	h.ok(0xCB, 0x3F, 0xFF, hx("5C035FC109"))
}

func TestGenerateSignECDH(t *testing.T) {
	h, st := newHost(t)
	h.selectPIV()
	h.wantSW(swSecurityStatus, 0x47, 0x00, 0x9A, hx("AC03800111"))
	h.auth()
	h.wantSW(swWrongP1P2, 0x47, 0x00, 0x9B, hx("AC03800111"))
	h.wantSW(swWrongP1P2, 0x47, 0x00, 0xF9, hx("AC03800111"))
	h.wantSW(swWrongData, 0x47, 0x00, 0x9A, hx("AC03800199"))
	h.wantSW(swWrongData, 0x47, 0x00, 0x9A, hx("AC0480011101"))
	h.wantSW(swWrongData, 0x47, 0x00, 0x9A, hx("AC068001AA01AA09"))

	p256 := h.generate(0x9A, AlgECCP256).(*ecdsa.PublicKey)
	p384 := h.generate(0x9E, AlgECCP384).(*ecdsa.PublicKey)
	pub9c := h.generate(0x9C, AlgECCP256).(*ecdsa.PublicKey)
	pubRetired := h.generate(0x82, AlgECCP256, 0xAA, 0x01, PINPolicyNever).(*ecdsa.PublicKey)
	if st.Keys[0x9C].PINPolicy != PINPolicyAlways || st.Keys[0x9A].PINPolicy != PINPolicyOnce ||
		st.Keys[0x9E].PINPolicy != PINPolicyNever || st.Keys[0x82].PINPolicy != PINPolicyNever {
		t.Fatal("default PIN policies")
	}
	digest := sha256.Sum256([]byte("message"))

	// 9A needs the PIN (once); 9E never does.
	if _, sw := h.sign(AlgECCP256, 0x9A, digest[:]); sw != swSecurityStatus {
		t.Fatalf("9A without PIN: %04X", sw)
	}
	sig, sw := h.sign(AlgECCP384, 0x9E, digest[:])
	if sw != swOK || !ecdsa.VerifyASN1(p384, digest[:], sig) {
		t.Fatalf("9E P-384 signature: %04X", sw)
	}
	sig, _ = h.sign(AlgECCP256, 0x82, digest[:])
	if !ecdsa.VerifyASN1(pubRetired, digest[:], sig) {
		t.Fatal("retired slot signature")
	}
	if sw := h.verify("123456"); sw != swOK {
		t.Fatal(sw)
	}
	for range 2 {
		sig, sw = h.sign(AlgECCP256, 0x9A, digest[:])
		if sw != swOK || !ecdsa.VerifyASN1(p256, digest[:], sig) {
			t.Fatalf("9A signature: %04X", sw)
		}
	}
	// 9C: a VERIFY before each use.
	if _, sw := h.sign(AlgECCP256, 0x9C, digest[:]); sw != swOK {
		t.Fatalf("9C right after VERIFY: %04X", sw)
	}
	if _, sw := h.sign(AlgECCP256, 0x9C, digest[:]); sw != swSecurityStatus {
		t.Fatalf("9C second use: %04X", sw)
	}
	h.verify("123456")
	if sig, _ = h.sign(AlgECCP256, 0x9C, digest[:]); !ecdsa.VerifyASN1(pub9c, digest[:], sig) {
		t.Fatal("9C signature")
	}
	// Wrong algorithm, empty slot, bad template.
	h.wantSW(swWrongP1P2, 0x87, AlgECCP384, 0x9A, mkTLV(0x7C, append([]byte{0x82, 0x00}, mkTLV(0x81, digest[:])...)))
	h.wantSW(swNotFound, 0x87, AlgECCP256, 0x9D, mkTLV(0x7C, append([]byte{0x82, 0x00}, mkTLV(0x81, digest[:])...)))
	h.wantSW(swWrongData, 0x87, AlgECCP256, 0x9A, mkTLV(0x7C, mkTLV(0x81, digest[:])))
	h.wantSW(swWrongData, 0x87, AlgECCP256, 0x9A, hx("7C0482008100"))
	h.wantSW(swWrongData, 0x87, AlgECCP256, 0x9A, hx("7C"))

	// ECDH with 9A.
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	req := mkTLV(0x7C, append([]byte{0x82, 0x00}, mkTLV(0x85, peer.PublicKey().Bytes())...))
	resp := h.ok(0x87, AlgECCP256, 0x9A, req)
	ts, _ := parseTLVs(resp)
	inner, _ := parseTLVs(ts[0].value)
	shared, _ := findTLV(inner, 0x82)
	cardPub, _ := p256.ECDH()
	want, _ := peer.ECDH(cardPub)
	if !bytes.Equal(shared, want) {
		t.Fatal("ECDH secret differs")
	}
	h.wantSW(swWrongData, 0x87, AlgECCP256, 0x9A, mkTLV(0x7C, append([]byte{0x82, 0x00}, mkTLV(0x85, []byte{4, 1, 2})...)))

	// Metadata of a generated key.
	md := h.ok(0xF7, 0x00, 0x9A, nil)
	ts, _ = parseTLVs(md)
	if v, _ := findTLV(ts, 0x01); !bytes.Equal(v, []byte{AlgECCP256}) {
		t.Fatalf("metadata alg %x", v)
	}
	if v, _ := findTLV(ts, 0x02); !bytes.Equal(v, []byte{PINPolicyOnce, TouchPolicyNever}) {
		t.Fatalf("metadata policy %x", v)
	}
	if v, _ := findTLV(ts, 0x03); !bytes.Equal(v, []byte{OriginGenerated}) {
		t.Fatalf("metadata origin %x", v)
	}
	h.wantSW(swNotFound, 0xF7, 0x00, 0x9D, nil)
	md = h.ok(0xF7, 0x00, 0x80, nil)
	if !bytes.Equal(md, hx("0101FF05010106020303")) {
		t.Fatalf("PIN metadata %x", md)
	}
}

func TestRSA(t *testing.T) {
	h, _ := newHost(t)
	h.selectPIV()
	h.auth()
	pub := h.generate(0x9D, AlgRSA2048).(*rsa.PublicKey)
	if pub.N.BitLen() != 2048 || pub.E != 65537 {
		t.Fatalf("RSA key %d bits e=%d", pub.N.BitLen(), pub.E)
	}
	h.verify("123456")
	digest := sha256.Sum256([]byte("message"))
	// The host pads (PKCS#1 v1.5 with the SHA-256 DigestInfo).
	prefix := hx("3031300d060960864801650304020105000420")
	block := []byte{0x00, 0x01}
	block = append(block, bytes.Repeat([]byte{0xFF}, 256-3-len(prefix)-32)...)
	block = append(block, 0x00)
	block = append(append(block, prefix...), digest[:]...)
	sig, sw := h.sign(AlgRSA2048, 0x9D, block)
	if sw != swOK {
		t.Fatalf("RSA sign: %04X", sw)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatal(err)
	}
	// Decryption is the same raw operation.
	ct, _ := rsa.EncryptPKCS1v15(rand.Reader, pub, []byte("secret"))
	pt, sw := h.sign(AlgRSA2048, 0x9D, ct)
	if sw != swOK || !bytes.HasSuffix(pt, []byte("\x00secret")) {
		t.Fatalf("RSA decrypt: %04X", sw)
	}
	if _, sw := h.sign(AlgRSA2048, 0x9D, block[:100]); sw != swWrongData {
		t.Fatalf("short block: %04X", sw)
	}
	if _, sw := h.sign(AlgRSA2048, 0x9D, bytes.Repeat([]byte{0xFF}, 256)); sw != swWrongData {
		t.Fatalf("block above the modulus: %04X", sw)
	}
	req := mkTLV(0x7C, append([]byte{0x82, 0x00}, mkTLV(0x85, make([]byte, 65))...))
	h.wantSW(swWrongData, 0x87, AlgRSA2048, 0x9D, req)
}

func TestImportKeyAndAttestation(t *testing.T) {
	h, st := newHost(t)
	h.selectPIV()
	h.auth()
	pub := h.generate(0x9A, AlgECCP256, 0xAB, 0x01, TouchPolicyCached)
	attDER := h.ok(0xF9, 0x9A, 0x00, nil)
	att, err := x509.ParseCertificate(attDER)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := st.AttestationCA()
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := parseTLVs(st.Objects[TagAttestation])
	f9DER, _ := findTLV(ts, 0x70)
	f9, err := x509.ParseCertificate(f9DER)
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca)
	inter.AddCert(f9)
	if _, err := att.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("attestation chain: %v", err)
	}
	if !att.PublicKey.(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("attested key differs")
	}
	for _, e := range att.Extensions {
		if e.Id.Equal(oidPolicy) && !bytes.Equal(e.Value, []byte{PINPolicyOnce, TouchPolicyCached}) {
			t.Fatalf("policy extension %x", e.Value)
		}
	}
	h.wantSW(swNotFound, 0xF9, 0x9D, 0x00, nil)
	h.wantSW(swWrongP1P2, 0xF9, 0x9B, 0x00, nil)

	// Import an EC and an RSA key; imported keys cannot be attested.
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d := ecKey.D.FillBytes(make([]byte, 32))
	h.ok(0xFE, AlgECCP256, 0x9E, append(mkTLV(0x06, d), 0xAA, 0x01, PINPolicyNever))
	h.wantSW(swWrongData, 0xF9, 0x9E, 0x00, nil)
	digest := sha256.Sum256([]byte("x"))
	sig, _ := h.sign(AlgECCP256, 0x9E, digest[:])
	if !ecdsa.VerifyASN1(&ecKey.PublicKey, digest[:], sig) {
		t.Fatal("imported EC key")
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaKey.Precompute()
	var imp []byte
	for i, v := range []*big.Int{rsaKey.Primes[0], rsaKey.Primes[1], rsaKey.Precomputed.Dp, rsaKey.Precomputed.Dq, rsaKey.Precomputed.Qinv} {
		imp = append(imp, mkTLV(uint32(i+1), v.FillBytes(make([]byte, 64)))...)
	}
	h.ok(0xFE, AlgRSA1024, 0x9D, imp)
	md := h.ok(0xF7, 0x00, 0x9D, nil)
	mts, _ := parseTLVs(md)
	if v, _ := findTLV(mts, 0x03); !bytes.Equal(v, []byte{OriginImported}) {
		t.Fatal("origin of an imported key")
	}
	h.wantSW(swWrongData, 0xFE, AlgRSA2048, 0x9D, imp) // size does not match the algorithm
	h.wantSW(swWrongData, 0xFE, AlgECCP256, 0x9D, mkTLV(0x06, make([]byte, 32)))

	// Yubico SET PIN RETRIES needs PIN and management key.
	h.wantSW(swSecurityStatus, 0xFA, 5, 6, nil)
	h.verify("123456")
	h.ok(0xFA, 5, 6, nil)
	if st.PINMaxRetries != 5 || st.PUKRetries != 6 {
		t.Fatal("retries not set")
	}
}

func TestTransactionsAndClose(t *testing.T) {
	h, _ := newHost(t)
	if err := h.c.EndTransaction(); err == nil {
		t.Fatal("EndTransaction without Begin")
	}
	if err := h.c.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	got := make(chan error)
	go func() { got <- h.c.BeginTransaction() }()
	select {
	case <-got:
		t.Fatal("second transaction did not wait")
	default:
	}
	h.c.EndTransaction()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	h.c.EndTransaction()
	h.selectPIV()
	h.verify("123456")
	h.c.Reset()
	h.wantSW(swINSNotSupported, 0x20, 0x00, 0x80, nil)
	h.selectPIV()
	if _, sw := h.raw(hx("0020008000")); sw != 0x63C3 {
		t.Fatal("PIN still verified after reset")
	}
	h.c.Close()
	if _, err := h.c.Transmit(hx("00A4040005A000000308")); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
	if err := h.c.BeginTransaction(); err != ErrClosed {
		t.Fatalf("BeginTransaction after Close: %v", err)
	}
}
