package directory

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Attribute is one attribute of an entry.
type Attribute struct {
	// Name is the attribute's canonical name (or, on input, any of its
	// names or its OID, with an optional ;binary).
	Name   string
	Values [][]byte
	typ    *AttributeType
}

// Entry is a directory entry.
type Entry struct {
	DN    string
	Attrs []Attribute

	id, parent uint64
	rdn        string // the RDN as stored (user form)
}

// ID is the entry's internal identifier (0 for computed entries).
func (e *Entry) ID() uint64 { return e.id }

// Get returns the attribute with the given name (any alias or OID), or nil.
func (e *Entry) Get(name string) *Attribute {
	t := LookupAttribute(strings.SplitN(name, ";", 2)[0])
	if t == nil {
		return nil
	}
	return e.get(t)
}

func (e *Entry) get(t *AttributeType) *Attribute {
	for i := range e.Attrs {
		if e.Attrs[i].typ == t {
			return &e.Attrs[i]
		}
	}
	return nil
}

// Value returns the first value of an attribute as a string, or "".
func (e *Entry) Value(name string) string {
	if a := e.Get(name); a != nil && len(a.Values) > 0 {
		return string(a.Values[0])
	}
	return ""
}

// Strings returns the values of an attribute as strings.
func (e *Entry) Strings(name string) []string {
	a := e.Get(name)
	if a == nil {
		return nil
	}
	out := make([]string, len(a.Values))
	for i, v := range a.Values {
		out[i] = string(v)
	}
	return out
}

func (e *Entry) set(t *AttributeType, values ...[]byte) {
	if a := e.get(t); a != nil {
		if len(values) == 0 {
			e.remove(t)
			return
		}
		a.Values = values
		return
	}
	if len(values) > 0 {
		e.Attrs = append(e.Attrs, Attribute{Name: t.Name(), Values: values, typ: t})
	}
}

func (e *Entry) remove(t *AttributeType) {
	for i := range e.Attrs {
		if e.Attrs[i].typ == t {
			e.Attrs = append(e.Attrs[:i], e.Attrs[i+1:]...)
			return
		}
	}
}

// hasValue reports whether an attribute has a value equal (by its equality
// rule) to v.
func (a *Attribute) hasValue(v []byte) bool {
	nv, ok := a.typ.normalize(v)
	if !ok {
		// No equality rule: compare octets.
		for _, x := range a.Values {
			if bytes.Equal(x, v) {
				return true
			}
		}
		return false
	}
	for _, x := range a.Values {
		if nx, ok := a.typ.normalize(x); ok && bytes.Equal(nx, nv) {
			return true
		}
	}
	return false
}

func (e *Entry) clone() *Entry {
	c := *e
	c.Attrs = make([]Attribute, len(e.Attrs))
	for i, a := range e.Attrs {
		c.Attrs[i] = Attribute{Name: a.Name, typ: a.typ, Values: append([][]byte(nil), a.Values...)}
	}
	return &c
}

// ---- storage encoding ----------------------------------------------------
//
// id2entry values: parent ID (8 bytes, big-endian) | version 1 | RDN |
// attribute count | per attribute: name, value count, values. Strings and
// values are uvarint-length-prefixed. The parent comes first so that scope
// checks can read it without decoding the entry.

const entryVersion = 1

var errCorrupt = errors.New("directory: corrupt entry")

func encodeEntry(e *Entry) []byte {
	n := 16 + len(e.rdn)
	for _, a := range e.Attrs {
		n += len(a.typ.Name()) + 4
		for _, v := range a.Values {
			n += len(v) + 3
		}
	}
	b := make([]byte, 0, n)
	b = binary.BigEndian.AppendUint64(b, e.parent)
	b = append(b, entryVersion)
	b = appendBytes(b, []byte(e.rdn))
	b = binary.AppendUvarint(b, uint64(len(e.Attrs)))
	for _, a := range e.Attrs {
		b = appendBytes(b, []byte(a.typ.Name()))
		b = binary.AppendUvarint(b, uint64(len(a.Values)))
		for _, v := range a.Values {
			b = appendBytes(b, v)
		}
	}
	return b
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decodeEntry decodes a stored entry, copying everything out of buf (which
// belongs to a bbolt transaction).
func decodeEntry(id uint64, buf []byte) (*Entry, error) {
	if len(buf) < 9 || buf[8] != entryVersion {
		return nil, fmt.Errorf("%w %d", errCorrupt, id)
	}
	e := &Entry{id: id, parent: binary.BigEndian.Uint64(buf)}
	// One copy of the whole record; values alias into it.
	data := bytes.Clone(buf[9:])
	r := reader{b: data}
	e.rdn = string(r.bytes())
	n := r.uvarint()
	if r.err || n > uint64(len(data)) {
		return nil, fmt.Errorf("%w %d", errCorrupt, id)
	}
	e.Attrs = make([]Attribute, 0, n)
	// The value slices of all attributes share one array, cut to size
	// (capacity = length, so appending to one never overwrites the next).
	var vals [][]byte
	for i := uint64(0); i < n; i++ {
		name := r.bytes()
		nv := r.uvarint()
		if r.err || nv > uint64(len(data)) {
			return nil, fmt.Errorf("%w %d", errCorrupt, id)
		}
		t := attrByCanonical[string(name)]
		if t == nil {
			return nil, fmt.Errorf("%w %d: unknown attribute %q", errCorrupt, id, name)
		}
		if uint64(cap(vals)-len(vals)) < nv {
			vals = make([][]byte, 0, max(nv, 16))
		}
		start := len(vals)
		vals = vals[:start+int(nv)]
		a := Attribute{Name: t.Name(), typ: t, Values: vals[start : start+int(nv) : start+int(nv)]}
		for j := range a.Values {
			a.Values[j] = r.bytes()
		}
		if r.err {
			return nil, fmt.Errorf("%w %d", errCorrupt, id)
		}
		e.Attrs = append(e.Attrs, a)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w %d: trailing data", errCorrupt, id)
	}
	return e, nil
}

type reader struct {
	b   []byte
	err bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)) {
		r.err = true
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

var attrByCanonical = map[string]*AttributeType{}

func init() {
	for _, a := range attributeTypes {
		attrByCanonical[a.Name()] = a
	}
}
