package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// --- helpers ---

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tlv builds a DER element from the concatenation of parts.
func tlv(id byte, parts ...[]byte) []byte {
	return appendTLV(nil, id, bytes.Join(parts, nil))
}

func oidDER(oid asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	return b
}

// otherNameDER builds otherName [0] IMPLICIT { oid, [0] EXPLICIT value }.
func otherNameDER(oid asn1.ObjectIdentifier, value []byte) []byte {
	return tlv(idCtx0Constructed, oidDER(oid), tlv(idCtx0Constructed, value))
}

// krb5DER builds a KRB5PrincipalName from its already encoded pieces.
func krb5DER(realm, nameType []byte, comps ...[]byte) []byte {
	return tlv(idSequence,
		tlv(idCtx0Constructed, realm),
		tlv(idCtx1Constructed, tlv(idSequence,
			tlv(idCtx0Constructed, nameType),
			tlv(idCtx1Constructed, tlv(idSequence, comps...)))))
}

func genStr(s string) []byte { return tlv(idGeneralString, []byte(s)) }

func alice() Principal {
	return Principal{Realm: "EXAMPLE.TEST", NameType: NameTypePrincipal, Components: []string{"alice"}}
}

func fullSAN() SubjectAltNames {
	return SubjectAltNames{
		UPN: "alice@example.test",
		Principals: []Principal{
			alice(),
			{Realm: "EXAMPLE.TEST", NameType: NameTypeSrvInst, Components: []string{"krbtgt", "EXAMPLE.TEST"}},
		},
		Emails:   []string{"alice@example.test", "a.l+ice@mail.example.test"},
		DNSNames: []string{"host.example.test", "*.example.test"},
		URIs:     []string{"urn:uuid:2f1a7c4e-0d8b-4c31-9a8e-1f9d3b2a6c55", "https://example.test/users/alice"},
		Other: []OtherName{
			{TypeID: OIDSIDOtherName, Value: tlv(idOctetString, []byte("S-1-5-21-1-2-3-1104"))},
			{TypeID: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: tlv(idSequence, tlv(idInteger, []byte{5}))},
		},
	}
}

// requireOpenSSL returns the path of the openssl binary, skipping the test
// when there is none, except under CI where it must be installed.
func requireOpenSSL(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl is required under CI: %v", err)
		}
		t.Skipf("openssl not installed: %v", err)
	}
	return path
}

