package virtual

import "errors"

var errTLV = errors.New("malformed TLV")

// tlv is one BER-TLV element as PIV uses them: a tag of one to three bytes
// (kept as an integer, 0x5FC102) and its value.
type tlv struct {
	tag   uint32
	value []byte
}

// parseTLVs splits b into a sequence of BER-TLV elements. Lengths use the
// short form or 81/82/83; anything longer, or a value running past the end
// of b, is an error. The values alias b.
func parseTLVs(b []byte) ([]tlv, error) {
	var out []tlv
	for len(b) > 0 {
		tag, value, rest, err := parseTLV(b)
		if err != nil {
			return nil, err
		}
		out = append(out, tlv{tag, value})
		b = rest
	}
	return out, nil
}

// parseTLV reads the first element of b.
func parseTLV(b []byte) (tag uint32, value, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errTLV
	}
	i := 0
	tag = uint32(b[0])
	i++
	if b[0]&0x1F == 0x1F { // multi-byte tag
		for {
			if i >= len(b) || i > 3 {
				return 0, nil, nil, errTLV
			}
			tag = tag<<8 | uint32(b[i])
			i++
			if b[i-1]&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return 0, nil, nil, errTLV
	}
	n := int(b[i])
	i++
	if n >= 0x80 {
		k := n & 0x7F
		if k == 0 || k > 3 || i+k > len(b) {
			return 0, nil, nil, errTLV
		}
		n = 0
		for j := 0; j < k; j++ {
			n = n<<8 | int(b[i+j])
		}
		i += k
	}
	if n > len(b)-i {
		return 0, nil, nil, errTLV
	}
	return tag, b[i : i+n], b[i+n:], nil
}

// findTLV returns the value of the first element with the given tag.
func findTLV(ts []tlv, tag uint32) ([]byte, bool) {
	for _, t := range ts {
		if t.tag == tag {
			return t.value, true
		}
	}
	return nil, false
}

// tagBytes is the big-endian encoding of tag without leading zero bytes.
func tagBytes(tag uint32) []byte {
	switch {
	case tag > 0xFFFFFF:
		return []byte{byte(tag >> 24), byte(tag >> 16), byte(tag >> 8), byte(tag)}
	case tag > 0xFFFF:
		return []byte{byte(tag >> 16), byte(tag >> 8), byte(tag)}
	case tag > 0xFF:
		return []byte{byte(tag >> 8), byte(tag)}
	default:
		return []byte{byte(tag)}
	}
}

// appendLen appends a BER length.
func appendLen(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n <= 0xFF:
		return append(b, 0x81, byte(n))
	case n <= 0xFFFF:
		return append(b, 0x82, byte(n>>8), byte(n))
	default:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
}

// appendTLV appends one element.
func appendTLV(b []byte, tag uint32, value []byte) []byte {
	b = append(b, tagBytes(tag)...)
	b = appendLen(b, len(value))
	return append(b, value...)
}

// mkTLV is appendTLV to a new slice.
func mkTLV(tag uint32, value []byte) []byte {
	return appendTLV(make([]byte, 0, len(value)+6), tag, value)
}
