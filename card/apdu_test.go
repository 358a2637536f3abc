package card

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCommandEncode(t *testing.T) {
	long := bytes.Repeat([]byte{0xAB}, 300)
	tests := []struct {
		name     string
		cmd      command
		extended bool
		want     string // hex; the data part of long commands elided as "…"
		wantErr  bool
	}{
		{"case 1", command{ins: 0xFB}, false, "00FB0000", false},
		{"case 2S Le 256", command{ins: 0xFD, ne: 256}, false, "00FD000000", false},
		{"case 2S Le 8", command{ins: 0xCB, ne: 8}, false, "00CB000008", false},
		{"case 2S Ne cut to 256", command{ins: 0xCB, ne: 65536}, false, "00CB000000", false},
		{"case 3S", command{ins: 0x20, p2: 0x80, data: []byte{1, 2}}, false, "002000800201 02", false},
		{"case 4S", command{cla: 0x00, ins: 0xA4, p1: 4, data: []byte{0xA0, 0, 0, 3, 8}, ne: 256}, false, "00A4040005A00000030800", false},
		{"case 2E", command{ins: 0xCB, ne: 65536}, true, "00CB0000000000", false},
		{"case 2E 300", command{ins: 0xCB, ne: 300}, true, "00CB000000012C", false},
		{"case 4E short stays short", command{ins: 0xCB, data: []byte{1}, ne: 256}, true, "00CB00000101 00", false},
		{"case 3E", command{ins: 0xDB, data: long}, true, "00DB000000012C…", false},
		{"case 4E", command{ins: 0x87, data: long, ne: 65536}, true, "00870000 00012C…0000", false},
		{"case 4E Le 256", command{ins: 0x87, data: long, ne: 256}, true, "00870000 00012C…0100", false},
		{"too long for short", command{ins: 0xDB, data: long}, false, "", true},
		{"negative Ne", command{ins: 0xDB, ne: -1}, false, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cmd.encode(tc.extended)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("encode = %X, want error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := strings.ReplaceAll(tc.want, " ", "")
			if i := strings.Index(want, "…"); i >= 0 {
				want = want[:i] + strings.ToUpper(hex.EncodeToString(long)) + want[i+len("…"):]
			}
			if g := strings.ToUpper(hex.EncodeToString(got)); g != strings.ToUpper(want) {
				t.Errorf("encode = %s\nwant     %s", g, want)
			}
			// and back
			dc, ok := decodeCommand(got)
			if !ok {
				t.Fatalf("decodeCommand(%X) failed", got)
			}
			wantNe := tc.cmd.ne
			if !tc.extended && wantNe > 256 {
				wantNe = 256
			}
			if dc.ins != tc.cmd.ins || !bytes.Equal(dc.data, tc.cmd.data) || dc.ne != wantNe {
				t.Errorf("decodeCommand = %+v", dc)
			}
		})
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	for _, s := range []string{"", "00", "00A404", "00A40400 05 A000", "00A40400 00 0002 01", "00A40400 00 0000 01"} {
		if _, ok := decodeCommand(unhex(t, s)); ok {
			t.Errorf("decodeCommand(%s) accepted", s)
		}
	}
}

func TestSplitResponse(t *testing.T) {
	if _, _, err := splitResponse([]byte{0x90}); !errors.Is(err, ErrMalformedResponse) {
		t.Errorf("1-byte response: %v", err)
	}
	d, sw, err := splitResponse([]byte{1, 2, 0x90, 0x00})
	if err != nil || sw != 0x9000 || !bytes.Equal(d, []byte{1, 2}) {
		t.Errorf("got %X %04X %v", d, sw, err)
	}
}

// testPIV is a PIV on a script, past OpenPIV.
func testPIV(sc *scriptCard, yubico bool) *PIV {
	return &PIV{card: sc, t: transport{card: sc}, yubico: yubico, version: [3]byte{5, 4, 3}}
}

func TestTranscriptOpenYubiKey(t *testing.T) {
	sc := loadScript(t, "open_yubikey.apdu")
	p, err := OpenPIV(sc)
	if err != nil {
		t.Fatal(err)
	}
	sc.done()
	if maj, min, pat, ok := p.Version(); !ok || maj != 5 || min != 4 || pat != 3 {
		t.Errorf("Version = %d.%d.%d %v", maj, min, pat, ok)
	}
	if s, ok := p.Serial(); !ok || s != 12345678 {
		t.Errorf("Serial = %d %v", s, ok)
	}
	if !p.Yubico() {
		t.Error("Yubico extensions not enabled")
	}
}

func TestTranscriptOpenGeneric(t *testing.T) {
	sc := loadScript(t, "open_generic.apdu")
	p, err := OpenPIV(sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := p.Version(); ok {
		t.Error("Version ok on a card without GET VERSION")
	}
	if _, ok := p.Serial(); ok {
		t.Error("Serial ok on a card without GET VERSION")
	}
	d, err := p.Discovery()
	if err != nil {
		t.Fatal(err)
	}
	sc.done()
	if !bytes.HasPrefix(d.AID, pivAID) || !d.PIVPIN() || d.GlobalPIN() {
		t.Errorf("discovery = %+v", d)
	}
	// Yubico extensions are refused without sending anything.
	if err := p.SetManagementKey(MgmtAES192, make([]byte, 24), false); !errors.Is(err, ErrNotSupported) {
		t.Errorf("SetManagementKey: %v", err)
	}
	if _, err := p.Metadata(SlotAuthentication); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Metadata: %v", err)
	}
	if err := p.Reset(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Reset: %v", err)
	}
	if _, err := p.GenerateKey(SlotAuthentication, AlgECCP256, KeyPolicy{PIN: PINPolicyAlways}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("GenerateKey with policy: %v", err)
	}
	if _, err := p.PUKRetries(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("PUKRetries: %v", err)
	}
	sc.done()
}

func TestTranscriptWrongLe(t *testing.T) {
	sc := loadScript(t, "wrong_le.apdu")
	p, err := OpenPIV(sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Discovery(); err != nil {
		t.Fatal(err)
	}
	sc.done()
}

func TestTranscriptResponseChaining(t *testing.T) {
	sc := loadScript(t, "chuid_chained.apdu")
	c, err := testPIV(sc, true).CHUID()
	if err != nil {
		t.Fatal(err)
	}
	sc.done()
	if c.GUIDString() != "10111213-1415-1617-1819-1a1b1c1d1e1f" || c.Expiration != "20300101" || len(c.Signature) != 300 {
		t.Errorf("CHUID = %s %s %d-byte signature", c.GUIDString(), c.Expiration, len(c.Signature))
	}
	if !bytes.Equal(c.FASCN, nonFederalFASCN) {
		t.Errorf("FASC-N = %X", c.FASCN)
	}
	// Marshal gives back what was read.
	if !bytes.Equal(c.Marshal(), c.Raw) {
		t.Errorf("Marshal differs from the object read")
	}
}

func TestTranscriptCommandChaining(t *testing.T) {
	sc := loadScript(t, "put_chained.apdu")
	val := make([]byte, 300)
	for i := range val {
		val[i] = byte(i*13 + 1)
	}
	if err := testPIV(sc, true).WriteObject([]byte{0x5F, 0xC1, 0x0D}, val); err != nil {
		t.Fatal(err)
	}
	sc.done()
}

func TestTranscriptPIN(t *testing.T) {
	sc := loadScript(t, "pin.apdu")
	p := testPIV(sc, false)
	err := p.VerifyPIN("999999")
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Retries != 2 || errors.Is(err, ErrBlocked) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if strings.Contains(err.Error(), "999999") {
		t.Errorf("error shows the PIN: %v", err)
	}
	if n, err := p.PINRetries(); err != nil || n != 2 {
		t.Errorf("PINRetries = %d, %v", n, err)
	}
	if err := p.VerifyPIN("123456"); err != nil {
		t.Fatal(err)
	}
	if n, verified, err := p.PINStatus(); err != nil || !verified || n != -1 {
		t.Errorf("PINStatus = %d %v %v", n, verified, err)
	}
	if err := p.VerifyPIN("123456"); !errors.Is(err, ErrBlocked) {
		t.Errorf("blocked PIN: %v", err)
	}
	sc.done()
	// Nothing is sent for PINs that cannot be right.
	for _, pin := range []string{"", "123456789"} {
		if err := p.VerifyPIN(pin); err == nil {
			t.Errorf("VerifyPIN(%q) succeeded", pin)
		}
	}
	if err := p.ChangePIN("123456", "12345"); err == nil {
		t.Error("ChangePIN to 5 digits succeeded")
	}
}

func TestTranscriptGenerate(t *testing.T) {
	sc := loadScript(t, "generate_p256.apdu")
	pub, err := testPIV(sc, true).GenerateKey(SlotAuthentication, AlgECCP256, KeyPolicy{PIN: PINPolicyOnce, Touch: TouchPolicyNever})
	if err != nil {
		t.Fatal(err)
	}
	sc.done()
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() || ec.X.Cmp(elliptic.P256().Params().Gx) != 0 {
		t.Errorf("public key = %#v", pub)
	}
}

// fakeCard answers from a function.
type fakeCard struct {
	fn   func(apdu []byte) ([]byte, error)
	sent [][]byte
}

func (f *fakeCard) Transmit(apdu []byte) ([]byte, error) {
	f.sent = append(f.sent, bytes.Clone(apdu))
	return f.fn(apdu)
}
func (f *fakeCard) BeginTransaction() error { return nil }
func (f *fakeCard) EndTransaction() error   { return nil }
func (f *fakeCard) Close() error            { return nil }

func TestEndlessResponseChaining(t *testing.T) {
	f := &fakeCard{fn: func([]byte) ([]byte, error) { return []byte{0x61, 0x00}, nil }}
	tr := transport{card: f}
	_, _, err := tr.transmit(command{ins: 0xCB, ne: 256})
	if !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("err = %v", err)
	}
	f = &fakeCard{fn: func([]byte) ([]byte, error) { return make([]byte, 258), nil }}
	f.fn = func(apdu []byte) ([]byte, error) {
		r := make([]byte, 258)
		r[256], r[257] = 0x61, 0x00
		return r, nil
	}
	tr = transport{card: f}
	if _, _, err := tr.transmit(command{ins: 0xCB, ne: 256}); !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("err = %v", err)
	}
	if len(f.sent) > maxResponse/256+2 {
		t.Errorf("%d APDUs sent before giving up", len(f.sent))
	}
}

