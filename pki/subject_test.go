package pki

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"strings"
	"testing"
)

// subjectForReference is how subjectFor was written before the DC
// components were built once: one asn1.Marshal of the whole sequence.
func subjectForReference(domain, cn string) ([]byte, error) {
	var seq pkix.RDNSequence
	labels := strings.Split(domain, ".")
	slices.Reverse(labels)
	for _, label := range labels {
		if label != "" {
			seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: oidDomainComponent, Value: asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(label)}}})
		}
	}
	seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: oidCommonName, Value: cn}})
	return asn1.Marshal(seq)
}

// TestSubjectFor checks the hand-built subject against encoding/asn1 (the
// same bytes, string type included) and its string form against what
// crypto/x509 prints for the parsed name.
func TestSubjectFor(t *testing.T) {
	cns := []string{
		"Alice", "alice", "Alice O'Neil (IT)", "Ünïcödé Üser", "日本語", "a*b", "a&b", "tab\there",
		", leading comma", "trailing space ", " leading space", "#hash", "mid#hash", `back\slash`,
		`quo"te`, "semi;colon", "<angle>", "plus+sign", "x", strings.Repeat("long name ", 20),
	}
	for _, domain := range []string{"example.test", "corp.example.test", "", "single", "a..b"} {
		ca := &CA{cfg: Config{Domain: domain}}
		if err := ca.buildDCs(); err != nil {
			t.Fatal(err)
		}
		for _, cn := range cns {
			got, str, err := ca.subjectFor(cn)
			if err != nil {
				t.Fatalf("%q/%q: %v", domain, cn, err)
			}
			want, err := subjectForReference(domain, cn)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%q/%q: subject\n%x, want\n%x", domain, cn, got, want)
			}
			var seq pkix.RDNSequence
			if rest, err := asn1.Unmarshal(got, &seq); err != nil || len(rest) > 0 {
				t.Fatalf("%q/%q: %v", domain, cn, err)
			}
			var name pkix.Name
			name.FillFromRDNSequence(&seq)
			if str != name.String() {
				t.Errorf("%q/%q: string %q, want %q", domain, cn, str, name.String())
			}
		}
	}
	ca := &CA{cfg: Config{Domain: "example.test"}}
	if err := ca.buildDCs(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.subjectFor("bad \xff utf-8"); err == nil {
		t.Error("a common name that is not UTF-8 was accepted")
	}
}