func runOpenSSL(t *testing.T, openssl string, args ...string) string {
	t.Helper()
	cmd := exec.Command(openssl, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// --- principals ---

func TestPrincipalStringAndParse(t *testing.T) {
	tests := []struct {
		p    Principal
		text string
	}{
		{alice(), "alice@EXAMPLE.TEST"},
		{Principal{Realm: "EXAMPLE.TEST", NameType: NameTypeSrvInst, Components: []string{"krbtgt", "EXAMPLE.TEST"}}, "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST"},
		{Principal{Realm: "EXAMPLE.TEST", NameType: NameTypeSrvInst, Components: []string{"host", "kdc.example.test"}}, "host/kdc.example.test@EXAMPLE.TEST"},
		// Enterprise-style names hold '@', escaped as MIT does.
		{Principal{Realm: "EXAMPLE.TEST", NameType: 10, Components: []string{"alice@example.test"}}, `alice\@example.test@EXAMPLE.TEST`},
		{Principal{Realm: "EX/AMPLE", NameType: 1, Components: []string{`a/b\c`, "d"}}, `a\/b\\c/d@EX\/AMPLE`},
		{Principal{Realm: "EX@MPLE", NameType: 1, Components: []string{"x"}}, `x@EX\@MPLE`},
		{Principal{Realm: "ÉXAMPLE.TEST", NameType: 1, Components: []string{"zoë", "a b"}}, "zoë/a b@ÉXAMPLE.TEST"},
		{Principal{Realm: "R", NameType: -128, Components: []string{"x"}}, "x@R"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if got := tt.p.String(); got != tt.text {
				t.Errorf("String() = %q, want %q", got, tt.text)
			}
			got, err := ParsePrincipal(tt.text, tt.p.NameType)
			if err != nil {
				t.Fatalf("ParsePrincipal(%q): %v", tt.text, err)
			}
			if !reflect.DeepEqual(got, tt.p) {
				t.Errorf("ParsePrincipal(%q) = %#v, want %#v", tt.text, got, tt.p)
			}
		})
	}
}

func TestParsePrincipalLenient(t *testing.T) {
	// Needless escapes and an unescaped '/' in the realm are read as MIT
	// reads them.
	tests := []struct {
		text string
		want Principal
	}{
		{`\a\lice@EXAMPLE.TEST`, alice()},
		{`x@A/B`, Principal{Realm: "A/B", NameType: 1, Components: []string{"x"}}},
	}
	for _, tt := range tests {
		got, err := ParsePrincipal(tt.text, 1)
		if err != nil {
			t.Errorf("ParsePrincipal(%q): %v", tt.text, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParsePrincipal(%q) = %#v, want %#v", tt.text, got, tt.want)
		}
	}
}

func TestParsePrincipalErrors(t *testing.T) {
	tests := []string{
		"",
		"alice",               // no realm
		"alice@",              // empty realm
		"@EXAMPLE.TEST",       // no component
		"a//b@EXAMPLE.TEST",   // empty component
		"a/@EXAMPLE.TEST",     // empty component
		"/a@EXAMPLE.TEST",     // empty component
		"a@B@C",               // second '@'
		`alice@EXAMPLE.TEST\`, // trailing backslash
		`al\nice@EXAMPLE.TEST`,
		`al\0ice@EXAMPLE.TEST`,
		"al\x01ice@EXAMPLE.TEST",
		"alice@EXAMPLE\x7f",
		"al\xffice@EXAMPLE.TEST", // not UTF-8
		strings.Repeat("a", maxNameLen+1) + "@R",
		"a@" + strings.Repeat("R", maxNameLen+1),
		strings.Repeat("a/", maxComponents) + "a@R",
		strings.Repeat("a", maxPrincipalText+1),
	}
	for _, text := range tests {
		if p, err := ParsePrincipal(text, 1); err == nil {
			t.Errorf("ParsePrincipal(%.40q) = %#v, want an error", text, p)
		}
	}
	// 16 components is the limit, and fine.
	if _, err := ParsePrincipal(strings.Repeat("a/", maxComponents-1)+"a@R", 1); err != nil {
		t.Errorf("16 components: %v", err)
	}
}

// --- SIDs ---

func TestSID(t *testing.T) {
	tests := []struct {
		text string
		sid  SID
		bin  string
	}{
		{"S-1-5-32-544", SID{1, 5, []uint32{32, 544}},
			"01 02 000000000005 20000000 20020000"},
		{"S-1-5-21-1004336348-1177238915-682003330-512", SID{1, 5, []uint32{21, 1004336348, 1177238915, 682003330, 512}},
			"01 05 000000000005 15000000 dcf4dc3b 833d2b46 828ba628 00020000"},
		{"S-1-1-0", SID{1, 1, []uint32{0}}, "01 01 000000000001 00000000"},
		{"S-1-5-18", SID{1, 5, []uint32{18}}, "01 01 000000000005 12000000"},
		{"S-1-5", SID{Revision: 1, Authority: 5}, "01 00 000000000005"},
		{"S-1-4294967295-4294967295", SID{1, 1<<32 - 1, []uint32{1<<32 - 1}}, "01 01 0000ffffffff ffffffff"},
		{"S-1-0x0001000000FF-7", SID{1, 1<<32 | 0xff, []uint32{7}}, "01 01 0001000000ff 07000000"},
		{"S-1-0xFFFFFFFFFFFF", SID{Revision: 1, Authority: 1<<48 - 1}, "01 00 ffffffffffff"},
		{"S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15", SID{1, 5, []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
			"01 0f 000000000005 01000000 02000000 03000000 04000000 05000000 06000000 07000000 08000000" +
				"09000000 0a000000 0b000000 0c000000 0d000000 0e000000 0f000000"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := ParseSID(tt.text)
			if err != nil {
				t.Fatalf("ParseSID: %v", err)
			}
			if !reflect.DeepEqual(got, tt.sid) {
				t.Fatalf("ParseSID = %#v, want %#v", got, tt.sid)
			}
			if s := got.String(); s != tt.text {
				t.Errorf("String() = %q, want %q", s, tt.text)
			}
			bin := mustHex(t, tt.bin)
			if b := got.Binary(); !bytes.Equal(b, bin) {
				t.Errorf("Binary() = %x, want %x", b, bin)
			}
			back, err := ParseSIDBinary(bin)
			if err != nil {
				t.Fatalf("ParseSIDBinary: %v", err)
			}
			if !reflect.DeepEqual(back, tt.sid) {
				t.Errorf("ParseSIDBinary = %#v, want %#v", back, tt.sid)
			}
		})
	}
	// Lower case is accepted and written canonically.
	for text, want := range map[string]string{
		"s-1-5-18":             "S-1-5-18",
		"S-1-0x0001000000ff-7": "S-1-0x0001000000FF-7",
		"S-1-0X0001000000FF":   "S-1-0x0001000000FF",
	} {
		sid, err := ParseSID(text)
		if err != nil {
			t.Errorf("ParseSID(%q): %v", text, err)
		} else if sid.String() != want {
			t.Errorf("ParseSID(%q).String() = %q, want %q", text, sid.String(), want)
		}
	}
}

func TestParseSIDErrors(t *testing.T) {
	tests := []string{
		"", "S", "S-1", "S-1-", "X-1-5-18", "S-2-5-18", "S-01-5-18", "S-1--18",
		"S-1-5-", "S-1-5--1", "S-1-5-18-", "-S-1-5-18", " S-1-5-18", "S-1-5-18 ",
		"S-1-5-+18", "S-1-5--18", "S-1-5-018", "S-1-05-18", "S-1-5-0x12",
		"S-1-5-4294967296", "S-1-4294967296", "S-1-5-99999999999999999999",
		"S-1-0x00000000FFFF",  // hex only above 2^32
		"S-1-0x1000000000000", // 13 hex digits
		"S-1-0x00010000000G",  // not hex
		"S-1-0x-1",            // sign
		"S-1-0x+00000000001",  // sign
		"S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16", // 16 sub-authorities
		"S-1-5-1\x00",
		"S-1-5-١٨", // non-ASCII digits
		"S-1-5-" + strings.Repeat("1", maxSIDText),
	}
	for _, text := range tests {
		if sid, err := ParseSID(text); err == nil {
			t.Errorf("ParseSID(%q) = %v, want an error", text, sid)
		}
	}
}

func TestParseSIDBinaryErrors(t *testing.T) {
	tests := []string{
		"",
		"01",
		"01 00 0000000005",               // short authority
		"02 00 000000000005",             // revision 2
		"01 01 000000000005",             // missing sub-authority
		"01 01 000000000005 120000",      // short sub-authority
		"01 01 000000000005 12000000 00", // trailing byte
		"01 00 000000000005 12000000",    // trailing sub-authority
		"01 10 000000000005" + strings.Repeat("01000000", 16), // 16 sub-authorities
	}
	for _, h := range tests {
		if sid, err := ParseSIDBinary(mustHex(t, h)); err == nil {
			t.Errorf("ParseSIDBinary(%s) = %v, want an error", h, sid)
		}
	}
}

func TestSIDBinaryInvalid(t *testing.T) {
	if b := (SID{Revision: 1, Authority: 1 << 48}).Binary(); b != nil {
		t.Errorf("Binary() of a 49-bit authority = %x, want nil", b)
	}
	if b := (SID{Revision: 1, Authority: 5, SubAuthorities: make([]uint32, 16)}).Binary(); b != nil {
		t.Errorf("Binary() of 16 sub-authorities = %x, want nil", b)
	}
}

// --- subjectAltName ---

func TestSubjectAltNamesRoundTrip(t *testing.T) {
	tests := map[string]SubjectAltNames{
		"UPN":       {UPN: "alice@example.test"},
		"UTF-8 UPN": {UPN: "zoë.ünïcode@例え.test"},
		"principal": {Principals: []Principal{alice()}},
		"principals": {Principals: []Principal{
			alice(),
			{Realm: "EXAMPLE.TEST", NameType: NameTypeSrvInst, Components: []string{"krbtgt", "EXAMPLE.TEST"}},
			{Realm: "OTHER.TEST", NameType: -128, Components: []string{"a", "b", "c"}},
			{Realm: "R", NameType: 1<<31 - 1, Components: []string{"x"}},
			{Realm: "R", NameType: -1 << 31, Components: []string{strings.Repeat("y", maxNameLen)}},
			{Realm: "R", NameType: 0, Components: []string{"0"}},
			{Realm: "R", NameType: 127, Components: []string{"1"}},
			{Realm: "R", NameType: 128, Components: []string{"2"}},
			{Realm: "R", NameType: -129, Components: []string{"3"}},
			{Realm: "R", NameType: 1, Components: strings.Split(strings.Repeat("c/", maxComponents-1)+"c", "/")},
		}},
		"emails":         {Emails: []string{"alice@example.test", "x@y"}},
		"DNS":            {DNSNames: []string{"host.example.test", "*.example.test", "localhost"}},
		"URIs":           {URIs: []string{"urn:x:y", "https://example.test/a?b=c#d", "ldap://dc.example.test/CN=alice,DC=example,DC=test"}},
		"other":          {Other: []OtherName{{TypeID: asn1.ObjectIdentifier{2, 999, 1<<31 - 1}, Value: tlv(idUTF8String, []byte("v"))}}},
		"other high tag": {Other: []OtherName{{TypeID: asn1.ObjectIdentifier{1, 2}, Value: mustHex(t, "bf8100 00")}}},
		"everything":     fullSAN(),
		"long values": {
			UPN:        strings.Repeat("u", maxNameLen-2) + "@x",
			Emails:     []string{strings.Repeat("e", maxNameLen-2) + "@x"},
			Principals: []Principal{{Realm: strings.Repeat("R", maxNameLen), NameType: 1, Components: []string{strings.Repeat("c", maxNameLen)}}},
			Other:      []OtherName{{TypeID: asn1.ObjectIdentifier{1, 2, 3}, Value: tlv(idOctetString, make([]byte, maxOtherValue-4))}},
		},
		"64 names": {DNSNames: strings.Split(strings.Repeat("a.test,", maxSANNames-1)+"a.test", ",")},
	}
	for name, san := range tests {
		t.Run(name, func(t *testing.T) {
			ext, err := san.Extension()
			if err != nil {
				t.Fatalf("Extension: %v", err)
			}
			if !ext.Id.Equal(OIDExtensionSubjectAltName) || ext.Critical {
				t.Errorf("extension %v critical=%v, want %v non-critical", ext.Id, ext.Critical, OIDExtensionSubjectAltName)
			}
			got, err := ParseSubjectAltNames(ext.Value)
			if err != nil {
				t.Fatalf("ParseSubjectAltNames: %v", err)
			}
			if !reflect.DeepEqual(got, san) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, san)
			}
			// Go's own DER reader sees one well-formed SEQUENCE.
			var raw asn1.RawValue
			if rest, err := asn1.Unmarshal(ext.Value, &raw); err != nil || len(rest) > 0 || raw.Tag != asn1.TagSequence {
				t.Errorf("encoding/asn1 reads %v, rest %d, tag %d", err, len(rest), raw.Tag)
			}
		})
	}
}

func TestExtensionDoesNotAlias(t *testing.T) {
	ext, err := SubjectAltNames{UPN: "a@b"}.Extension()
	if err != nil {
		t.Fatal(err)
	}
	ext.Id[0] = 9
	if OIDExtensionSubjectAltName[0] != 2 {
		t.Fatal("Extension's Id aliases OIDExtensionSubjectAltName")
	}
	value := tlv(idUTF8String, []byte("v"))
	ext, err = SubjectAltNames{Other: []OtherName{{TypeID: asn1.ObjectIdentifier{1, 2}, Value: value}}}.Extension()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSubjectAltNames(ext.Value)
	if err != nil {
		t.Fatal(err)
	}
	ext.Value[len(ext.Value)-1] = 'X'
	if !bytes.Equal(got.Other[0].Value, value) {
		t.Fatal("parsed Other value aliases the input")
	}
}

func TestSubjectAltNamesEncoding(t *testing.T) {
	// Worked out by hand from RFC 5280 and the Microsoft UPN definition.
	tests := []struct {
		name string
		san  SubjectAltNames
		want string
	}{
		{"UPN", SubjectAltNames{UPN: "a@b"},
			"3015 a013 060a2b060104018237140203 a005 0c03614062"},
		{"principal", SubjectAltNames{Principals: []Principal{{Realm: "R", NameType: 1, Components: []string{"a"}}}},
			"3023 a021 06062b0601050202 a017 3015 a003 1b0152 a10e 300c a003 020101 a105 3003 1b0161"},
		{"email DNS URI", SubjectAltNames{Emails: []string{"a@b"}, DNSNames: []string{"c"}, URIs: []string{"d:e"}},
			"300d 8103614062 820163 8603643a65"},
	}
	for _, tt := range tests {
		ext, err := tt.san.Extension()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if want := mustHex(t, tt.want); !bytes.Equal(ext.Value, want) {
			t.Errorf("%s: Extension().Value = %x, want %x", tt.name, ext.Value, want)
		}
	}
}

func TestSubjectAltNamesExtensionErrors(t *testing.T) {
	tooMany := make([]string, maxSANNames+1)
	for i := range tooMany {
		tooMany[i] = "a.test"
	}
	p := func(realm string, comps ...string) []Principal {
		return []Principal{{Realm: realm, NameType: 1, Components: comps}}
	}
	tests := map[string]SubjectAltNames{
		"empty":                   {},
		"only empty lists":        {Emails: []string{}, Principals: []Principal{}},
		"email without @":         {Emails: []string{"alice"}},
		"email with empty local":  {Emails: []string{"@example.test"}},
		"email with empty domain": {Emails: []string{"alice@"}},
		"empty email":             {Emails: []string{""}},
		"email with space":        {Emails: []string{"al ice@example.test"}},
		"email not IA5":           {Emails: []string{"zoë@example.test"}},
		"email with control":      {Emails: []string{"a\n@example.test"}},
		"email too long":          {Emails: []string{strings.Repeat("a", maxNameLen) + "@b"}},
		"empty DNS":               {DNSNames: []string{""}},
		"DNS not IA5":             {DNSNames: []string{"hôst.test"}},
		"DNS with @":              {DNSNames: []string{"a@b"}},
		"DNS with empty label":    {DNSNames: []string{"a..b"}},
		"DNS leading dot":         {DNSNames: []string{".a.b"}},
		"empty URI":               {URIs: []string{""}},
		"URI without scheme":      {URIs: []string{"/relative"}},
		"URI bad scheme":          {URIs: []string{"1http://x"}},
		"URI with space":          {URIs: []string{"http://a b"}},
		"UPN without @":           {UPN: "alice"},
		"UPN ending in @":         {UPN: "alice@"},
		"UPN not UTF-8":           {UPN: "al\xffice@example.test"},
		"UPN with control":        {UPN: "al\tice@example.test"},
		"UPN too long":            {UPN: strings.Repeat("a", maxNameLen) + "@b"},
		"empty realm":             {Principals: p("", "alice")},
		"no components":           {Principals: p("EXAMPLE.TEST")},
		"empty component":         {Principals: p("EXAMPLE.TEST", "host", "")},
		"control in component":    {Principals: p("EXAMPLE.TEST", "al\x00ice")},
		"control in realm":        {Principals: p("EXAMPLE.\x1bTEST", "alice")},
		"non-UTF-8 component":     {Principals: p("EXAMPLE.TEST", "\xc3")},
		"component too long":      {Principals: p("EXAMPLE.TEST", strings.Repeat("a", maxNameLen+1))},
		"realm too long":          {Principals: p(strings.Repeat("R", maxNameLen+1), "a")},
		"17 components":           {Principals: p("R", strings.Split(strings.Repeat("c/", maxComponents)+"c", "/")...)},
		"65 names":                {DNSNames: tooMany},
		"65 names mixed":          {UPN: "a@b", DNSNames: tooMany[1:], Emails: []string{"a@b"}},
		"other with UPN type":     {Other: []OtherName{{TypeID: OIDUPN, Value: tlv(idUTF8String, []byte("a@b"))}}},
		"other with PKINIT type":  {Other: []OtherName{{TypeID: OIDPKINITSAN, Value: krb5DER(genStr("R"), tlv(idInteger, []byte{1}), genStr("a"))}}},
		"other with empty value":  {Other: []OtherName{{TypeID: asn1.ObjectIdentifier{1, 2, 3}}}},
		"other with two values":   {Other: []OtherName{{TypeID: asn1.ObjectIdentifier{1, 2, 3}, Value: mustHex(t, "0500 0500")}}},
		"other truncated value":   {Other: []OtherName{{TypeID: asn1.ObjectIdentifier{1, 2, 3}, Value: mustHex(t, "0403 0102")}}},
		"other indefinite value":  {Other: []OtherName{{TypeID: asn1.ObjectIdentifier{1, 2, 3}, Value: mustHex(t, "3080 0000")}}},
		"other value too long":    {Other: []OtherName{{TypeID: asn1.ObjectIdentifier{1, 2, 3}, Value: tlv(idOctetString, make([]byte, maxOtherValue))}}},
		"other with bad OID":      {Other: []OtherName{{TypeID: asn1.ObjectIdentifier{1}, Value: mustHex(t, "0500")}}},
		"other with OID arc >39":  {Other: []OtherName{{TypeID: asn1.ObjectIdentifier{1, 40}, Value: mustHex(t, "0500")}}},
		"other with negative arc": {Other: []OtherName{{TypeID: asn1.ObjectIdentifier{1, 2, -3}, Value: mustHex(t, "0500")}}},
		"other with 2^31 arc":     {Other: []OtherName{{TypeID: asn1.ObjectIdentifier{1, 2, 1 << 31}, Value: mustHex(t, "0500")}}},
		"other with nil OID":      {Other: []OtherName{{Value: mustHex(t, "0500")}}},
		"one bad among good":      {UPN: "a@b", Emails: []string{"a@b", "nope"}},
	}
	for name, san := range tests {
		if ext, err := san.Extension(); err == nil {
			t.Errorf("%s: Extension() = %x, want an error", name, ext.Value)
		}
	}
}

func TestParseSubjectAltNamesRejectsTruncated(t *testing.T) {
	ext, err := fullSAN().Extension()
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(ext.Value); n++ {
		if san, err := ParseSubjectAltNames(ext.Value[:n]); err == nil {
			t.Fatalf("ParseSubjectAltNames of the first %d of %d bytes = %#v, want an error", n, len(ext.Value), san)
		}
	}
	// Every single-bit flip either fails or parses to something that
	// re-encodes to what it was read from.
	for i := range ext.Value {
		for bit := 0; bit < 8; bit++ {
			b := bytes.Clone(ext.Value)
			b[i] ^= 1 << bit
			checkReencodes(t, b)
		}
	}
}

func TestParseSubjectAltNamesRejects(t *testing.T) {
	upn := otherNameDER(OIDUPN, tlv(idUTF8String, []byte("a@b")))
	int1 := tlv(idInteger, []byte{1})
	pk := func(kpn []byte) []byte { return otherNameDER(OIDPKINITSAN, kpn) }
	var many [][]byte
	for i := 0; i <= maxSANNames; i++ {
		many = append(many, tlv(idDNSName, []byte("a.test")))
	}
	tests := map[string][]byte{
		"nil":                  nil,
		"one byte":             {0x30},
		"empty SEQUENCE":       mustHex(t, "3000"),
		"SET":                  mustHex(t, "3105 820361 2e62"),
		"primitive SEQUENCE":   mustHex(t, "1005 820361 2e62"),
		"trailing byte":        mustHex(t, "3005 8203612e62 00"),
		"trailing element":     mustHex(t, "3005 8203612e62 3005 8203612e62"),
		"indefinite length":    mustHex(t, "3080 8203612e62 0000"),
		"non-minimal length":   mustHex(t, "308105 8203612e62"),
		"non-minimal length 2": mustHex(t, "30820005 8203612e62"),
		"leading zero length":  mustHex(t, "30820080"+strings.Repeat("8203612e62", 25)+"820161"),
		"huge length":          mustHex(t, "3085ffffffffff"),
		"4-byte huge length":   mustHex(t, "3084ffffffff 8203612e62"),
		"inner overrun":        mustHex(t, "3005 8204612e62"),
		"inner high tag":       mustHex(t, "3004 9f1f0100"),
		"inner long high tag":  mustHex(t, "3007 9f8f8f8f8f0f00"),
		"non-minimal high tag": mustHex(t, "3004 9f800100"),
		"high tag < 31":        mustHex(t, "3003 9f1e00"),
		"unknown tag [9]":      mustHex(t, "3003 890100"),
		"universal inside":     mustHex(t, "3003 040100"),
		"constructed dNSName":  mustHex(t, "3007 a205 1603612e62"),
		"constructed IP":       mustHex(t, "3006 a704 04020102"),
		"primitive dirName":    mustHex(t, "3003 840100"),
		"email without @":      mustHex(t, "3005 8103616263"),
		"email not IA5":        mustHex(t, "3006 8104ff406162"),
		"empty email":          mustHex(t, "3002 8100"),
		"empty DNS":            mustHex(t, "3002 8200"),
		"DNS with space":       mustHex(t, "3005 8203612062"),
		"URI without scheme":   mustHex(t, "3003 860161"),
		"65 names":             tlv(idSequence, many...),
		"too long":             tlv(idSequence, bytes.Repeat(tlv(idDNSName, bytes.Repeat([]byte("a"), 1000)), 66)),

		"otherName primitive":       tlv(idSequence, mustHex(t, "8003 060100")),
		"otherName empty":           tlv(idSequence, tlv(idCtx0Constructed)),
		"otherName missing value":   tlv(idSequence, tlv(idCtx0Constructed, oidDER(OIDUPN))),
		"otherName type not OID":    tlv(idSequence, tlv(idCtx0Constructed, tlv(idUTF8String, []byte("x")), tlv(idCtx0Constructed, tlv(idUTF8String, []byte("a@b"))))),
		"otherName bad OID":         tlv(idSequence, tlv(idCtx0Constructed, mustHex(t, "0600"), tlv(idCtx0Constructed, mustHex(t, "0500")))),
		"otherName non-minimal OID": tlv(idSequence, tlv(idCtx0Constructed, mustHex(t, "0603 2a8001"), tlv(idCtx0Constructed, mustHex(t, "0500")))),
		"otherName value [1]":       tlv(idSequence, tlv(idCtx0Constructed, oidDER(OIDUPN), tlv(idCtx1Constructed, tlv(idUTF8String, []byte("a@b"))))),
		"otherName value implicit":  tlv(idSequence, tlv(idCtx0Constructed, oidDER(OIDUPN), mustHex(t, "8003614062"))),
		"otherName empty value":     tlv(idSequence, tlv(idCtx0Constructed, oidDER(asn1.ObjectIdentifier{1, 2}), tlv(idCtx0Constructed))),
		"otherName two values":      tlv(idSequence, tlv(idCtx0Constructed, oidDER(asn1.ObjectIdentifier{1, 2}), tlv(idCtx0Constructed, mustHex(t, "0500 0500")))),
		"otherName trailing":        tlv(idSequence, tlv(idCtx0Constructed, oidDER(asn1.ObjectIdentifier{1, 2}), tlv(idCtx0Constructed, mustHex(t, "0500")), mustHex(t, "0500"))),
		"otherName value too long":  tlv(idSequence, otherNameDER(asn1.ObjectIdentifier{1, 2}, tlv(idOctetString, make([]byte, maxOtherValue)))),

		"UPN as IA5String":      tlv(idSequence, otherNameDER(OIDUPN, tlv(0x16, []byte("a@b")))),
		"UPN not UTF-8":         tlv(idSequence, otherNameDER(OIDUPN, tlv(idUTF8String, []byte("\xff@b")))),
		"UPN without @":         tlv(idSequence, otherNameDER(OIDUPN, tlv(idUTF8String, []byte("ab")))),
		"empty UPN":             tlv(idSequence, otherNameDER(OIDUPN, tlv(idUTF8String))),
		"two UPNs":              tlv(idSequence, upn, upn),
		"UPN constructed":       tlv(idSequence, otherNameDER(OIDUPN, tlv(0x2c, tlv(idUTF8String, []byte("a@b"))))),
		"KRB5 not SEQUENCE":     tlv(idSequence, pk(tlv(0x31))),
		"KRB5 empty":            tlv(idSequence, pk(tlv(idSequence))),
		"realm UTF8String":      tlv(idSequence, pk(krb5DER(tlv(idUTF8String, []byte("R")), int1, genStr("a")))),
		"realm IA5String":       tlv(idSequence, pk(krb5DER(tlv(0x16, []byte("R")), int1, genStr("a")))),
		"empty realm":           tlv(idSequence, pk(krb5DER(genStr(""), int1, genStr("a")))),
		"realm trailing":        tlv(idSequence, pk(krb5DER(append(genStr("R"), 5, 0), int1, genStr("a")))),
		"no components":         tlv(idSequence, pk(krb5DER(genStr("R"), int1))),
		"empty component":       tlv(idSequence, pk(krb5DER(genStr("R"), int1, genStr("a"), genStr("")))),
		"UTF8 component":        tlv(idSequence, pk(krb5DER(genStr("R"), int1, tlv(idUTF8String, []byte("a"))))),
		"control component":     tlv(idSequence, pk(krb5DER(genStr("R"), int1, genStr("a\nb")))),
		"long component":        tlv(idSequence, pk(krb5DER(genStr("R"), int1, genStr(strings.Repeat("a", maxNameLen+1))))),
		"17 components":         tlv(idSequence, pk(krb5DER(genStr("R"), int1, bytes.Repeat(genStr("a"), maxComponents+1)))),
		"name-type empty":       tlv(idSequence, pk(krb5DER(genStr("R"), tlv(idInteger), genStr("a")))),
		"name-type 5 bytes":     tlv(idSequence, pk(krb5DER(genStr("R"), tlv(idInteger, []byte{0, 0x80, 0, 0, 0}), genStr("a")))),
		"name-type 00 01":       tlv(idSequence, pk(krb5DER(genStr("R"), tlv(idInteger, []byte{0, 1}), genStr("a")))),
		"name-type ff ff":       tlv(idSequence, pk(krb5DER(genStr("R"), tlv(idInteger, []byte{0xff, 0xff}), genStr("a")))),
		"name-type ENUM":        tlv(idSequence, pk(krb5DER(genStr("R"), tlv(0x0a, []byte{1}), genStr("a")))),
		"name-type twice":       tlv(idSequence, pk(krb5DER(genStr("R"), append(bytes.Clone(int1), int1...), genStr("a")))),
		"KRB5 no principalName": tlv(idSequence, pk(tlv(idSequence, tlv(idCtx0Constructed, genStr("R"))))),
		"KRB5 extra field": tlv(idSequence, pk(tlv(idSequence,
			tlv(idCtx0Constructed, genStr("R")),
			tlv(idCtx1Constructed, tlv(idSequence, tlv(idCtx0Constructed, int1), tlv(idCtx1Constructed, tlv(idSequence, genStr("a"))))),
			tlv(0xa2, int1)))),
		"KRB5 swapped fields": tlv(idSequence, pk(tlv(idSequence,
			tlv(idCtx1Constructed, tlv(idSequence, tlv(idCtx0Constructed, int1), tlv(idCtx1Constructed, tlv(idSequence, genStr("a"))))),
			tlv(idCtx0Constructed, genStr("R"))))),
		"KRB5 implicit realm": tlv(idSequence, pk(tlv(idSequence,
			mustHex(t, "800152"),
			tlv(idCtx1Constructed, tlv(idSequence, tlv(idCtx0Constructed, int1), tlv(idCtx1Constructed, tlv(idSequence, genStr("a")))))))),
		"PrincipalName extra field": tlv(idSequence, pk(tlv(idSequence,
			tlv(idCtx0Constructed, genStr("R")),
			tlv(idCtx1Constructed, tlv(idSequence, tlv(idCtx0Constructed, int1), tlv(idCtx1Constructed, tlv(idSequence, genStr("a"))), tlv(0xa2)))))),
		"name-string not SEQUENCE": tlv(idSequence, pk(tlv(idSequence,
			tlv(idCtx0Constructed, genStr("R")),
			tlv(idCtx1Constructed, tlv(idSequence, tlv(idCtx0Constructed, int1), tlv(idCtx1Constructed, genStr("a"))))))),
		"KRB5 trailing in value": tlv(idSequence, tlv(idCtx0Constructed, oidDER(OIDPKINITSAN),
			tlv(idCtx0Constructed, krb5DER(genStr("R"), int1, genStr("a")), mustHex(t, "0500")))),
	}
	for name, b := range tests {
		if san, err := ParseSubjectAltNames(b); err == nil {
			t.Errorf("%s: ParseSubjectAltNames(%x) = %#v, want an error", name, b, san)
		}
	}
}

func TestParseSubjectAltNamesSkipsOtherKinds(t *testing.T) {
	dirName := tlv(idDirectoryName, tlv(idSequence, tlv(0x31, tlv(idSequence, oidDER(asn1.ObjectIdentifier{2, 5, 4, 3}), tlv(0x0c, []byte("x"))))))
	ip := mustHex(t, "8704 7f000001")
	regID := tlv(idRegisteredID, oidDER(asn1.ObjectIdentifier{1, 2, 3})[2:])
	x400 := tlv(idX400Address, tlv(idSequence))
	edi := tlv(idEDIPartyName, tlv(0xa1, tlv(0x0c, []byte("p"))))
	upn := otherNameDER(OIDUPN, tlv(idUTF8String, []byte("a@b")))

	got, err := ParseSubjectAltNames(tlv(idSequence, dirName, upn, ip, regID, x400, edi))
	if err != nil {
		t.Fatal(err)
	}
	if want := (SubjectAltNames{UPN: "a@b"}); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	got, err = ParseSubjectAltNames(tlv(idSequence, ip))
	if err != nil {
		t.Fatal(err)
	}
	if got.count() != 0 {
		t.Errorf("got %#v, want nothing", got)
	}
	// Go's own parser agrees that this is a well-formed SAN.
	cert := selfSigned(t, pkix.Extension{Id: OIDExtensionSubjectAltName, Value: tlv(idSequence, upn, ip)})
	if len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "127.0.0.1" {
		t.Errorf("Go reads IP addresses %v", cert.IPAddresses)
	}
}

func TestSubjectAltNamesOf(t *testing.T) {
	ext, err := fullSAN().Extension()
	if err != nil {
		t.Fatal(err)
	}
	other := pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{5, 0}}

	san, ok, err := SubjectAltNamesOf(&x509.Certificate{Extensions: []pkix.Extension{other, ext}})
	if err != nil || !ok || !reflect.DeepEqual(san, fullSAN()) {
		t.Errorf("one SAN: %#v, %v, %v", san, ok, err)
	}
	if _, ok, err := SubjectAltNamesOf(&x509.Certificate{Extensions: []pkix.Extension{other}}); ok || err != nil {
		t.Errorf("no SAN: ok %v, err %v", ok, err)
	}
	if _, _, err := SubjectAltNamesOf(&x509.Certificate{Extensions: []pkix.Extension{ext, ext}}); err == nil {
		t.Error("two SANs: no error")
	}
	bad := pkix.Extension{Id: OIDExtensionSubjectAltName, Value: ext.Value[:len(ext.Value)-1]}
	if _, ok, err := SubjectAltNamesOf(&x509.Certificate{Extensions: []pkix.Extension{bad}}); !ok || err == nil {
		t.Errorf("bad SAN: ok %v, err %v", ok, err)
	}
	if _, _, err := SubjectAltNamesOf(nil); err == nil {
		t.Error("nil certificate: no error")
	}
}

// --- SID extension ---

func TestSIDExtension(t *testing.T) {
	ext, err := SIDExtension("S-1-5-32-544")
	if err != nil {
		t.Fatal(err)
	}
	if !ext.Id.Equal(OIDSIDExtension) || ext.Critical {
		t.Errorf("extension %v critical=%v, want %v non-critical", ext.Id, ext.Critical, OIDSIDExtension)
	}
	// Worked out by hand from the structure Microsoft documents.
	want := mustHex(t, "301e a01c 060a2b060104018237190201 a00e 040c 532d312d352d33322d353434")
	if !bytes.Equal(ext.Value, want) {
		t.Errorf("Value = %x, want %x", ext.Value, want)
	}

	for _, sid := range []string{"S-1-5-21-1004336348-1177238915-682003330-1104", "S-1-5-18", "S-1-0x0001000000FF-7"} {
		ext, err := SIDExtension(sid)
		if err != nil {
			t.Fatalf("SIDExtension(%q): %v", sid, err)
		}
		got, ok, err := SIDOf(&x509.Certificate{Extensions: []pkix.Extension{ext}})
		if err != nil || !ok || got != sid {
			t.Errorf("SIDOf(SIDExtension(%q)) = %q, %v, %v", sid, got, ok, err)
		}
	}
	// A lower-case SID is written canonically.
	ext, err = SIDExtension("s-1-5-18")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ext.Value, []byte("S-1-5-18")) {
		t.Errorf("SIDExtension(s-1-5-18) = %x", ext.Value)
	}
	for _, sid := range []string{"", "S-1-5-021", "alice", "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16"} {
		if _, err := SIDExtension(sid); err == nil {
			t.Errorf("SIDExtension(%q): no error", sid)
		}
	}
}

func TestSIDOf(t *testing.T) {
	cert := func(values ...[]byte) *x509.Certificate {
		c := &x509.Certificate{Extensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2}, Value: []byte{5, 0}}}}
		for _, v := range values {
			c.Extensions = append(c.Extensions, pkix.Extension{Id: OIDSIDExtension, Value: v})
		}
		return c
	}
	good := tlv(idSequence, otherNameDER(OIDSIDOtherName, tlv(idOctetString, []byte("S-1-5-18"))))
	if sid, ok, err := SIDOf(cert(good)); sid != "S-1-5-18" || !ok || err != nil {
		t.Errorf("SIDOf = %q, %v, %v", sid, ok, err)
	}
	if sid, ok, err := SIDOf(cert()); sid != "" || ok || err != nil {
		t.Errorf("SIDOf without the extension = %q, %v, %v", sid, ok, err)
	}
	if _, _, err := SIDOf(cert(good, good)); err == nil {
		t.Error("two SID extensions: no error")
	}
	if _, _, err := SIDOf(nil); err == nil {
		t.Error("nil certificate: no error")
	}
	bad := map[string][]byte{
		"empty":             nil,
		"empty SEQUENCE":    tlv(idSequence),
		"trailing":          append(bytes.Clone(good), 0),
		"two names":         tlv(idSequence, otherNameDER(OIDSIDOtherName, tlv(idOctetString, []byte("S-1-5-18"))), otherNameDER(OIDSIDOtherName, tlv(idOctetString, []byte("S-1-5-18")))),
		"wrong type":        tlv(idSequence, otherNameDER(OIDUPN, tlv(idOctetString, []byte("S-1-5-18")))),
		"UTF8String":        tlv(idSequence, otherNameDER(OIDSIDOtherName, tlv(idUTF8String, []byte("S-1-5-18")))),
		"invalid SID":       tlv(idSequence, otherNameDER(OIDSIDOtherName, tlv(idOctetString, []byte("S-1-5-018")))),
		"binary SID":        tlv(idSequence, otherNameDER(OIDSIDOtherName, tlv(idOctetString, mustHex(t, "0101000000000005 12000000")))),
		"value trailing":    tlv(idSequence, tlv(idCtx0Constructed, oidDER(OIDSIDOtherName), tlv(idCtx0Constructed, tlv(idOctetString, []byte("S-1-5-18")), []byte{5, 0}))),
		"not otherName":     tlv(idSequence, tlv(idRFC822Name, []byte("a@b"))),
		"truncated":         good[:len(good)-1],
		"indefinite length": append(append([]byte{0x30, 0x80}, good[2:]...), 0, 0),
	}
	for name, v := range bad {
		if sid, ok, err := SIDOf(cert(v)); err == nil || !ok {
			t.Errorf("%s: SIDOf = %q, %v, %v; want an error", name, sid, ok, err)
		}
	}
}

// --- against real peers ---

// selfSigned issues a self-signed certificate carrying exts with Go's
// x509.CreateCertificate and parses it back with x509.ParseCertificate.
func selfSigned(t *testing.T, exts ...pkix.Extension) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(1),
		Subject:            pkix.Name{CommonName: "alice"},
		NotBefore:          time.Now().Add(-time.Minute),
		NotAfter:           time.Now().Add(time.Hour),
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{OIDSmartCardLogon, OIDPKINITClientAuth},
		ExtraExtensions:    exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("ParseCertificate: %v", err)
	}
	return cert
}

func TestOpenSSLReadsCertificate(t *testing.T) {
	openssl := requireOpenSSL(t)
	const sid = "S-1-5-21-1004336348-1177238915-682003330-1104"
	want := SubjectAltNames{
		UPN:        "alice@example.test",
		Principals: []Principal{alice()},
		Emails:     []string{"alice@example.test"},
		DNSNames:   []string{"host.example.test"},
	}
	sanExt, err := want.Extension()
	if err != nil {
		t.Fatal(err)
	}
	sidExt, err := SIDExtension(sid)
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, sanExt, sidExt)

	// Go ignores the otherNames and still reads the rest.
	if !reflect.DeepEqual(cert.EmailAddresses, want.Emails) || !reflect.DeepEqual(cert.DNSNames, want.DNSNames) {
		t.Errorf("Go reads emails %q and DNS names %q", cert.EmailAddresses, cert.DNSNames)
	}
	n := 0
	for _, e := range cert.Extensions {
		if e.Id.Equal(OIDExtensionSubjectAltName) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("certificate has %d subjectAltName extensions, want 1", n)
	}
	if got, ok, err := SubjectAltNamesOf(cert); err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("SubjectAltNamesOf = %#v, %v, %v", got, ok, err)
	}
	if got, ok, err := SIDOf(cert); err != nil || !ok || got != sid {
		t.Errorf("SIDOf = %q, %v, %v", got, ok, err)
	}

	file := filepath.Join(t.TempDir(), "alice.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	// OpenSSL 3.0 prints the SAN as
	//   othername: UPN::alice@example.test, othername: 1.3.6.1.5.2.2::<unsupported>, email:alice@example.test, DNS:host.example.test
	text := runOpenSSL(t, openssl, "x509", "-in", file, "-noout", "-text")
	t.Logf("openssl x509 -text:\n%s", text)
	for _, s := range []string{
		"X509v3 Subject Alternative Name",
		"othername: UPN::alice@example.test",
		"email:alice@example.test",
		"DNS:host.example.test",
		"1.3.6.1.4.1.311.25.2",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("openssl x509 -text does not show %q", s)
		}
	}
	if !strings.Contains(text, "othername: 1.3.6.1.5.2.2") && !strings.Contains(text, "othername: id-pkinit-san") {
		t.Errorf("openssl x509 -text does not show the id-pkinit-san otherName")
	}

	// asn1parse does not open extension values by itself: find their
	// OCTET STRINGs, then parse into them with -strparse.
	outer := runOpenSSL(t, openssl, "asn1parse", "-in", file, "-i")
	sanAt := octetStringAfter(t, outer, "X509v3 Subject Alternative Name")
	sidAt := octetStringAfter(t, outer, "1.3.6.1.4.1.311.25.2")

	sanDump := runOpenSSL(t, openssl, "asn1parse", "-in", file, "-i", "-dump", "-strparse", sanAt)
	t.Logf("openssl asn1parse -strparse %s -dump:\n%s", sanAt, sanDump)
	for _, s := range []string{":Microsoft User Principal Name", "UTF8STRING        :alice@example.test", ":1.3.6.1.5.2.2", "INTEGER           :01"} {
		if !strings.Contains(sanDump, s) {
			t.Errorf("openssl asn1parse of the SAN does not show %q", s)
		}
	}
	// GeneralStrings are printed without content; -dump shows it on the
	// next line: "      0000 - 45 58 41 4d ... EXAMPLE.TEST".
	var generalStrings []string
	lines := strings.Split(sanDump, "\n")
	for i, line := range lines {
		if strings.Contains(line, "GENERALSTRING") && i+1 < len(lines) {
			generalStrings = append(generalStrings, lines[i+1])
		}
	}
	if len(generalStrings) != 2 ||
		!strings.HasSuffix(strings.TrimSpace(generalStrings[0]), "EXAMPLE.TEST") ||
		!strings.Contains(generalStrings[0], "45 58 41 4d 50 4c 45 2e-54 45 53 54") ||
		!strings.HasSuffix(strings.TrimSpace(generalStrings[1]), "alice") {
		t.Errorf("openssl asn1parse shows GENERALSTRINGs %q, want EXAMPLE.TEST and alice", generalStrings)
	}

	sidDump := runOpenSSL(t, openssl, "asn1parse", "-in", file, "-i", "-strparse", sidAt)
	t.Logf("openssl asn1parse -strparse %s:\n%s", sidAt, sidDump)
	for _, s := range []string{":1.3.6.1.4.1.311.25.2.1", "OCTET STRING      :" + sid} {
		if !strings.Contains(sidDump, s) {
			t.Errorf("openssl asn1parse of the SID extension does not show %q", s)
		}
	}
}

// octetStringAfter returns the offset of the OCTET STRING on the line after
// the OBJECT line naming oid in openssl asn1parse output (the extnValue of
// that extension).
func octetStringAfter(t *testing.T, out, oid string) string {
	t.Helper()
	lines := strings.Split(out, "\n")
	re := regexp.MustCompile(`^\s*(\d+):d=\d+\s+hl=\d+\s+l=\s*\d+\s+prim:\s+OCTET STRING`)
	for i, line := range lines {
		if strings.HasSuffix(strings.TrimSpace(line), ":"+oid) && i+1 < len(lines) {
			if m := re.FindStringSubmatch(lines[i+1]); m != nil {
				return m[1]
			}
		}
	}
	t.Fatalf("no OCTET STRING after %s in openssl asn1parse output:\n%s", oid, out)
	return ""
}

// TestEncodingMatchesOpenSSLGenconf has OpenSSL's ASN1_generate_nconf
// encode the structures from a description of RFC 4556's KRB5PrincipalName
// (and the SAN and SID extension around it) and compares its DER with ours
// byte for byte.
func TestEncodingMatchesOpenSSLGenconf(t *testing.T) {
	openssl := requireOpenSSL(t)
	krb5Conf := func(p Principal) string {
		var b strings.Builder
		fmt.Fprintf(&b, "[kpn]\nrealm = EXPLICIT:0,GENSTR:%s\nprincipalName = EXPLICIT:1,SEQUENCE:pn\n", p.Realm)
		fmt.Fprintf(&b, "[pn]\nname-type = EXPLICIT:0,INTEGER:%d\nname-string = EXPLICIT:1,SEQUENCE:ns\n[ns]\n", p.NameType)
		for i, c := range p.Components {
			fmt.Fprintf(&b, "c%d = GENSTR:%s\n", i, c)
		}
		return b.String()
	}
	genconf := func(t *testing.T, conf string) []byte {
		t.Helper()
		dir := t.TempDir()
		confFile, derFile := filepath.Join(dir, "gen.cnf"), filepath.Join(dir, "gen.der")
		if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		runOpenSSL(t, openssl, "asn1parse", "-genconf", confFile, "-out", derFile, "-noout")
		der, err := os.ReadFile(derFile)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}

	principals := []Principal{
		alice(),
		{Realm: "EXAMPLE.TEST", NameType: NameTypeSrvInst, Components: []string{"krbtgt", "EXAMPLE.TEST"}},
		{Realm: "EXAMPLE.TEST", NameType: NameTypeSrvInst, Components: []string{"host", "kdc.example.test"}},
		{Realm: "R", NameType: -128, Components: []string{"a", "b", "c"}},
		{Realm: "R", NameType: 128, Components: []string{"x"}},
		{Realm: "R", NameType: 1<<31 - 1, Components: []string{"x"}},
		{Realm: "R", NameType: -1 << 31, Components: []string{strings.Repeat("long", 100)}},
	}
	for i, p := range principals {
		t.Run(fmt.Sprintf("KRB5PrincipalName %d", i), func(t *testing.T) {
			want := genconf(t, "asn1 = SEQUENCE:kpn\n"+krb5Conf(p))
			if got := marshalKRB5PrincipalName(p); !bytes.Equal(got, want) {
				t.Errorf("ours    %x\nopenssl %x", got, want)
			}
			got, err := parseKRB5PrincipalName(want)
			if err != nil || !reflect.DeepEqual(got, p) {
				t.Errorf("parsing openssl's DER: %#v, %v", got, err)
			}
		})
	}

	t.Run("SAN", func(t *testing.T) {
		conf := `asn1 = SEQUENCE:san
[san]
upn = IMPLICIT:0,SEQUENCE:upn
pkinit = IMPLICIT:0,SEQUENCE:pkinit
email = IMPLICIT:1,IA5STRING:alice@example.test
dns = IMPLICIT:2,IA5STRING:host.example.test
uri = IMPLICIT:6,IA5STRING:urn:x:y
[upn]
type = OID:1.3.6.1.4.1.311.20.2.3
value = EXPLICIT:0,UTF8String:alice@example.test
[pkinit]
type = OID:1.3.6.1.5.2.2
value = EXPLICIT:0,SEQUENCE:kpn
` + krb5Conf(alice())
		want := genconf(t, conf)
		san := SubjectAltNames{
			UPN:        "alice@example.test",
			Principals: []Principal{alice()},
			Emails:     []string{"alice@example.test"},
			DNSNames:   []string{"host.example.test"},
			URIs:       []string{"urn:x:y"},
		}
		ext, err := san.Extension()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ext.Value, want) {
			t.Errorf("ours    %x\nopenssl %x", ext.Value, want)
		}
	})

	t.Run("SID", func(t *testing.T) {
		const sid = "S-1-5-21-1004336348-1177238915-682003330-1104"
		want := genconf(t, `asn1 = SEQUENCE:names
[names]
sid = IMPLICIT:0,SEQUENCE:sid
[sid]
type = OID:1.3.6.1.4.1.311.25.2.1
value = EXPLICIT:0,OCTETSTRING:`+sid+"\n")
		ext, err := SIDExtension(sid)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ext.Value, want) {
			t.Errorf("ours    %x\nopenssl %x", ext.Value, want)
		}
	})
}

// --- fuzzing ---

// checkReencodes parses b and, if that succeeds, checks that the result
// re-encodes to bytes that parse equal and re-encode identically.
func checkReencodes(t *testing.T, b []byte) {
	t.Helper()
	san, err := ParseSubjectAltNames(b)
	if err != nil {
		return
	}
	ext, err := san.Extension()
	if san.count() == 0 {
		// Only kinds of GeneralName without a field here.
		if err == nil {
			t.Fatalf("Extension of an empty SubjectAltNames parsed from %x succeeded", b)
		}
		return
	}
	if err != nil {
		t.Fatalf("ParseSubjectAltNames(%x) = %#v, which Extension refuses: %v", b, san, err)
	}
	again, err := ParseSubjectAltNames(ext.Value)
	if err != nil {
		t.Fatalf("re-encoding %x of %x does not parse: %v", ext.Value, b, err)
	}
	if !reflect.DeepEqual(again, san) {
		t.Fatalf("re-encoding of %x parses to\n%#v, want\n%#v", b, again, san)
	}
	ext2, err := again.Extension()
	if err != nil || !bytes.Equal(ext2.Value, ext.Value) {
		t.Fatalf("second re-encoding %x differs from %x (%v)", ext2.Value, ext.Value, err)
	}
}

func FuzzParseSubjectAltNames(f *testing.F) {
	for _, san := range []SubjectAltNames{
		fullSAN(),
		{UPN: "alice@example.test", Principals: []Principal{alice()}, Emails: []string{"alice@example.test"}, DNSNames: []string{"host.example.test"}},
	} {
		ext, err := san.Extension()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ext.Value)
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(checkReencodes)
}

// --- examples ---

func ExampleSubjectAltNames_Extension() {
	san := SubjectAltNames{
		UPN: "alice@example.test",
		Principals: []Principal{{
			Realm:      "EXAMPLE.TEST",
			NameType:   NameTypePrincipal,
			Components: []string{"alice"},
		}},
		Emails: []string{"alice@example.test"},
	}
	ext, err := san.Extension() // for x509.Certificate.ExtraExtensions
	if err != nil {
		panic(err)
	}
	fmt.Println(ext.Id, ext.Critical)

	parsed, err := ParseSubjectAltNames(ext.Value)
	if err != nil {
		panic(err)
	}
	fmt.Println(parsed.UPN, parsed.Principals[0], parsed.Emails)

	sidExt, err := SIDExtension("S-1-5-21-1004336348-1177238915-682003330-1104")
	if err != nil {
		panic(err)
	}
	fmt.Println(sidExt.Id)
	// Output:
	// 2.5.29.17 false
	// alice@example.test alice@EXAMPLE.TEST [alice@example.test]
	// 1.3.6.1.4.1.311.25.2
}

func ExampleParsePrincipal() {
	p, err := ParsePrincipal("host/kdc.example.test@EXAMPLE.TEST", NameTypeSrvInst)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q %q %d\n", p.Realm, p.Components, p.NameType)
	fmt.Println(p)
	// Output:
	// "EXAMPLE.TEST" ["host" "kdc.example.test"] 2
	// host/kdc.example.test@EXAMPLE.TEST
}

func ExampleParseSID() {
	sid, err := ParseSID("S-1-5-32-544")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s % x\n", sid, sid.Binary())
	// Output:
	// S-1-5-32-544 01 02 00 00 00 00 00 05 20 00 00 00 20 02 00 00
}
