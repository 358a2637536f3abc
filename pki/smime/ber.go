package smime

import (
	"errors"
)

// maxDepth bounds the nesting of BER values we accept; real CMS is a few
// levels deep.
const maxDepth = 48

var errBER = errors.New("bad BER encoding")

// normalizeBER turns BER as OpenSSL streams it (indefinite lengths,
// constructed OCTET STRINGs, long-form lengths) into DER-shaped bytes that
// encoding/asn1 parses: every length definite and minimal, and every
// constructed universal OCTET STRING joined into a primitive one. Values
// already in DER come out unchanged, so signatures over them still check.
func normalizeBER(in []byte) ([]byte, error) {
	// Most messages are DER already: check without copying megabytes.
	if rest, ok := derShaped(in, 0); ok && len(rest) == 0 {
		return in, nil
	}
	out, rest, err := berValue(in, 0, make([]byte, 0, len(in)))
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing data after the CMS value")
	}
	return out, nil
}

// derShaped reports whether the first value of in is already in the form
// normalizeBER makes (definite minimal lengths, no constructed universal
// OCTET STRING), and returns what follows it.
func derShaped(in []byte, depth int) ([]byte, bool) {
	if depth > maxDepth || len(in) < 2 || in[0]&0x1f == 0x1f {
		return nil, false
	}
	constructed := in[0]&0x20 != 0
	if in[0] == 0x24 {
		return nil, false
	}
	lb := in[1]
	n := 2
	l := int(lb)
	if lb >= 0x80 {
		nb := int(lb & 0x7f)
		if nb == 0 || nb > 4 || nb > len(in)-2 || in[2] == 0 {
			return nil, false // indefinite, too long, or not minimal
		}
		l = 0
		for _, b := range in[2 : 2+nb] {
			l = l<<8 | int(b)
		}
		if l < 0x80 {
			return nil, false
		}
		n += nb
	}
	if l > len(in)-n {
		return nil, false
	}
	content, rest := in[n:n+l], in[n+l:]
	if constructed {
		for len(content) > 0 {
			var ok bool
			if content, ok = derShaped(content, depth+1); !ok {
				return nil, false
			}
		}
	}
	return rest, true
}

// berValue appends the normalized form of the first value of in to out.
func berValue(in []byte, depth int, out []byte) ([]byte, []byte, error) {
	if depth > maxDepth {
		return nil, nil, errors.New("BER nested too deeply")
	}
	if len(in) < 2 {
		return nil, nil, errBER
	}
	tagStart := in
	first := in[0]
	n := 1
	if first&0x1f == 0x1f {
		// High tag number: base-128 bytes, the last without bit 8.
		for {
			if n >= len(in) || n > 5 {
				return nil, nil, errBER
			}
			b := in[n]
			n++
			if b&0x80 == 0 {
				break
			}
		}
	}
	tag := tagStart[:n]
	constructed := first&0x20 != 0
	if n >= len(in) {
		return nil, nil, errBER
	}
	lb := in[n]
	n++
	var content []byte
	var rest []byte
	switch {
	case lb == 0x80:
		if !constructed {
			return nil, nil, errors.New("indefinite length on a primitive BER value")
		}
		// Children until the end-of-contents octets.
		body := in[n:]
		var children []byte
		for {
			if len(body) < 2 {
				return nil, nil, errBER
			}
			if body[0] == 0 && body[1] == 0 {
				body = body[2:]
				break
			}
			var err error
			children, body, err = berValue(body, depth+1, children)
			if err != nil {
				return nil, nil, err
			}
		}
		return appendNormalized(out, tag, children, true), body, nil
	case lb&0x80 == 0:
		l := int(lb)
		if l > len(in)-n {
			return nil, nil, errBER
		}
		content, rest = in[n:n+l], in[n+l:]
	default:
		nb := int(lb & 0x7f)
		if nb > 4 || nb > len(in)-n {
			return nil, nil, errBER
		}
		l := 0
		for _, b := range in[n : n+nb] {
			l = l<<8 | int(b)
		}
		n += nb
		if l < 0 || l > len(in)-n {
			return nil, nil, errBER
		}
		content, rest = in[n:n+l], in[n+l:]
	}
	if !constructed {
		return appendNormalized(out, tag, content, false), rest, nil
	}
	var children []byte
	for len(content) > 0 {
		var err error
		children, content, err = berValue(content, depth+1, children)
		if err != nil {
			return nil, nil, err
		}
	}
	return appendNormalized(out, tag, children, true), rest, nil
}

// appendNormalized writes tag, a minimal length and content; a constructed
// universal OCTET STRING (tag 0x24) becomes a primitive one holding its
// segments joined.
func appendNormalized(out, tag, content []byte, constructed bool) []byte {
	if constructed && len(tag) == 1 && tag[0] == 0x24 {
		var joined []byte
		rest := content
		for len(rest) > 0 {
			// Children are already normalized: definite, minimal lengths.
			_, hl, l, ok := header(rest)
			if !ok || rest[0] != 0x04 {
				// Not plain segments: leave it constructed.
				return appendTLV(out, tag, content)
			}
			joined = append(joined, rest[hl:hl+l]...)
			rest = rest[hl+l:]
		}
		return appendTLV(out, []byte{0x04}, joined)
	}
	return appendTLV(out, tag, content)
}

// header parses a normalized, low-tag-number header.
func header(b []byte) (tag byte, hl, l int, ok bool) {
	if len(b) < 2 || b[0]&0x1f == 0x1f {
		return 0, 0, 0, false
	}
	lb := b[1]
	if lb < 0x80 {
		hl, l = 2, int(lb)
	} else {
		nb := int(lb & 0x7f)
		if nb == 0 || nb > 4 || len(b) < 2+nb {
			return 0, 0, 0, false
		}
		for _, x := range b[2 : 2+nb] {
			l = l<<8 | int(x)
		}
		hl = 2 + nb
	}
	if l < 0 || l > len(b)-hl {
		return 0, 0, 0, false
	}
	return b[0], hl, l, true
}

func appendTLV(out, tag, content []byte) []byte {
	out = append(out, tag...)
	out = appendLen(out, len(content))
	return append(out, content...)
}

// appendLen appends a minimal DER length.
func appendLen(out []byte, l int) []byte {
	switch {
	case l < 0x80:
		out = append(out, byte(l))
	case l < 1<<8:
		out = append(out, 0x81, byte(l))
	case l < 1<<16:
		out = append(out, 0x82, byte(l>>8), byte(l))
	case l < 1<<24:
		out = append(out, 0x83, byte(l>>16), byte(l>>8), byte(l))
	default:
		out = append(out, 0x84, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
	}
	return out
}
