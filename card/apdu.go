package card

import (
	"errors"
	"fmt"
)

// command is an ISO/IEC 7816-4 command APDU.
type command struct {
	cla, ins, p1, p2 byte
	data             []byte
	// ne is the most response data expected: 0 means no Le field; 1..256 a
	// short Le (256 is sent as 00); more than 256 needs an extended Le
	// (65536 is sent as 0000) and is cut to 256 when extended length is off.
	ne int
	// secret: the data holds a PIN, PUK or key; encoded copies are wiped
	// after sending.
	secret bool
}

const (
	maxShortData = 255
	maxShortNe   = 256
	maxExtData   = 65535
	maxExtNe     = 65536

	// bounds on response chaining, so a misbehaving card cannot keep the
	// host in a loop or make it allocate without end.
	maxResponse    = 1 << 20
	maxGetResponse = 4096
)

var errEmptyAPDU = errors.New("card: refusing to send an empty APDU")

// encode builds the command bytes. With extended false the data must fit a
// short APDU (chaining is done by the transport, not here).
func (c command) encode(extended bool) ([]byte, error) {
	if len(c.data) > maxExtData || c.ne < 0 || c.ne > maxExtNe {
		return nil, fmt.Errorf("card: APDU data or Ne out of range (%d, %d)", len(c.data), c.ne)
	}
	ne := c.ne
	useExt := extended && (len(c.data) > maxShortData || ne > maxShortNe)
	if !useExt {
		if len(c.data) > maxShortData {
			return nil, fmt.Errorf("card: %d bytes of data need an extended APDU", len(c.data))
		}
		if ne > maxShortNe {
			ne = maxShortNe
		}
	}
	b := make([]byte, 0, 4+3+len(c.data)+3)
	b = append(b, c.cla, c.ins, c.p1, c.p2)
	if useExt {
		if len(c.data) > 0 {
			b = append(b, 0, byte(len(c.data)>>8), byte(len(c.data)))
			b = append(b, c.data...)
			if ne > 0 {
				b = append(b, byte(ne>>8), byte(ne)) // 65536 → 00 00
			}
		} else if ne > 0 {
			b = append(b, 0, byte(ne>>8), byte(ne))
		}
		return b, nil
	}
	if len(c.data) > 0 {
		b = append(b, byte(len(c.data)))
		b = append(b, c.data...)
	}
	if ne > 0 {
		b = append(b, byte(ne)) // 256 → 00
	}
	return b, nil
}

// splitResponse separates response data from SW1 SW2.
func splitResponse(r []byte) ([]byte, uint16, error) {
	if len(r) < 2 {
		return nil, 0, fmt.Errorf("%w: %d-byte response APDU", ErrMalformedResponse, len(r))
	}
	n := len(r) - 2
	return r[:n:n], uint16(r[n])<<8 | uint16(r[n+1]), nil
}

// transport carries commands over a Card, doing command chaining and
// response chaining (61xx, 6Cxx).
type transport struct {
	card     Card
	extended bool // the card takes extended-length APDUs
}

// raw sends one encoded APDU.
func (t *transport) raw(apdu []byte) ([]byte, uint16, error) {
	if len(apdu) < 4 {
		return nil, 0, errEmptyAPDU
	}
	r, err := t.card.Transmit(apdu)
	if err != nil {
		return nil, 0, err
	}
	return splitResponse(r)
}

// transmit sends cmd and returns the response data and the final status
// word. A status word other than 9000 is not an error here; errors are
// transport failures (card removed, malformed answers).
func (t *transport) transmit(cmd command) ([]byte, uint16, error) {
	chunk := maxShortData
	if t.extended {
		chunk = maxExtData
	}
	data := cmd.data
	// Command chaining: every block but the last with CLA bit 0x10.
	for len(data) > chunk {
		part := command{cla: cmd.cla | 0x10, ins: cmd.ins, p1: cmd.p1, p2: cmd.p2, data: data[:chunk]}
		apdu, err := part.encode(t.extended)
		if err != nil {
			return nil, 0, err
		}
		_, sw, err := t.raw(apdu)
		if cmd.secret {
			clear(apdu)
		}
		if err != nil {
			return nil, 0, err
		}
		if sw != 0x9000 {
			return nil, sw, nil
		}
		data = data[chunk:]
	}
	last := cmd
	last.data = data
	return t.exchange(last)
}

