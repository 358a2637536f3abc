package directory

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"unicode/utf8"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Requests are framed here (one definite-length SEQUENCE, no bigger than
// the server's limit, read as it arrives rather than allocated up front),
// pre-scanned for depth and element count (so a small PDU cannot expand
// into millions of decoded elements), decoded with go-asn1-ber, and
// checked strictly against RFC 4511. Responses are written by the small
// appender at the end of this file.

// DefaultMaxPDU is the largest request the server accepts by default.
const DefaultMaxPDU = 1 << 20

func init() {
	// asn1-ber's limit is a package global, 2 GiB by default, and applies
	// to every reader in the process (our server, and go-ldap clients
	// reading replies). It is lowered once, here, before any goroutine can
	// read it: a process that imports this package never lets a peer's
	// length field ask for more than 1 MiB in one BER element. The server
	// frames requests itself and enforces its own Limits.MaxPDU too.
	if ber.MaxPacketLengthBytes <= 0 || ber.MaxPacketLengthBytes > DefaultMaxPDU {
		ber.MaxPacketLengthBytes = DefaultMaxPDU
	}
}

// Structural limits on a request's BER, checked before decoding.
const (
	maxBERDepth = 48
)

var (
	errMalformed = errors.New("malformed request")
	errTooLarge  = errors.New("request larger than the limit")
)

// readPDU reads one LDAPMessage and returns its whole encoding.
func readPDU(r *bufio.Reader, max int) ([]byte, error) {
	tag, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	if tag != 0x30 {
		return nil, fmt.Errorf("%w: not a SEQUENCE (tag %#x)", errMalformed, tag)
	}
	l0, err := r.ReadByte()
	if err != nil {
		return nil, unexpected(err)
	}
	hdr := []byte{tag, l0}
	length := 0
	switch {
	case l0 < 0x80:
		length = int(l0)
	case l0 == 0x80:
		return nil, fmt.Errorf("%w: indefinite length (RFC 4511 §5.1 forbids it)", errMalformed)
	default:
		n := int(l0 & 0x7f)
		if n > 4 {
			return nil, errTooLarge
		}
		for i := 0; i < n; i++ {
			b, err := r.ReadByte()
			if err != nil {
				return nil, unexpected(err)
			}
			hdr = append(hdr, b)
			length = length<<8 | int(b)
		}
	}
	if length > max {
		return nil, errTooLarge
	}
	if length <= 64<<10 {
		// The usual small request: one allocation of its size.
		buf := make([]byte, len(hdr)+length)
		copy(buf, hdr)
		if _, err := io.ReadFull(r, buf[len(hdr):]); err != nil {
			return nil, unexpected(err)
		}
		return buf, nil
	}
	// A large one grows with what actually arrives, never with what the
	// length claims.
	buf := bytes.NewBuffer(make([]byte, 0, len(hdr)+4096))
	buf.Write(hdr)
	if _, err := io.CopyN(buf, r, int64(length)); err != nil {
		return nil, unexpected(err)
	}
	return buf.Bytes(), nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// scanBER walks TLVs without allocating: definite lengths only, nested
// lengths consistent, bounded depth and element count.
func scanBER(b []byte, maxElems int) error {
	_, err := countBER(b, maxElems)
	return err
}

// countBER is scanBER that also returns the number of elements.
func countBER(b []byte, maxElems int) (int, error) {
	count := 0
	var walk func(b []byte, depth int) error
	walk = func(b []byte, depth int) error {
		if depth > maxBERDepth {
			return fmt.Errorf("%w: nested deeper than %d", errMalformed, maxBERDepth)
		}
		for len(b) > 0 {
			count++
			if count > maxElems {
				return fmt.Errorf("%w: more than %d elements", errTooLarge, maxElems)
			}
			id := b[0]
			i := 1
			if id&0x1f == 0x1f {
				// High tag number: LDAP uses none; allow up to 4 bytes.
				for ; i < len(b) && b[i]&0x80 != 0; i++ {
					if i > 4 {
						return errMalformed
					}
				}
				i++
			}
			if i >= len(b) {
				return errMalformed
			}
			l := int(b[i])
			i++
			if l == 0x80 || l == 0xff {
				return fmt.Errorf("%w: indefinite length", errMalformed)
			}
			if l > 0x80 {
				n := l & 0x7f
				if n > 4 || i+n > len(b) {
					return errMalformed
				}
				l = 0
				for _, c := range b[i : i+n] {
					l = l<<8 | int(c)
				}
				i += n
			}
			if l > len(b)-i {
				return fmt.Errorf("%w: element longer than its container", errMalformed)
			}
			if id&0x20 != 0 {
				if err := walk(b[i:i+l], depth+1); err != nil {
					return err
				}
			}
			b = b[i+l:]
		}
		return nil
	}
	err := walk(b, 0)
	return count, err
}

// packet is one decoded BER element: a view into the bytes it was decoded
// from, with the fields of asn1-ber's Packet that the decoders use. It
// costs two allocations per message instead of several per element.
type packet struct {
	ClassType ber.Class
	TagType   ber.Type
	Tag       ber.Tag
	Children  []*packet
	data      []byte
}

// decodePacket decodes the first BER element of b, which must pass
// scanBER with maxElems.
func decodePacket(b []byte, maxElems int) (*packet, error) {
	n, err := countBER(b, maxElems)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty", errMalformed)
	}
	d := &packetDecoder{slab: make([]packet, n), ptrs: make([]*packet, n)}
	p, _, err := d.decode(b)
	return p, err
}

type packetDecoder struct {
	slab []packet
	ptrs []*packet // children slices are cut from here
}

func (d *packetDecoder) decode(b []byte) (*packet, []byte, error) {
	if len(b) < 2 || len(d.slab) == 0 {
		return nil, nil, errMalformed
	}
	p := &d.slab[0]
	d.slab = d.slab[1:]
	id := b[0]
	p.ClassType = ber.Class(id & 0xc0)
	p.TagType = ber.Type(id & 0x20)
	i := 1
	tag := uint64(id & 0x1f)
	if tag == 0x1f {
		tag = 0
		for {
			if i >= len(b) || i > 5 {
				return nil, nil, errMalformed
			}
			c := b[i]
			i++
			tag = tag<<7 | uint64(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
	}
	p.Tag = ber.Tag(tag)
	if i >= len(b) {
		return nil, nil, errMalformed
	}
	l := int(b[i])
	i++
	if l == 0x80 || l == 0xff {
		return nil, nil, errMalformed
	}
	if l > 0x80 {
		k := l & 0x7f
		if k > 4 || i+k > len(b) {
			return nil, nil, errMalformed
		}
		l = 0
		for _, c := range b[i : i+k] {
			l = l<<8 | int(c)
		}
		i += k
	}
	if l < 0 || l > len(b)-i {
		return nil, nil, errMalformed
	}
	p.data = b[i : i+l : i+l]
	rest := b[i+l:]
	if p.TagType == ber.TypeConstructed {
		// Count the children first, to cut their slice from ptrs.
		k := 0
		for c := p.data; len(c) > 0; k++ {
			_, after, err := skipElement(c)
			if err != nil {
				return nil, nil, err
			}
			c = after
		}
		if k > len(d.ptrs) {
			return nil, nil, errMalformed
		}
		p.Children = d.ptrs[:k:k]
		d.ptrs = d.ptrs[k:]
		c := p.data
		for j := 0; j < k; j++ {
			ch, after, err := d.decode(c)
			if err != nil {
				return nil, nil, err
			}
			p.Children[j] = ch
			c = after
		}
	}
	return p, rest, nil
}

// skipElement returns the bytes after one element.
func skipElement(b []byte) ([]byte, []byte, error) {
	if len(b) < 2 {
		return nil, nil, errMalformed
	}
	i := 1
	if b[0]&0x1f == 0x1f {
		for i < len(b) && b[i]&0x80 != 0 {
			i++
		}
		i++
	}
	if i >= len(b) {
		return nil, nil, errMalformed
	}
	l := int(b[i])
	i++
	if l > 0x80 {
		k := l & 0x7f
		if k > 4 || i+k > len(b) {
			return nil, nil, errMalformed
		}
		l = 0
		for _, c := range b[i : i+k] {
			l = l<<8 | int(c)
		}
		i += k
	} else if l == 0x80 {
		return nil, nil, errMalformed
	}
	if l < 0 || l > len(b)-i {
		return nil, nil, errMalformed
	}
	return b[:i+l], b[i+l:], nil
}

// Protocol operation tags (application class).
const (
	opBindRequest       = 0
	opBindResponse      = 1
	opUnbindRequest     = 2
	opSearchRequest     = 3
	opSearchEntry       = 4
	opSearchDone        = 5
	opModifyRequest     = 6
	opModifyResponse    = 7
	opAddRequest        = 8
	opAddResponse       = 9
	opDelRequest        = 10
	opDelResponse       = 11
	opModDNRequest      = 12
	opModDNResponse     = 13
	opCompareRequest    = 14
	opCompareResponse   = 15
	opAbandonRequest    = 16
	opExtendedRequest   = 23
	opExtendedResponse  = 24
	opIntermediateRespo = 25
)

var opNames = map[int]string{
	opBindRequest: "bind", opUnbindRequest: "unbind", opSearchRequest: "search", opModifyRequest: "modify",
	opAddRequest: "add", opDelRequest: "delete", opModDNRequest: "modrdn", opCompareRequest: "compare",
	opAbandonRequest: "abandon", opExtendedRequest: "extended",
}

// message is a decoded LDAPMessage.
type message struct {
	id       int64
	op       int
	req      any
	controls []control
}

type control struct {
	oid      string
	critical bool
	value    []byte
	hasValue bool
}

type bindRequest struct {
	version  int64
	name     string
	simple   bool
	password []byte
	mech     string
	// creds are the SASL credentials (for EXTERNAL, an authzId).
	creds []byte
}

type searchRequest struct {
	base      string
	scope     Scope
	sizeLimit int64
	timeLimit int64
	typesOnly bool
	filter    *Filter
	attrs     []string
}

type modifyRequest struct {
	dn   string
	mods []Modification
}

type addRequest struct {
	dn    string
	attrs []Attribute
}

type deleteRequest struct{ dn string }

type modDNRequest struct {
	dn, newRDN  string
	deleteOld   bool
	newSuperior string
}

type compareRequest struct {
	dn, attr string
	value    []byte
}

type abandonRequest struct{ id int64 }

type extendedRequest struct {
	oid      string
	value    []byte
	hasValue bool
}

type unbindRequest struct{}

// decodeRecover turns panics while decoding into errors; the fuzz test
// turns it off to see them.
var decodeRecover = true

// decodeRequest checks and decodes one PDU as read by readPDU.
func decodeRequest(pdu []byte, maxElems int) (m *message, err error) {
	if decodeRecover {
		defer func() {
			// asn1-ber has had panics on hostile input; none may reach a
			// connection, let alone the server.
			if r := recover(); r != nil {
				m, err = nil, fmt.Errorf("%w: undecodable", errMalformed)
			}
		}()
	}
	p, err := decodePacket(pdu, maxElems)
	if err != nil {
		return nil, err
	}
	if p.ClassType != ber.ClassUniversal || p.TagType != ber.TypeConstructed || p.Tag != ber.TagSequence || len(p.Children) < 2 || len(p.Children) > 3 {
		return nil, fmt.Errorf("%w: not an LDAPMessage", errMalformed)
	}
	id, ok := integer(p.Children[0], ber.TagInteger)
	if !ok || id < 1 || id > math.MaxInt32 {
		return nil, fmt.Errorf("%w: bad message ID", errMalformed)
	}
	m = &message{id: id}
	op := p.Children[1]
	if op.ClassType != ber.ClassApplication {
		return nil, fmt.Errorf("%w: protocolOp is not an application tag", errMalformed)
	}
	m.op = int(op.Tag)
	if len(p.Children) == 3 {
		if m.controls, err = decodeControls(p.Children[2]); err != nil {
			return nil, err
		}
	}
	bad := func(what string) (*message, error) {
		return nil, fmt.Errorf("%w: %s %s", errMalformed, opNames[m.op], what)
	}
	c := op.Children
	switch m.op {
	case opBindRequest:
		if op.TagType != ber.TypeConstructed || len(c) != 3 {
			return bad("shape")
		}
		r := &bindRequest{}
		var ok1, ok2 bool
		r.version, ok1 = integer(c[0], ber.TagInteger)
		var name []byte
		name, ok2 = octets(c[1])
		if !ok1 || !ok2 || r.version < 1 || r.version > 127 {
			return bad("version or name")
		}
		r.name = string(name)
		auth := c[2]
		switch {
		case auth.ClassType == ber.ClassContext && auth.Tag == 0 && auth.TagType == ber.TypePrimitive:
			r.simple, r.password = true, content(auth)
		case auth.ClassType == ber.ClassContext && auth.Tag == 3 && auth.TagType == ber.TypeConstructed:
			if len(auth.Children) < 1 || len(auth.Children) > 2 {
				return bad("SASL credentials")
			}
			mech, ok := octets(auth.Children[0])
			if !ok {
				return bad("SASL mechanism")
			}
			r.mech = string(mech)
			if len(auth.Children) == 2 {
				if r.creds, ok = octets(auth.Children[1]); !ok {
					return bad("SASL credentials")
				}
			}
		default:
			return bad("authentication choice")
		}
		m.req = r
	case opUnbindRequest:
		if op.TagType != ber.TypePrimitive || len(content(op)) != 0 {
			return bad("shape")
		}
		m.req = unbindRequest{}
	case opSearchRequest:
		if op.TagType != ber.TypeConstructed || len(c) != 8 {
			return bad("shape")
		}
		r := &searchRequest{}
		base, ok := octets(c[0])
		scope, ok1 := integer(c[1], ber.TagEnumerated)
		deref, ok2 := integer(c[2], ber.TagEnumerated)
		size, ok3 := integer(c[3], ber.TagInteger)
		tl, ok4 := integer(c[4], ber.TagInteger)
		types, ok5 := boolean(c[5])
		if !ok || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || scope < 0 || scope > 3 || deref < 0 || deref > 3 || size < 0 || tl < 0 {
			return bad("parameters")
		}
		r.base, r.scope, r.sizeLimit, r.timeLimit, r.typesOnly = string(base), Scope(scope), size, tl, types
		if r.filter, err = decodeFilter(c[6]); err != nil {
			return nil, fmt.Errorf("%w: %v", errMalformed, err)
		}
		al := c[7]
		if !isSequence(al) {
			return bad("attribute list")
		}
		for _, a := range al.Children {
			v, ok := octets(a)
			if !ok {
				return bad("attribute list")
			}
			r.attrs = append(r.attrs, string(v))
		}
		m.req = r
	case opModifyRequest:
		if op.TagType != ber.TypeConstructed || len(c) != 2 || !isSequence(c[1]) {
			return bad("shape")
		}
		dn, ok := octets(c[0])
		if !ok {
			return bad("DN")
		}
		r := &modifyRequest{dn: string(dn)}
		for _, ch := range c[1].Children {
			if !isSequence(ch) || len(ch.Children) != 2 {
				return bad("change")
			}
			o, ok := integer(ch.Children[0], ber.TagEnumerated)
			if !ok || o < 0 || o > 3 {
				return bad("operation")
			}
			a, ok := partialAttribute(ch.Children[1])
			if !ok {
				return bad("modification")
			}
			r.mods = append(r.mods, Modification{Op: ModOp(o), Attr: a})
		}
		m.req = r
	case opAddRequest:
		if op.TagType != ber.TypeConstructed || len(c) != 2 || !isSequence(c[1]) {
			return bad("shape")
		}
		dn, ok := octets(c[0])
		if !ok {
			return bad("DN")
		}
		r := &addRequest{dn: string(dn)}
		for _, ch := range c[1].Children {
			a, ok := partialAttribute(ch)
			if !ok {
				return bad("attribute")
			}
			r.attrs = append(r.attrs, a)
		}
		m.req = r
	case opDelRequest:
		if op.TagType != ber.TypePrimitive {
			return bad("shape")
		}
		m.req = &deleteRequest{dn: string(content(op))}
	case opModDNRequest:
		if op.TagType != ber.TypeConstructed || len(c) < 3 || len(c) > 4 {
			return bad("shape")
		}
		dn, ok1 := octets(c[0])
		rdn, ok2 := octets(c[1])
		del, ok3 := boolean(c[2])
		if !ok1 || !ok2 || !ok3 {
			return bad("fields")
		}
		r := &modDNRequest{dn: string(dn), newRDN: string(rdn), deleteOld: del}
		if len(c) == 4 {
			if c[3].ClassType != ber.ClassContext || c[3].Tag != 0 || c[3].TagType != ber.TypePrimitive {
				return bad("newSuperior")
			}
			r.newSuperior = string(content(c[3]))
			if r.newSuperior == "" {
				return bad("newSuperior")
			}
		}
		m.req = r
	case opCompareRequest:
		if op.TagType != ber.TypeConstructed || len(c) != 2 || !isSequence(c[1]) || len(c[1].Children) != 2 {
			return bad("shape")
		}
		dn, ok1 := octets(c[0])
		attr, ok2 := octets(c[1].Children[0])
		val, ok3 := octets(c[1].Children[1])
		if !ok1 || !ok2 || !ok3 {
			return bad("fields")
		}
		m.req = &compareRequest{dn: string(dn), attr: string(attr), value: val}
	case opAbandonRequest:
		if op.TagType != ber.TypePrimitive {
			return bad("shape")
		}
		b := content(op)
		if len(b) < 1 || len(b) > 5 {
			return bad("message ID")
		}
		id, _ := ber.ParseInt64(b)
		if id < 0 || id > math.MaxInt32 {
			return bad("message ID")
		}
		m.req = &abandonRequest{id: id}
	case opExtendedRequest:
		if op.TagType != ber.TypeConstructed || len(c) < 1 || len(c) > 2 {
			return bad("shape")
		}
		if c[0].ClassType != ber.ClassContext || c[0].Tag != 0 || c[0].TagType != ber.TypePrimitive {
			return bad("requestName")
		}
		r := &extendedRequest{oid: string(content(c[0]))}
		if len(c) == 2 {
			if c[1].ClassType != ber.ClassContext || c[1].Tag != 1 || c[1].TagType != ber.TypePrimitive {
				return bad("requestValue")
			}
			r.value, r.hasValue = content(c[1]), true
		}
		m.req = r
	default:
		return nil, fmt.Errorf("%w: unknown operation %d", errMalformed, m.op)
	}
	return m, nil
}

func decodeControls(p *packet) ([]control, error) {
	if p.ClassType != ber.ClassContext || p.Tag != 0 || p.TagType != ber.TypeConstructed {
		return nil, fmt.Errorf("%w: controls", errMalformed)
	}
	var out []control
	for _, c := range p.Children {
		if !isSequence(c) || len(c.Children) < 1 || len(c.Children) > 3 {
			return nil, fmt.Errorf("%w: control", errMalformed)
		}
		oid, ok := octets(c.Children[0])
		if !ok || !isNumericOID(string(oid)) {
			return nil, fmt.Errorf("%w: control type", errMalformed)
		}
		ctl := control{oid: string(oid)}
		rest := c.Children[1:]
		if len(rest) > 0 && rest[0].ClassType == ber.ClassUniversal && rest[0].Tag == ber.TagBoolean {
			if ctl.critical, ok = boolean(rest[0]); !ok {
				return nil, fmt.Errorf("%w: control criticality", errMalformed)
			}
			rest = rest[1:]
		}
		if len(rest) == 1 {
			if ctl.value, ok = octets(rest[0]); !ok {
				return nil, fmt.Errorf("%w: control value", errMalformed)
			}
			ctl.hasValue = true
		} else if len(rest) > 1 {
			return nil, fmt.Errorf("%w: control", errMalformed)
		}
		out = append(out, ctl)
	}
	return out, nil
}

func partialAttribute(p *packet) (Attribute, bool) {
	if !isSequence(p) || len(p.Children) != 2 {
		return Attribute{}, false
	}
	name, ok := octets(p.Children[0])
	set := p.Children[1]
	if !ok || set.ClassType != ber.ClassUniversal || set.TagType != ber.TypeConstructed || set.Tag != ber.TagSet || !utf8.Valid(name) {
		return Attribute{}, false
	}
	a := Attribute{Name: string(name), Values: make([][]byte, 0, len(set.Children))}
	for _, v := range set.Children {
		b, ok := octets(v)
		if !ok {
			return Attribute{}, false
		}
		a.Values = append(a.Values, b)
	}
	return a, true
}

func isSequence(p *packet) bool {
	return p.ClassType == ber.ClassUniversal && p.TagType == ber.TypeConstructed && p.Tag == ber.TagSequence
}

func octets(p *packet) ([]byte, bool) {
	if !isOctetString(p) {
		return nil, false
	}
	return content(p), true
}

func integer(p *packet, tag ber.Tag) (int64, bool) {
	if p.ClassType != ber.ClassUniversal || p.TagType != ber.TypePrimitive || p.Tag != tag {
		return 0, false
	}
	b := content(p)
	if len(b) < 1 || len(b) > 8 {
		return 0, false
	}
	n, err := ber.ParseInt64(b)
	return n, err == nil
}

func boolean(p *packet) (bool, bool) {
	if p.ClassType != ber.ClassUniversal || p.TagType != ber.TypePrimitive || p.Tag != ber.TagBoolean {
		return false, false
	}
	b := content(p)
	if len(b) != 1 {
		return false, false
	}
	return b[0] != 0, true
}

// ---- encoding responses --------------------------------------------------------

// benc appends BER. begin writes a tag and reserves one length byte; end
// fixes the length, moving the content when the long form needs more.
type benc struct{ b []byte }

func (e *benc) begin(tag byte) int {
	e.b = append(e.b, tag, 0)
	return len(e.b)
}

func (e *benc) end(start int) {
	n := len(e.b) - start
	if n < 0x80 {
		e.b[start-1] = byte(n)
		return
	}
	var lb [4]byte
	k := 0
	for v := n; v > 0; v >>= 8 {
		k++
	}
	for i := 0; i < k; i++ {
		lb[k-1-i] = byte(n >> (8 * i))
	}
	e.b[start-1] = 0x80 | byte(k)
	e.b = append(e.b, lb[:k]...)
	copy(e.b[start+k:], e.b[start:start+n])
	copy(e.b[start:], lb[:k])
}

func (e *benc) octets(tag byte, v []byte) {
	s := e.begin(tag)
	e.b = append(e.b, v...)
	e.end(s)
}

func (e *benc) str(tag byte, v string) {
	s := e.begin(tag)
	e.b = append(e.b, v...)
	e.end(s)
}

func (e *benc) integer(tag byte, v int64) {
	s := e.begin(tag)
	n := 1
	for x := v; x > 127 || x < -128; x >>= 8 {
		n++
	}
	for i := n - 1; i >= 0; i-- {
		e.b = append(e.b, byte(v>>(8*i)))
	}
	e.end(s)
}

func (e *benc) boolean(tag byte, v bool) {
	b := byte(0)
	if v {
		b = 0xff
	}
	e.b = append(e.b, tag, 1, b)
}

// BER tags used in responses.
const (
	tagInteger    = 0x02
	tagOctets     = 0x04
	tagEnumerated = 0x0a
	tagBoolean    = 0x01
	tagSequence   = 0x30
	tagSet        = 0x31
)

func appTag(op int) byte {
	if op == opDelRequest || op == opUnbindRequest || op == opAbandonRequest {
		return 0x40 | byte(op)
	}
	return 0x60 | byte(op)
}

// response builds one LDAPMessage.
type response struct {
	benc
	msg, op int
}

// responses are recycled: a response's bytes are copied into the
// connection's buffer when sent.
var responsePool = sync.Pool{New: func() any { return &response{benc: benc{b: make([]byte, 0, 512)}} }}

func newResponse(id int64, op int) *response {
	r := responsePool.Get().(*response)
	r.b = r.b[:0]
	r.msg = r.begin(tagSequence)
	r.integer(tagInteger, id)
	r.op = r.begin(appTag(op))
	return r
}

// release returns a response to the pool; its bytes may not be used
// after.
func (r *response) release() {
	if cap(r.b) <= 64<<10 {
		responsePool.Put(r)
	}
}

func (r *response) result(code ResultCode, matched, diag string) {
	r.integer(tagEnumerated, int64(code))
	r.str(tagOctets, matched)
	r.str(tagOctets, diag)
}

// finish closes the operation and adds response controls.
func (r *response) finish(controls ...[]byte) []byte {
	r.end(r.op)
	if len(controls) > 0 {
		s := r.begin(0xa0)
		for _, c := range controls {
			r.b = append(r.b, c...)
		}
		r.end(s)
	}
	r.end(r.msg)
	return r.b
}

// encodeControl encodes one Control.
func encodeControl(oid string, critical bool, value []byte) []byte {
	var e benc
	s := e.begin(tagSequence)
	e.str(tagOctets, oid)
	if critical {
		e.boolean(tagBoolean, true)
	}
	if value != nil {
		e.octets(tagOctets, value)
	}
	e.end(s)
	return e.b
}
