package inventory

import (
	"path/filepath"
	"testing"
)

// BenchmarkUpdate is one durable change to a card record with three
// certificates and some history, as enrollment makes several of.
func BenchmarkUpdate(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "inventory.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	id := CardID(nil, 1)
	c := &Card{ID: id, Owner: "alice", SealedPUK: make([]byte, 60)}
	for _, slot := range []string{"9a", "9c", "9d"} {
		c.Certificates = append(c.Certificates, CertRef{Slot: slot, Serial: "5f2e9a0b1c2d3e4f", Template: "smartcard-logon"})
	}
	if err := s.Create(c); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Update(id, func(c *Card) error { c.Reader = "Virtual PCD 00 00"; return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