// exchange sends one (final) command and collects the whole response.
func (t *transport) exchange(cmd command) ([]byte, uint16, error) {
	apdu, err := cmd.encode(t.extended)
	if err != nil {
		return nil, 0, err
	}
	if cmd.secret {
		first := apdu
		defer clear(first)
	}
	var out []byte
	resent := false
	for i := 0; ; i++ {
		if i > maxGetResponse {
			return nil, 0, fmt.Errorf("%w: endless response chaining", ErrMalformedResponse)
		}
		data, sw, err := t.raw(apdu)
		if err != nil {
			return nil, 0, err
		}
		switch sw1 := byte(sw >> 8); {
		case sw1 == 0x6C && !resent:
			// Wrong Le: send the same command again with Le = SW2.
			// Data returned with 6Cxx is not part of the answer.
			resent = true
			prev := apdu
			apdu = withLe(apdu, t.extended, leValue(byte(sw)))
			if cmd.secret {
				defer clear(apdu)
				clear(prev)
			}
			continue
		case sw1 == 0x61:
			out = append(out, data...)
			if len(out) > maxResponse {
				return nil, 0, fmt.Errorf("%w: response too long", ErrMalformedResponse)
			}
			gr := command{cla: cmd.cla &^ 0x10, ins: 0xC0, ne: leValue(byte(sw))}
			if apdu, err = gr.encode(false); err != nil {
				return nil, 0, err
			}
			resent = false
			continue
		}
		out = append(out, data...)
		if len(out) > maxResponse {
			return nil, 0, fmt.Errorf("%w: response too long", ErrMalformedResponse)
		}
		return out, sw, nil
	}
}

func leValue(b byte) int {
	if b == 0 {
		return 256
	}
	return int(b)
}

// withLe re-encodes an APDU with a new short Le, keeping header and data.
func withLe(apdu []byte, extended bool, ne int) []byte {
	c, ok := decodeCommand(apdu)
	if !ok {
		return apdu
	}
	c.ne = ne
	b, err := c.encode(extended)
	if err != nil {
		return apdu
	}
	return b
}

// decodeCommand parses an encoded command APDU (used to resend on 6Cxx and
// by tests).
func decodeCommand(b []byte) (command, bool) {
	if len(b) < 4 {
		return command{}, false
	}
	c := command{cla: b[0], ins: b[1], p1: b[2], p2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, true
	case len(body) == 1: // case 2S
		c.ne = leValue(body[0])
		return c, true
	case body[0] != 0: // case 3S / 4S
		lc := int(body[0])
		switch len(body) {
		case 1 + lc:
		case 2 + lc:
			c.ne = leValue(body[1+lc])
		default:
			return command{}, false
		}
		c.data = body[1 : 1+lc]
		return c, true
	case len(body) == 3: // case 2E
		c.ne = int(body[1])<<8 | int(body[2])
		if c.ne == 0 {
			c.ne = maxExtNe
		}
		return c, true
	case len(body) > 3: // case 3E / 4E
		lc := int(body[1])<<8 | int(body[2])
		if lc == 0 {
			return command{}, false
		}
		switch len(body) {
		case 3 + lc:
		case 5 + lc:
			c.ne = int(body[3+lc])<<8 | int(body[4+lc])
			if c.ne == 0 {
				c.ne = maxExtNe
			}
		default:
			return command{}, false
		}
		c.data = body[3 : 3+lc]
		return c, true
	}
	return command{}, false
}