func TestRepeated6C(t *testing.T) {
	// A card that keeps answering 6Cxx gets one resend, not a loop.
	f := &fakeCard{fn: func([]byte) ([]byte, error) { return []byte{0x6C, 0x10}, nil }}
	tr := transport{card: f}
	_, sw, err := tr.transmit(command{ins: 0xCB, ne: 256})
	if err != nil || sw != 0x6C10 || len(f.sent) != 2 {
		t.Fatalf("sw %04X err %v after %d APDUs", sw, err, len(f.sent))
	}
	if !bytes.Equal(f.sent[1], []byte{0, 0xCB, 0, 0, 0x10}) {
		t.Errorf("resent %X", f.sent[1])
	}
}

func TestChainingStopsOnError(t *testing.T) {
	f := &fakeCard{fn: func([]byte) ([]byte, error) { return []byte{0x6A, 0x84}, nil }}
	tr := transport{card: f}
	_, sw, err := tr.transmit(command{ins: 0xDB, data: make([]byte, 600)})
	if err != nil || sw != 0x6A84 || len(f.sent) != 1 {
		t.Fatalf("sw %04X err %v after %d APDUs", sw, err, len(f.sent))
	}
	if f.sent[0][0] != 0x10 || len(f.sent[0]) != 5+255 {
		t.Errorf("first block %X…", f.sent[0][:5])
	}
}

