package directory

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// FilterOp is the kind of a filter node (RFC 4511 §4.5.1.7).
type FilterOp uint8

// Filter kinds, numbered as their context tags.
const (
	FilterAnd FilterOp = iota
	FilterOr
	FilterNot
	FilterEqual
	FilterSubstrings
	FilterGreaterOrEqual
	FilterLessOrEqual
	FilterPresent
	FilterApprox
	FilterExtensible
)

// Filter is a search filter, decoded from BER or built with the helpers
// below. Values are raw octets; nothing is ever parsed out of a string that
// mixes user data with filter syntax.
type Filter struct {
	Op      FilterOp
	Sub     []*Filter // And, Or; Not has exactly one
	Attr    string    // attribute description as given
	Value   []byte    // Equal, GreaterOrEqual, LessOrEqual, Approx, Extensible
	Initial []byte    // Substrings
	Any     [][]byte
	Final   []byte
	Rule    string // Extensible: matching rule (name or OID), may be empty
	DNAttrs bool   // Extensible: match the entry's DN too

	desc  attrDesc
	known bool // Attr names a schema attribute without unknown options
}

// Limits on filters; a request beyond them is refused.
const (
	maxFilterDepth = 32
	maxFilterNodes = 1024
)

// Filter builders, for code that searches on behalf of users: the value is
// an octet string in the BER, never filter syntax.

// Eq is (attr=value).
func Eq(attr, value string) *Filter {
	return resolve(&Filter{Op: FilterEqual, Attr: attr, Value: []byte(value)})
}

// EqBytes is (attr=value) with a binary value.
func EqBytes(attr string, value []byte) *Filter {
	return resolve(&Filter{Op: FilterEqual, Attr: attr, Value: value})
}

// Prefix is (attr=value*).
func Prefix(attr, value string) *Filter {
	return resolve(&Filter{Op: FilterSubstrings, Attr: attr, Initial: []byte(value)})
}

// Present is (attr=*).
func Present(attr string) *Filter { return resolve(&Filter{Op: FilterPresent, Attr: attr}) }

// And is (&f...).
func And(f ...*Filter) *Filter { return &Filter{Op: FilterAnd, Sub: f} }

// Or is (|f...).
func Or(f ...*Filter) *Filter { return &Filter{Op: FilterOr, Sub: f} }

// Not is (!f).
func Not(f *Filter) *Filter { return &Filter{Op: FilterNot, Sub: []*Filter{f}} }

func resolve(f *Filter) *Filter {
	f.desc, f.known = parseAttrDesc(f.Attr)
	if f.desc.unknownOpt {
		f.known = false
	}
	return f
}

// ParseFilter parses the RFC 4515 string form (for tools and tests; code
// that handles user input builds filters with Eq, Prefix, And, Or).
func ParseFilter(s string) (f *Filter, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("directory: bad filter %q", s)
		}
	}()
	if len(s) > 64<<10 {
		return nil, errors.New("directory: filter too long")
	}
	p, err := ldap.CompileFilter(s)
	if err != nil {
		return nil, fmt.Errorf("directory: bad filter %q: %v", s, err)
	}
	// Round-trip through the encoding, as a server would see it.
	fp, err := decodePacket(p.Bytes(), maxFilterNodes*4)
	if err != nil {
		return nil, fmt.Errorf("directory: bad filter %q: %v", s, err)
	}
	return decodeFilter(fp)
}

// decodeFilter checks and converts a BER filter.
func decodeFilter(p *packet) (*Filter, error) {
	nodes := 0
	return decodeFilterDepth(p, 0, &nodes)
}

var errBadFilter = errors.New("malformed filter")

