package directory

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the FuzzDecodeRequest seed corpus")

// FuzzDecodeRequest feeds arbitrary bytes through the server's request
// path: framing, the BER pre-scan, decoding, and what the handlers do
// first with the result (DN parsing, filter rendering and evaluation).
// Nothing may panic; decodeRequest's own recover is off here so that a
// panic in asn1-ber or in our code is found rather than hidden.
func FuzzDecodeRequest(f *testing.F) {
	decodeRecover = false
	defer func() { decodeRecover = true }()
	target := &Entry{DN: "uid=alice,ou=people,dc=example,dc=test", Attrs: []Attribute{
		{Name: "objectClass", typ: attrByCanonical["objectClass"], Values: [][]byte{[]byte("top"), []byte("user")}},
		{Name: "uid", typ: attrByCanonical["uid"], Values: [][]byte{[]byte("alice")}},
		{Name: "cn", typ: attrByCanonical["cn"], Values: [][]byte{[]byte("Alice Smith")}},
		{Name: "userAccountControl", typ: attrByCanonical["userAccountControl"], Values: [][]byte{[]byte("514")}},
		{Name: "memberOf", typ: attrByCanonical["memberOf"], Values: [][]byte{[]byte("cn=admins,ou=groups,dc=example,dc=test")}},
		{Name: "objectSid", typ: attrByCanonical["objectSid"], Values: [][]byte{sidWithRID([]byte{1, 4, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0}, 1100)}},
	}}
	f.Fuzz(func(t *testing.T, b []byte) {
		pdu, err := readPDU(bufio.NewReader(bytes.NewReader(b)), DefaultMaxPDU)
		if err != nil {
			return
		}
		m, err := decodeRequest(pdu, 16384)
		if err != nil {
			return
		}
		var dns []string
		switch r := m.req.(type) {
		case *searchRequest:
			dns = append(dns, r.base)
			s := r.filter.String()
			env := &evalEnv{lookup: func(string) *Entry { return target }}
			r.filter.eval(target, env)
			if f2, err := ParseFilter(s); err == nil {
				f2.eval(target, env)
			}
			parseSelection(r.attrs)
		case *addRequest:
			dns = append(dns, r.dn)
			for _, a := range r.attrs {
				if d, ok := parseAttrDesc(a.Name); ok {
					for _, v := range a.Values {
						d.typ.validate(v)
						d.typ.normalize(v)
					}
				}
			}
		case *modifyRequest:
			dns = append(dns, r.dn)
		case *modDNRequest:
			dns = append(dns, r.dn, r.newRDN, r.newSuperior)
		case *compareRequest:
			dns = append(dns, r.dn)
		case *deleteRequest:
			dns = append(dns, r.dn)
		case *bindRequest:
			dns = append(dns, r.name)
		case *extendedRequest:
			if r.oid == oidPasswordModify {
				decodePacket(r.value, 16)
			}
		}
		for _, c := range m.controls {
			if c.oid == oidPagedResults {
				decodePagedControl(c.value)
			}
		}
		for _, d := range dns {
			if dn, err := ParseDN(d); err == nil {
				if _, err := ParseDN(dn.String()); err != nil {
					t.Errorf("DN %q prints as %q, which does not parse: %v", d, dn.String(), err)
				}
				_ = dn.Norm()
			}
		}
	})
}

