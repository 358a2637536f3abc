package main

import (
	"strings"
	"testing"
)

func TestParseBatch(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // user:templates;... or "error"
	}{
		{"alice,smartcard-logon\n", "alice:smartcard-logon"},
		{"# queue\nalice,smartcard-logon,smime-signing\nbob, \"smime-signing,smime-encryption\"\n", "alice:smartcard-logon+smime-signing;bob:smime-signing+smime-encryption"},
		{"alice\n", "error"},
		{",smartcard-logon\n", "error"},
		{"alice,\n", "error"},
		{"", "error"},
		{"# only a comment\n", "error"},
		{"alice,\"unterminated\n", "error"},
	} {
		q, err := parseBatch(strings.NewReader(tc.in), "users.csv")
		got := "error"
		if err == nil {
			var parts []string
			for _, e := range q {
				parts = append(parts, e.user+":"+strings.Join(e.templates, "+"))
			}
			got = strings.Join(parts, ";")
		}
		if got != tc.want {
			t.Errorf("parseBatch(%q) = %s (%v), want %s", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseBatch: any file gives entries with a user and templates, or a
// usage error; never a panic.
func FuzzParseBatch(f *testing.F) {
	f.Add([]byte("alice,smartcard-logon\nbob,smime-signing,smime-encryption\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := parseBatch(strings.NewReader(string(data)), "fuzz.csv")
		if err != nil {
			if _, ok := err.(usageError); !ok {
				t.Fatalf("not a usage error: %T %v", err, err)
			}
			return
		}
		for _, e := range q {
			if e.user == "" || len(e.templates) == 0 {
				t.Fatalf("entry without user or templates: %+v", e)
			}
		}
	})
}