func decodeFilterDepth(p *packet, depth int, nodes *int) (*Filter, error) {
	*nodes++
	if depth > maxFilterDepth || *nodes > maxFilterNodes {
		return nil, fmt.Errorf("filter nested deeper than %d or longer than %d terms", maxFilterDepth, maxFilterNodes)
	}
	if p.ClassType != ber.ClassContext || p.Tag > 9 {
		return nil, errBadFilter
	}
	f := &Filter{Op: FilterOp(p.Tag)}
	switch f.Op {
	case FilterAnd, FilterOr, FilterNot:
		if p.TagType != ber.TypeConstructed {
			return nil, errBadFilter
		}
		if f.Op == FilterNot && len(p.Children) != 1 {
			return nil, errBadFilter
		}
		for _, c := range p.Children {
			s, err := decodeFilterDepth(c, depth+1, nodes)
			if err != nil {
				return nil, err
			}
			f.Sub = append(f.Sub, s)
		}
		return f, nil
	case FilterEqual, FilterGreaterOrEqual, FilterLessOrEqual, FilterApprox:
		if p.TagType != ber.TypeConstructed || len(p.Children) != 2 || !isOctetString(p.Children[0]) || !isOctetString(p.Children[1]) {
			return nil, errBadFilter
		}
		f.Attr, f.Value = string(content(p.Children[0])), content(p.Children[1])
	case FilterPresent:
		if p.TagType != ber.TypePrimitive {
			return nil, errBadFilter
		}
		f.Attr = string(content(p))
	case FilterSubstrings:
		if p.TagType != ber.TypeConstructed || len(p.Children) != 2 || !isOctetString(p.Children[0]) {
			return nil, errBadFilter
		}
		f.Attr = string(content(p.Children[0]))
		subs := p.Children[1]
		if subs.ClassType != ber.ClassUniversal || subs.TagType != ber.TypeConstructed || subs.Tag != ber.TagSequence || len(subs.Children) == 0 {
			return nil, errBadFilter
		}
		for i, c := range subs.Children {
			if c.ClassType != ber.ClassContext || c.TagType != ber.TypePrimitive {
				return nil, errBadFilter
			}
			v := content(c)
			switch c.Tag {
			case 0:
				if i != 0 {
					return nil, errBadFilter
				}
				f.Initial = v
			case 1:
				f.Any = append(f.Any, v)
			case 2:
				if i != len(subs.Children)-1 {
					return nil, errBadFilter
				}
				f.Final = v
			default:
				return nil, errBadFilter
			}
		}
	case FilterExtensible:
		if p.TagType != ber.TypeConstructed {
			return nil, errBadFilter
		}
		last, haveValue := uint64(0), false
		for _, c := range p.Children {
			if c.ClassType != ber.ClassContext || c.TagType != ber.TypePrimitive || uint64(c.Tag) <= last || c.Tag > 4 || c.Tag < 1 {
				return nil, errBadFilter
			}
			last = uint64(c.Tag)
			switch c.Tag {
			case 1:
				f.Rule = string(content(c))
			case 2:
				f.Attr = string(content(c))
			case 3:
				f.Value, haveValue = content(c), true
			case 4:
				b := content(c)
				if len(b) != 1 {
					return nil, errBadFilter
				}
				f.DNAttrs = b[0] != 0
			}
		}
		if !haveValue || f.Rule == "" && f.Attr == "" {
			return nil, errBadFilter
		}
		if f.Attr == "" {
			f.known = true
			return f, nil
		}
	}
	return resolve(f), nil
}

func isOctetString(p *packet) bool {
	return p.ClassType == ber.ClassUniversal && p.TagType == ber.TypePrimitive && p.Tag == ber.TagOctetString
}

// content is a primitive element's octets.
func content(p *packet) []byte { return p.data }

// String renders the filter in RFC 4515 form.
func (f *Filter) String() string {
	var b strings.Builder
	f.write(&b)
	return b.String()
}

func (f *Filter) write(b *strings.Builder) {
	b.WriteByte('(')
	switch f.Op {
	case FilterAnd, FilterOr, FilterNot:
		b.WriteByte("&|!"[f.Op])
		for _, s := range f.Sub {
			s.write(b)
		}
	case FilterEqual:
		b.WriteString(f.Attr + "=" + ldap.EscapeFilter(string(f.Value)))
	case FilterGreaterOrEqual:
		b.WriteString(f.Attr + ">=" + ldap.EscapeFilter(string(f.Value)))
	case FilterLessOrEqual:
		b.WriteString(f.Attr + "<=" + ldap.EscapeFilter(string(f.Value)))
	case FilterApprox:
		b.WriteString(f.Attr + "~=" + ldap.EscapeFilter(string(f.Value)))
	case FilterPresent:
		b.WriteString(f.Attr + "=*")
	case FilterSubstrings:
		b.WriteString(f.Attr + "=" + ldap.EscapeFilter(string(f.Initial)) + "*")
		for _, a := range f.Any {
			b.WriteString(ldap.EscapeFilter(string(a)) + "*")
		}
		b.WriteString(ldap.EscapeFilter(string(f.Final)))
	case FilterExtensible:
		b.WriteString(f.Attr)
		if f.DNAttrs {
			b.WriteString(":dn")
		}
		if f.Rule != "" {
			b.WriteString(":" + f.Rule)
		}
		b.WriteString(":=" + ldap.EscapeFilter(string(f.Value)))
	}
	b.WriteByte(')')
}

// ---- evaluation ------------------------------------------------------------

type tri int8

const (
	triFalse tri = iota
	triTrue
	triUndefined
)