// seedRequests are well-formed requests of every kind, encoded the way
// go-ldap and OpenLDAP encode them.
func seedRequests(t *testing.T) map[string][]byte {
	msg := func(id int64, op *ber.Packet, controls ...*ber.Packet) []byte {
		p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAPMessage")
		p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "id"))
		p.AppendChild(op)
		if len(controls) > 0 {
			cs := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
			for _, c := range controls {
				cs.AppendChild(c)
			}
			p.AppendChild(cs)
		}
		return p.Bytes()
	}
	str := func(s string) *ber.Packet {
		return ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, s, "")
	}
	seq := func(children ...*ber.Packet) *ber.Packet {
		p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		for _, c := range children {
			p.AppendChild(c)
		}
		return p
	}
	app := func(tag ber.Tag, children ...*ber.Packet) *ber.Packet {
		p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, tag, nil, "")
		for _, c := range children {
			p.AppendChild(c)
		}
		return p
	}
	enum := func(v int64) *ber.Packet {
		return ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, v, "")
	}
	integer := func(v int64) *ber.Packet {
		return ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, v, "")
	}
	boolean := func(v bool) *ber.Packet {
		return ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, v, "")
	}
	attr := func(name string, vals ...string) *ber.Packet {
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
		for _, v := range vals {
			set.AppendChild(str(v))
		}
		return seq(str(name), set)
	}
	search := func(base string, scope int64, filter string, attrs []string, controls ...*ber.Packet) []byte {
		fp, err := ldap.CompileFilter(filter)
		if err != nil {
			t.Fatal(err)
		}
		al := seq()
		for _, a := range attrs {
			al.AppendChild(str(a))
		}
		return msg(2, app(3, str(base), enum(scope), enum(0), integer(0), integer(0), boolean(false), fp, al), controls...)
	}
	paging := func(size int64, cookie string) *ber.Packet {
		return seq(str(oidPagedResults), boolean(true), str(string(seq(integer(size), str(cookie)).Bytes())))
	}
	simple := ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "secret-password", "")
	passwd := seq(
		ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "uid=alice,ou=people,dc=example,dc=test", ""),
		ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, "old-password", ""),
		ber.NewString(ber.ClassContext, ber.TypePrimitive, 2, "new-password", ""))
	unbind := ber.Encode(ber.ClassApplication, ber.TypePrimitive, 2, nil, "")
	del := ber.NewString(ber.ClassApplication, ber.TypePrimitive, 10, "uid=alice,ou=people,dc=example,dc=test", "")
	abandon := ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, 16, int64(2), "")
	modify := app(6, str("uid=alice,ou=people,dc=example,dc=test"), seq(
		seq(enum(0), attr("mail", "alice@example.test")),
		seq(enum(1), attr("title")),
		seq(enum(2), attr("displayName", "Alice")),
		seq(enum(3), attr("userAccountControl", "2"))))
	return map[string][]byte{
		"bind-simple":    msg(1, app(0, integer(3), str("uid=alice,ou=people,dc=example,dc=test"), simple)),
		"bind-anonymous": msg(1, app(0, integer(3), str(""), ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "", ""))),
		"bind-sasl": msg(1, app(0, integer(3), str(""), func() *ber.Packet {
			p := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "")
			p.AppendChild(str("EXTERNAL"))
			return p
		}())),
		"bind-sasl-authzid": msg(1, app(0, integer(3), str(""), func() *ber.Packet {
			p := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "")
			p.AppendChild(str("EXTERNAL"))
			p.AppendChild(str("dn:uid=alice,ou=people,dc=example,dc=test"))
			return p
		}())),
		"unbind":          msg(9, unbind),
		"search-root-dse": search("", 0, "(objectClass=*)", []string{"+"}),
		"search-complex": search("dc=example,dc=test", 2,
			`(&(objectClass=user)(|(uid=al*ce)(cn~=alice)(mail=*@example.test))(!(userAccountControl:1.2.840.113556.1.4.803:=2))(createTimestamp>=20240101000000Z)(uid<=z)(memberOf:1.2.840.113556.1.4.1941:=cn=admins,ou=groups,dc=example,dc=test)(:dn:2.5.13.2:=people)(objectSid=\01\05))`,
			[]string{"*", "+", "userCertificate;binary", "1.1"}),
		"search-paged":   search("ou=people,dc=example,dc=test", 1, "(uid=*)", []string{"uid"}, paging(10, "")),
		"search-cookie":  search("ou=people,dc=example,dc=test", 1, "(uid=*)", []string{"uid"}, paging(10, "0123456789abcdef0123456789abcdef")),
		"modify":         msg(3, modify),
		"add":            msg(4, app(8, str("uid=bob,ou=people,dc=example,dc=test"), seq(attr("objectClass", "inetOrgPerson"), attr("cn", "Bob"), attr("userCertificate;binary", "\x30\x03\x02\x01\x00")))),
		"delete":         msg(5, del),
		"modrdn":         msg(6, app(12, str("uid=bob,ou=people,dc=example,dc=test"), str("uid=robert"), boolean(true), ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "ou=groups,dc=example,dc=test", ""))),
		"compare":        msg(7, app(14, str("uid=bob,ou=people,dc=example,dc=test"), seq(str("mail"), str("bob@example.test")))),
		"abandon":        msg(8, abandon),
		"whoami":         msg(10, app(23, ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, oidWhoAmI, ""))),
		"starttls":       msg(11, app(23, ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, oidStartTLS, ""))),
		"passwd-modify":  msg(12, app(23, ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, oidPasswordModify, ""), ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, string(passwd.Bytes()), ""))),
		"malformed-tail": append(msg(13, unbind), 0x30),
	}
}

