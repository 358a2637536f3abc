package directory

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// Bounds on distinguished names.
const (
	maxDNLen  = 2048
	maxRDNs   = 32
	maxRDNAVA = 8
)

// AVA is one attribute type and value of an RDN.
type AVA struct {
	Type  *AttributeType
	Value string
}

// RDN is a relative distinguished name: one or more AVAs.
type RDN []AVA

// DN is a parsed distinguished name, most specific RDN first. Every
// attribute type in it is known to the schema.
type DN []RDN

// ParseDN parses an RFC 4514 string. Attribute types must be in the schema
// and values must be valid for their type's equality rule.
func ParseDN(s string) (DN, error) {
	if len(s) > maxDNLen {
		return nil, fmt.Errorf("DN longer than %d bytes", maxDNLen)
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("DN %q is not UTF-8", s)
	}
	p, err := parseDNSafe(s)
	if err != nil {
		return nil, fmt.Errorf("invalid DN %q: %v", s, err)
	}
	if len(p.RDNs) > maxRDNs {
		return nil, fmt.Errorf("DN %q has more than %d RDNs", s, maxRDNs)
	}
	dn := make(DN, len(p.RDNs))
	for i, r := range p.RDNs {
		if len(r.Attributes) == 0 || len(r.Attributes) > maxRDNAVA {
			return nil, fmt.Errorf("invalid DN %q", s)
		}
		rdn := make(RDN, len(r.Attributes))
		for j, a := range r.Attributes {
			t := LookupAttribute(strings.TrimSpace(a.Type))
			if t == nil {
				return nil, fmt.Errorf("invalid DN %q: unknown attribute type %q", s, a.Type)
			}
			if t.equality == matchNone || t.virtual {
				return nil, fmt.Errorf("invalid DN %q: %s cannot name an entry", s, t.Name())
			}
			if a.Value == "" {
				return nil, fmt.Errorf("invalid DN %q: empty value", s)
			}
			if _, ok := t.normalize([]byte(a.Value)); !ok {
				return nil, fmt.Errorf("invalid DN %q: bad value for %s", s, t.Name())
			}
			rdn[j] = AVA{Type: t, Value: a.Value}
		}
		dn[i] = rdn
	}
	return dn, nil
}

// parseDNSafe guards against a panic in the parser on hostile input: a
// request must never crash the server.
func parseDNSafe(s string) (dn *ldap.DN, err error) {
	defer func() {
		if r := recover(); r != nil {
			dn, err = nil, fmt.Errorf("unparseable")
		}
	}()
	return ldap.ParseDN(s)
}

// MustParseDN is ParseDN for constants; it panics on error.
func MustParseDN(s string) DN {
	dn, err := ParseDN(s)
	if err != nil {
		panic(err)
	}
	return dn
}

// String is the RFC 4514 form with canonical attribute names.
func (d DN) String() string {
	parts := make([]string, len(d))
	for i, r := range d {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// Norm is the normalized form used to compare DNs: canonical lower-case
// type names, values normalized by their equality rule, multi-valued RDNs
// sorted.
func (d DN) Norm() string {
	parts := make([]string, len(d))
	for i, r := range d {
		parts[i] = r.Norm()
	}
	return strings.Join(parts, ",")
}

// Parent is the DN without its first RDN.
func (d DN) Parent() DN {
	if len(d) == 0 {
		return nil
	}
	return d[1:]
}

// HasSuffix reports whether base is d or one of its ancestors.
func (d DN) HasSuffix(base DN) bool {
	if len(base) > len(d) {
		return false
	}
	off := len(d) - len(base)
	for i := range base {
		if d[off+i].Norm() != base[i].Norm() {
			return false
		}
	}
	return true
}

// Equal compares by distinguishedNameMatch.
func (d DN) Equal(o DN) bool { return len(d) == len(o) && d.HasSuffix(o) }

func (r RDN) String() string {
	parts := make([]string, len(r))
	for i, a := range r {
		parts[i] = a.Type.Name() + "=" + escapeDNValue(a.Value)
	}
	return strings.Join(parts, "+")
}

// Norm is the RDN's normalized form.
func (r RDN) Norm() string {
	parts := make([]string, len(r))
	for i, a := range r {
		v, _ := a.Type.normalize([]byte(a.Value))
		parts[i] = strings.ToLower(a.Type.Name()) + "=" + escapeDNValue(string(v))
	}
	if len(parts) > 1 {
		sort.Strings(parts)
	}
	return strings.Join(parts, "+")
}

// escapeDNValue escapes a value for a DN string (RFC 4514 §2.4).
func escapeDNValue(v string) string {
	var b strings.Builder
	binary := !utf8.ValidString(v)
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case binary && c >= 0x80:
			fmt.Fprintf(&b, "\\%02x", c)
		case c == '"' || c == '+' || c == ',' || c == ';' || c == '<' || c == '>' || c == '\\' || c == '=':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '#' && i == 0, c == ' ' && (i == 0 || i == len(v)-1):
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
