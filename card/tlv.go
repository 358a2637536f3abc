package card

import (
	"fmt"
)

// BER-TLV as PIV uses it (ISO/IEC 7816-4 §5.2): tags of one to three bytes,
// definite lengths of up to three bytes. Tags are kept as the big-endian
// number of their bytes (0x7F49, 0x5F2F, 0x7C).

type tlv struct {
	tag   uint32
	value []byte
}

// maxTLVLength bounds any one length field: nothing on a PIV card is larger.
const maxTLVLength = 1 << 20

// parseTLV reads one TLV from b.
func parseTLV(b []byte) (tag uint32, value, rest []byte, err error) {
	if len(b) == 0 {
		return 0, nil, nil, fmt.Errorf("%w: empty TLV", ErrMalformedResponse)
	}
	i := 0
	tag = uint32(b[0])
	i++
	if b[0]&0x1F == 0x1F { // multi-byte tag
		for {
			if i >= len(b) {
				return 0, nil, nil, fmt.Errorf("%w: truncated tag", ErrMalformedResponse)
			}
			if i >= 3 {
				return 0, nil, nil, fmt.Errorf("%w: tag longer than 3 bytes", ErrMalformedResponse)
			}
			tag = tag<<8 | uint32(b[i])
			i++
			if b[i-1]&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return 0, nil, nil, fmt.Errorf("%w: missing length for tag %X", ErrMalformedResponse, tag)
	}
	l := int(b[i])
	i++
	if l&0x80 != 0 {
		n := l & 0x7F
		if n == 0 || n > 3 {
			return 0, nil, nil, fmt.Errorf("%w: bad length encoding for tag %X", ErrMalformedResponse, tag)
		}
		if i+n > len(b) {
			return 0, nil, nil, fmt.Errorf("%w: truncated length for tag %X", ErrMalformedResponse, tag)
		}
		l = 0
		for _, c := range b[i : i+n] {
			l = l<<8 | int(c)
		}
		i += n
	}
	if l > maxTLVLength || l > len(b)-i {
		return 0, nil, nil, fmt.Errorf("%w: length of tag %X exceeds the data", ErrMalformedResponse, tag)
	}
	return tag, b[i : i+l : i+l], b[i+l:], nil
}

// parseTLVs reads a sequence of TLVs that fills b exactly.
func parseTLVs(b []byte) ([]tlv, error) {
	var out []tlv
	for len(b) > 0 {
		tag, v, rest, err := parseTLV(b)
		if err != nil {
			return nil, err
		}
		out = append(out, tlv{tag, v})
		b = rest
	}
	return out, nil
}

// parseOne reads exactly one TLV with the given tag filling all of b.
func parseOne(b []byte, want uint32) ([]byte, error) {
	tag, v, rest, err := parseTLV(b)
	if err != nil {
		return nil, err
	}
	if tag != want {
		return nil, fmt.Errorf("%w: tag %X, want %X", ErrMalformedResponse, tag, want)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after tag %X", ErrMalformedResponse, len(rest), want)
	}
	return v, nil
}

// find returns the value of the first TLV with the tag.
func find(tlvs []tlv, tag uint32) ([]byte, bool) {
	for _, t := range tlvs {
		if t.tag == tag {
			return t.value, true
		}
	}
	return nil, false
}

func appendTag(dst []byte, tag uint32) []byte {
	switch {
	case tag > 0xFFFF:
		return append(dst, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xFF:
		return append(dst, byte(tag>>8), byte(tag))
	}
	return append(dst, byte(tag))
}

func appendLength(dst []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n <= 0xFF:
		return append(dst, 0x81, byte(n))
	case n <= 0xFFFF:
		return append(dst, 0x82, byte(n>>8), byte(n))
	}
	return append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
}

// appendTLV appends tag, length and value.
func appendTLV(dst []byte, tag uint32, value []byte) []byte {
	dst = appendTag(dst, tag)
	dst = appendLength(dst, len(value))
	return append(dst, value...)
}

// tlvBytes concatenates TLVs built with appendTLV into a new slice.
func tlvBytes(tag uint32, value []byte) []byte {
	return appendTLV(make([]byte, 0, len(value)+6), tag, value)
}
