package ldif

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	bin := []byte{0x30, 0x82, 0x00, 0x0a, 0xff, '\n', 0}
	long := strings.Repeat("0123456789", 30)
	attrs := []Attr{
		{"objectClass", [][]byte{[]byte("top"), []byte("inetOrgPerson")}},
		{"cn", [][]byte{[]byte("Zoë Ünïcode")}},
		{"description", [][]byte{[]byte(" leading space"), []byte("trailing space "), []byte(":colon"), []byte("<angle"), []byte("")}},
		{"userCertificate;binary", [][]byte{bin}},
		{"title", [][]byte{[]byte(long)}},
		{"mail", [][]byte{[]byte("a@b.example")}},
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteEntry("uid=zoë,ou=people,dc=example,dc=test", attrs); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEntry("ou=people,dc=example,dc=test", []Attr{{"ou", [][]byte{[]byte("people")}}}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	out := buf.String()
	for _, l := range strings.Split(out, "\n") {
		if len(l) > 76 {
			t.Errorf("line longer than 76: %q", l)
		}
	}
	for _, want := range []string{"dn:: ", "cn:: ", "mail: a@b.example\n", "description: \n", "\n 9012"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	recs, err := ReadAll(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].DN != "uid=zoë,ou=people,dc=example,dc=test" || recs[1].DN != "ou=people,dc=example,dc=test" {
		t.Fatalf("records %+v", recs)
	}
	for _, a := range attrs {
		got := recs[0].Values(a.Name)
		if len(got) != len(a.Values) {
			t.Errorf("%s: %d values", a.Name, len(got))
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i], a.Values[i]) {
				t.Errorf("%s[%d] = %q, want %q", a.Name, i, got[i], a.Values[i])
			}
		}
	}
}

func TestReadForms(t *testing.T) {
	in := "# a comment\n#  continued comment\n version: 1\r\n" + // folded comment (continuation skipped)
		"version: 1\r\n" +
		"dn: cn=a,dc=ex\r\n" +
		"objectClass: top\r\n" +
		"cn: a\r\n" +
		"description: folded \r\n" +
		" over two lines\r\n" +
		"# comment inside\r\n" +
		"mail:a@ex\r\n" +
		"\r\n\r\n" +
		"dn: cn=b,dc=ex\n" +
		"changetype: modify\n" +
		"add: mail\n" +
		"mail: b@ex\n" +
		"mail: b2@ex\n" +
		"-\n" +
		"delete: description\n" +
		"-\n" +
		"replace: cn\n" +
		"cn:: Yg==\n" +
		"-\n" +
		"\n" +
		"dn: cn=c,dc=ex\n" +
		"control: 1.2.840.113556.1.4.805 false\n" +
		"changetype: delete\n" +
		"\n" +
		"dn: cn=d,dc=ex\n" +
		"changetype: modrdn\n" +
		"newrdn: cn=e\n" +
		"deleteoldrdn: 1\n" +
		"newsuperior: ou=x,dc=ex\n" +
		"\n" +
		"dn: cn=f,dc=ex\n" +
		"changetype: add\n" +
		"cn: f"
	recs, err := ReadAll(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Fatalf("%d records", len(recs))
	}
	a := recs[0]
	if a.ChangeType != "" || string(a.Values("description")[0]) != "folded over two lines" || string(a.Values("mail")[0]) != "a@ex" || a.Line != 5 {
		t.Errorf("record a: %+v", a)
	}
	b := recs[1]
	if b.ChangeType != "modify" || len(b.Mods) != 3 || b.Mods[0].Op != "add" || len(b.Mods[0].Values) != 2 || b.Mods[1].Op != "delete" || len(b.Mods[1].Values) != 0 || string(b.Mods[2].Values[0]) != "b" {
		t.Errorf("record b: %+v", b)
	}
	if recs[2].ChangeType != "delete" || recs[2].DN != "cn=c,dc=ex" {
		t.Errorf("record c: %+v", recs[2])
	}
	if d := recs[3]; d.ChangeType != "modrdn" || d.NewRDN != "cn=e" || !d.DeleteOldRDN || d.NewSuperior != "ou=x,dc=ex" {
		t.Errorf("record d: %+v", d)
	}
	if f := recs[4]; f.ChangeType != "add" || string(f.Values("cn")[0]) != "f" {
		t.Errorf("record f: %+v", f)
	}
}

func TestReadRefusals(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"url value", "dn: cn=a\njpegPhoto:< file:///etc/shadow\n", "URL values"},
		{"critical control", "dn: cn=a\ncontrol: 1.2.3 true\nchangetype: delete\n", "critical control"},
		{"bad base64", "dn: cn=a\ncn:: !!!\n", "bad base64"},
		{"no dn", "cn: a\n", "starts with dn"},
		{"leading continuation", " cn: a\n", "continuation"},
		{"not a line", "dn: cn=a\nnonsense\n", "not an attribute line"},
		{"bad changetype", "dn: cn=a\nchangetype: frobnicate\n", "not supported"},
		{"bad modify op", "dn: cn=a\nchangetype: modify\nzap: cn\n-\n", "not a modify operation"},
		{"mixed modify attrs", "dn: cn=a\nchangetype: modify\nadd: cn\nsn: x\n-\n", "in a change of"},
		{"version 2", "version: 2\n\ndn: cn=a\ncn: a\n", "version"},
		{"empty entry", "dn: cn=a\n", "without attributes"},
	} {
		_, err := ReadAll(strings.NewReader(tc.in))
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A huge line is refused without reading it all into memory at once.
	r := NewReader(io.MultiReader(strings.NewReader("dn: cn=a\ndescription: "), strings.NewReader(strings.Repeat("x", MaxRecord+10))))
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("huge line: %v", err)
	}
}

func TestEmpty(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# only a comment\n", "version: 1\n"} {
		recs, err := ReadAll(strings.NewReader(in))
		if err != nil || len(recs) != 0 {
			t.Errorf("%q: %v %v", in, recs, err)
		}
	}
}