// evalEnv supplies what evaluation needs beyond the entry.
type evalEnv struct {
	// canRead says whether the requester may see an attribute; filters
	// on attributes they may not read are Undefined (present: False), so
	// that searches reveal nothing about them.
	canRead func(*AttributeType) bool
	// virtual returns the values of a computed attribute for an entry.
	virtual func(e *Entry, t *AttributeType) [][]byte
	// lookup finds an entry by normalized DN (for inChain); may be nil.
	lookup func(norm string) *Entry
}

func (env *evalEnv) values(e *Entry, t *AttributeType) [][]byte {
	if t.Secret || env.canRead != nil && !env.canRead(t) {
		return nil
	}
	if a := e.get(t); a != nil {
		return a.Values
	}
	if t.virtual && env.virtual != nil {
		return env.virtual(e, t)
	}
	return nil
}

func (env *evalEnv) readable(t *AttributeType) bool {
	return !t.Secret && (env.canRead == nil || env.canRead(t))
}

// Match reports whether the entry matches the filter, for a requester who
// may read every attribute but secrets.
func (f *Filter) Match(e *Entry) bool {
	return f.eval(e, &evalEnv{}) == triTrue
}

func (f *Filter) eval(e *Entry, env *evalEnv) tri {
	switch f.Op {
	case FilterAnd:
		r := triTrue
		for _, s := range f.Sub {
			switch s.eval(e, env) {
			case triFalse:
				return triFalse
			case triUndefined:
				r = triUndefined
			}
		}
		return r
	case FilterOr:
		r := triFalse
		for _, s := range f.Sub {
			switch s.eval(e, env) {
			case triTrue:
				return triTrue
			case triUndefined:
				r = triUndefined
			}
		}
		return r
	case FilterNot:
		switch f.Sub[0].eval(e, env) {
		case triTrue:
			return triFalse
		case triFalse:
			return triTrue
		}
		return triUndefined
	case FilterPresent:
		if !f.known || !env.readable(f.desc.typ) {
			return triFalse
		}
		if len(env.values(e, f.desc.typ)) > 0 {
			return triTrue
		}
		return triFalse
	case FilterExtensible:
		return f.evalExtensible(e, env)
	}
	if !f.known || !env.readable(f.desc.typ) {
		return triUndefined
	}
	t := f.desc.typ
	vals := env.values(e, t)
	switch f.Op {
	case FilterEqual, FilterApprox:
		return matchEqual(t, vals, f.Value)
	case FilterGreaterOrEqual, FilterLessOrEqual:
		if !t.ordering {
			return triUndefined
		}
		a, ok := t.normalize(f.Value)
		if !ok {
			return triUndefined
		}
		for _, v := range vals {
			nv, ok := t.normalize(v)
			if !ok {
				continue
			}
			c := t.compareOrdered(nv, a)
			if f.Op == FilterGreaterOrEqual && c >= 0 || f.Op == FilterLessOrEqual && c <= 0 {
				return triTrue
			}
		}
		return triFalse
	case FilterSubstrings:
		if !t.substr {
			return triUndefined
		}
		return matchSubstrings(t, vals, f.Initial, f.Any, f.Final)
	}
	return triUndefined
}

func matchEqual(t *AttributeType, vals [][]byte, assertion []byte) tri {
	if t.equality == matchNone {
		return triUndefined
	}
	a, ok := t.normalize(assertion)
	if !ok {
		return triUndefined
	}
	for _, v := range vals {
		if nv, ok := t.normalize(v); ok && bytes.Equal(nv, a) {
			return triTrue
		}
	}
	return triFalse
}

func matchSubstrings(t *AttributeType, vals [][]byte, initial []byte, any [][]byte, final []byte) tri {
	ini, ok1 := t.substrNormalize(initial)
	fin, ok2 := t.substrNormalize(final)
	if !ok1 || !ok2 {
		return triUndefined
	}
	anys := make([]string, 0, len(any))
	for _, a := range any {
		s, ok := t.substrNormalize(a)
		if !ok {
			return triUndefined
		}
		if s != "" {
			anys = append(anys, s)
		}
	}
	for _, v := range vals {
		s, ok := t.substrNormalize(v)
		if !ok || !strings.HasPrefix(s, ini) {
			continue
		}
		s = s[len(ini):]
		if !strings.HasSuffix(s, fin) {
			continue
		}
		s = s[:len(s)-len(fin)]
		all := true
		for _, a := range anys {
			i := strings.Index(s, a)
			if i < 0 {
				all = false
				break
			}
			s = s[i+len(a):]
		}
		if all {
			return triTrue
		}
	}
	return triFalse
}