func TestExtendedNoChaining(t *testing.T) {
	f := &fakeCard{fn: func([]byte) ([]byte, error) { return []byte{0x90, 0x00}, nil }}
	tr := transport{card: f, extended: true}
	if _, _, err := tr.transmit(command{ins: 0xDB, data: make([]byte, 2000)}); err != nil {
		t.Fatal(err)
	}
	if len(f.sent) != 1 || len(f.sent[0]) != 7+2000 {
		t.Errorf("%d APDUs, first %d bytes", len(f.sent), len(f.sent[0]))
	}
}

func TestNeverEmptyAPDU(t *testing.T) {
	f := &fakeCard{fn: func([]byte) ([]byte, error) { t.Fatal("sent"); return nil, nil }}
	tr := transport{card: f}
	if _, _, err := tr.raw(nil); !errors.Is(err, errEmptyAPDU) {
		t.Errorf("err = %v", err)
	}
}

func TestSecretWiped(t *testing.T) {
	var kept [][]byte
	f := &fakeCard{fn: func(apdu []byte) ([]byte, error) {
		kept = append(kept, apdu) // a careless Card that keeps the buffer
		return []byte{0x90, 0x00}, nil
	}}
	tr := transport{card: f}
	if _, _, err := tr.transmit(command{ins: 0x20, p2: 0x80, data: []byte("12345678"), secret: true}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(kept[0], []byte("12345678")) {
		t.Errorf("PIN left in the APDU buffer: %X", kept[0])
	}
}

func TestATRExtendedLength(t *testing.T) {
	tests := []struct {
		atr  string
		want bool
	}{
		// YubiKey 5 NFC: historical bytes 80 73 C0 21 C0 57 59 75 62 69 4B 65 79
		{"3BFD1300008131FE158073C021C057597562694B657940", true},
		// YubiKey 4: historical bytes are text, no capabilities
		{"3BF81300008131FE15597562696B657934D4", false},
		// card capabilities without extended length
		{"3B8880010000000073C00100", false},
		{"", false},
		{"3B", false},
	}
	for _, tc := range tests {
		if got := atrExtendedLength(unhex(t, tc.atr)); got != tc.want {
			t.Errorf("atrExtendedLength(%s) = %v", tc.atr, got)
		}
	}
}

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		sw   uint16
		want error
	}{
		{0x6982, ErrSecurityStatus},
		{0x6983, ErrBlocked},
		{0x6A82, ErrNotFound},
		{0x6A88, ErrNotFound},
		{0x6D00, ErrNotSupported},
		{0x6985, ErrConditions},
		{0x63C0, ErrBlocked},
	}
	for _, tc := range tests {
		err := statusError("op", "PIN", tc.sw)
		if !errors.Is(err, tc.want) {
			t.Errorf("%04X: %v is not %v", tc.sw, err, tc.want)
		}
		if errors.Is(err, ErrCardRemoved) {
			t.Errorf("%04X matches ErrCardRemoved", tc.sw)
		}
	}
	err := statusError("verify PIN", "PIN", 0x63C1)
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Retries != 1 || errors.Is(err, ErrBlocked) {
		t.Errorf("63C1: %v", err)
	}
	var se *StatusError
	if err := statusError("x", "", 0x6A80); !errors.As(err, &se) || se.SW != 0x6A80 || !strings.Contains(err.Error(), "6A80") {
		t.Errorf("6A80: %v", err)
	}
}
