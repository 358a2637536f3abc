package audit

import (
	"path/filepath"
	"testing"
)

// BenchmarkAppend is one durable (fsynced) audit record, as every station
// action writes.
func BenchmarkAppend(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for b.Loop() {
		if _, err := l.Append(Record{Actor: "officer:alice", Action: "cert.issue", User: "bob", Cert: "5f2e9a", Outcome: OK, Detail: "template smartcard-logon"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify walks a chain of 10,000 records.
func BenchmarkVerify(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.db.NoSync = true // setting up, not measured
	for range 10000 {
		if _, err := l.Append(Record{Actor: "officer:alice", Action: "cert.issue", User: "bob", Outcome: OK}); err != nil {
			b.Fatal(err)
		}
	}
	l.db.NoSync = false
	for b.Loop() {
		if n, err := l.Verify(); n != 10000 || err != nil {
			b.Fatal(n, err)
		}
	}
}