// Extensible matching rules the directory knows.
const (
	ruleBitAnd  = "1.2.840.113556.1.4.803"
	ruleBitOr   = "1.2.840.113556.1.4.804"
	ruleInChain = "1.2.840.113556.1.4.1941"
)

var ruleKinds = map[string]matchKind{
	"2.5.13.0": matchOID, "objectidentifiermatch": matchOID,
	"2.5.13.1": matchDN, "distinguishednamematch": matchDN,
	"2.5.13.2": matchCaseIgnore, "caseignorematch": matchCaseIgnore,
	"2.5.13.5": matchCaseExact, "caseexactmatch": matchCaseExact,
	"2.5.13.13": matchBoolean, "booleanmatch": matchBoolean,
	"2.5.13.14": matchInteger, "integermatch": matchInteger,
	"2.5.13.17": matchOctet, "octetstringmatch": matchOctet,
	"2.5.13.27": matchTime, "generalizedtimematch": matchTime,
	"1.3.6.1.4.1.1466.109.114.1": matchCaseExact, "caseexactia5match": matchCaseExact,
	"1.3.6.1.4.1.1466.109.114.2": matchCaseIgnore, "caseignoreia5match": matchCaseIgnore,
}

func (f *Filter) evalExtensible(e *Entry, env *evalEnv) tri {
	rule := strings.ToLower(f.Rule)
	if f.Attr != "" && !f.known {
		return triUndefined
	}
	var t *AttributeType
	if f.Attr != "" {
		t = f.desc.typ
		if !env.readable(t) {
			return triUndefined
		}
	}
	switch rule {
	case ruleBitAnd, ruleBitOr, "bitwiseand", "bitwiseor":
		if t == nil || t.syntax != synInteger {
			return triUndefined
		}
		a, ok := parseInteger(f.Value)
		if !ok {
			return triUndefined
		}
		for _, v := range env.values(e, t) {
			n, ok := parseInteger(v)
			if !ok {
				continue
			}
			and := new(big.Int).And(n, a)
			if (rule == ruleBitAnd || rule == "bitwiseand") && and.Cmp(a) == 0 || (rule == ruleBitOr || rule == "bitwiseor") && and.Sign() != 0 {
				return triTrue
			}
		}
		return triFalse
	case ruleInChain, "inchain":
		if t == nil || t.syntax != synDN || env.lookup == nil {
			return triUndefined
		}
		target, ok := t.normalize(f.Value)
		if !ok {
			return triUndefined
		}
		return inChain(e, t, string(target), env)
	}
	kind := matchNone
	if rule != "" {
		k, ok := ruleKinds[rule]
		if !ok {
			return triUndefined
		}
		kind = k
	}
	r := triFalse
	try := func(at *AttributeType, vals [][]byte) {
		k := kind
		if k == matchNone {
			k = at.equality
		}
		if k == matchNone || r == triTrue {
			return
		}
		a, ok := normalizeKind(k, at.syntax, f.Value)
		if !ok {
			if r == triFalse {
				r = triUndefined
			}
			return
		}
		for _, v := range vals {
			if nv, ok := normalizeKind(k, at.syntax, v); ok && bytes.Equal(nv, a) {
				r = triTrue
				return
			}
		}
	}
	if t != nil {
		try(t, env.values(e, t))
	} else {
		// No type: every attribute the rule applies to.
		for i := range e.Attrs {
			at := e.Attrs[i].typ
			if env.readable(at) && (kind == at.equality || kind == matchCaseExact && at.equality == matchCaseIgnore) {
				try(at, e.Attrs[i].Values)
			}
		}
	}
	if f.DNAttrs && r != triTrue {
		if dn, err := ParseDN(e.DN); err == nil {
			for _, rdn := range dn {
				for _, ava := range rdn {
					if (t == nil || ava.Type == t) && env.readable(ava.Type) {
						try(ava.Type, [][]byte{[]byte(ava.Value)})
					}
				}
			}
		}
	}
	return r
}

// inChain follows member or memberOf links transitively (AD's
// LDAP_MATCHING_RULE_IN_CHAIN), visiting each entry once.
func inChain(e *Entry, t *AttributeType, target string, env *evalEnv) tri {
	seen := map[string]bool{}
	queue := [][]byte{}
	queue = append(queue, env.values(e, t)...)
	for len(queue) > 0 && len(seen) < 10000 {
		v := queue[0]
		queue = queue[1:]
		n, ok := t.normalize(v)
		if !ok || seen[string(n)] {
			continue
		}
		if string(n) == target {
			return triTrue
		}
		seen[string(n)] = true
		if next := env.lookup(string(n)); next != nil {
			queue = append(queue, env.values(next, t)...)
		}
	}
	return triFalse
}