// TestFuzzSeeds keeps the committed seed corpus in step with the decoder:
// every seed but the malformed one decodes.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeRequest")
	seeds := seedRequests(t)
	if *updateSeeds {
		os.MkdirAll(dir, 0o755)
		for name, b := range seeds {
			if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range seeds {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("seed %s missing (go test -run TestFuzzSeeds -update-seeds): %v", name, err)
		}
		if want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b); string(data) != want {
			t.Errorf("seed %s is stale (go test -run TestFuzzSeeds -update-seeds)", name)
		}
		pdu, err := readPDU(bufio.NewReader(bytes.NewReader(b)), DefaultMaxPDU)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := decodeRequest(pdu, 16384); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestScanBER(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"empty", nil, true},
		{"primitive", []byte{0x04, 0x01, 'a'}, true},
		{"nested", []byte{0x30, 0x03, 0x04, 0x01, 'a'}, true},
		{"overrun", []byte{0x30, 0x05, 0x04, 0x01, 'a'}, false},
		{"indefinite", []byte{0x30, 0x80, 0x00, 0x00}, false},
		{"length bytes", []byte{0x04, 0x85, 1, 0, 0, 0, 0}, false},
		{"truncated header", []byte{0x04}, false},
		{"high tag", []byte{0x1f, 0x81, 0x01, 0x00}, true},
		{"too deep", deepBER(60), false},
		{"deep enough", deepBER(40), true},
	} {
		if err := scanBER(tc.b, 100); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Element count bound.
	many := bytes.Repeat([]byte{0x05, 0x00}, 200)
	if scanBER(many, 100) == nil || scanBER(many, 200) != nil {
		t.Error("element count bound")
	}
}

func TestEncoder(t *testing.T) {
	// Lengths across the short/long boundary decode with asn1-ber.
	for _, n := range []int{0, 1, 127, 128, 255, 256, 65535, 65536, 200000} {
		r := newResponse(5, opSearchEntry)
		r.octets(tagOctets, bytes.Repeat([]byte{'x'}, n))
		s := r.begin(tagSequence)
		r.end(s)
		b := r.finish(encodeControl(oidPagedResults, true, []byte{1, 2}))
		p, err := ber.DecodePacketErr(b)
		if err != nil || len(p.Children) != 3 || p.Children[1].Children[0].Data.Len() != n {
			t.Fatalf("length %d: %v", n, err)
		}
		if len(b) != len(p.Bytes()) {
			t.Errorf("length %d: not minimal (%d vs %d bytes)", n, len(b), len(p.Bytes()))
		}
	}
	for _, v := range []int64{0, 1, 127, 128, 255, 256, -1, -128, -129, 1 << 31, -(1 << 40)} {
		var e benc
		e.integer(tagInteger, v)
		p, err := ber.DecodePacketErr(e.b)
		if err != nil || p.Value.(int64) != v {
			t.Errorf("integer %d: %v %v", v, p.Value, err)
		}
	}
}

func deepBER(n int) []byte {
	b := []byte{0x05, 0x00}
	for i := 0; i < n; i++ {
		b = append([]byte{0x30, byte(len(b))}, b...)
	}
	return b
}
