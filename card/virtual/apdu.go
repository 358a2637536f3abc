package virtual

// Status words.
const (
	swOK                 = 0x9000
	swWrongLength        = 0x6700
	swSecurityStatus     = 0x6982
	swAuthBlocked        = 0x6983
	swConditions         = 0x6985
	swWrongData          = 0x6A80
	swNotFound           = 0x6A82
	swWrongP1P2          = 0x6A86
	swRefNotFound        = 0x6A88
	swINSNotSupported    = 0x6D00
	swCLANotSupported    = 0x6E00
	swNoPreciseDiagnosis = 0x6F00
	swMemoryFailure      = 0x6581
)

// command is a parsed command APDU (ISO/IEC 7816-4 §5.1).
type command struct {
	cla, ins, p1, p2 byte
	data             []byte
	ne               int // bytes of response data the host accepts
	extended         bool
}

// parseAPDU decodes the four APDU cases, short and extended. An absent Le
// is taken as the maximum of its form (256 or 65536): hosts such as
// yubico-piv-tool send case-3 commands and still expect data back.
func parseAPDU(b []byte) (command, bool) {
	var c command
	if len(b) < 4 {
		return c, false
	}
	c.cla, c.ins, c.p1, c.p2 = b[0], b[1], b[2], b[3]
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		c.ne = 256
	case len(body) == 1: // case 2S
		c.ne = shortLe(body[0])
	case body[0] != 0: // case 3S / 4S
		lc := int(body[0])
		switch len(body) {
		case 1 + lc:
			c.data = body[1:]
			c.ne = 256
		case 2 + lc:
			c.data = body[1 : 1+lc]
			c.ne = shortLe(body[1+lc])
		default:
			return c, false
		}
	default: // extended: body[0] == 0
		c.extended = true
		if len(body) == 3 { // case 2E
			c.ne = extLe(body[1], body[2])
			return c, true
		}
		if len(body) < 3 {
			return c, false
		}
		lc := int(body[1])<<8 | int(body[2])
		if lc == 0 {
			return c, false
		}
		switch len(body) {
		case 3 + lc:
			c.data = body[3:]
			c.ne = 65536
		case 5 + lc:
			c.data = body[3 : 3+lc]
			c.ne = extLe(body[3+lc], body[4+lc])
		default:
			return c, false
		}
	}
	return c, true
}

func shortLe(b byte) int {
	if b == 0 {
		return 256
	}
	return int(b)
}

func extLe(hi, lo byte) int {
	n := int(hi)<<8 | int(lo)
	if n == 0 {
		return 65536
	}
	return n
}

// sw is a response made of a status word alone.
func sw(s uint16) []byte { return []byte{byte(s >> 8), byte(s)} }

// withSW appends a status word to data in a new slice.
func withSW(data []byte, s uint16) []byte {
	out := make([]byte, 0, len(data)+2)
	out = append(out, data...)
	return append(out, byte(s>>8), byte(s))
}
