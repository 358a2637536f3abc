package kdc

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/scstation/scstation/internal/atomicfile"
)

// MarshalCCache encodes credentials as an MIT credential cache, file
// format version 4 (0x0504), with a zero KDC time offset header. The
// cache's default principal is the first credential's client: put the
// TGT first.
func MarshalCCache(creds ...*Credential) ([]byte, error) {
	if len(creds) == 0 || creds[0] == nil {
		return nil, errors.New("kdc: no credentials for the cache")
	}
	var b []byte
	u16 := func(v uint16) { b = binary.BigEndian.AppendUint16(b, v) }
	u32 := func(v uint32) { b = binary.BigEndian.AppendUint32(b, v) }
	data := func(d []byte) { u32(uint32(len(d))); b = append(b, d...) }
	principal := func(realm string, p types.PrincipalName) {
		u32(uint32(p.NameType))
		u32(uint32(len(p.NameString)))
		data([]byte(realm))
		for _, c := range p.NameString {
			data([]byte(c))
		}
	}
	ts := func(t time.Time) {
		if t.IsZero() {
			u32(0)
			return
		}
		u32(uint32(t.Unix()))
	}
	u16(0x0504)
	// Header: one tag, 1 (KDC time offset), 8 bytes: seconds and
	// microseconds, both 0 (MIT's "no offset known" is a missing tag, but
	// klist and kinit accept zeros as kinit itself writes them).
	u16(12)
	u16(1)
	u16(8)
	u32(0)
	u32(0)
	principal(creds[0].Realm, creds[0].Client)
	for _, c := range creds {
		if c == nil {
			return nil, errors.New("kdc: nil credential")
		}
		if len(c.TicketDER) == 0 {
			return nil, errors.New("kdc: credential without ticket")
		}
		principal(c.Realm, c.Client)
		srvRealm := c.Ticket.Realm
		if srvRealm == "" {
			srvRealm = c.Realm
		}
		principal(srvRealm, c.Server)
		u16(uint16(c.SessionKey.KeyType))
		data(c.SessionKey.KeyValue)
		ts(c.AuthTime)
		start := c.StartTime
		if start.IsZero() {
			start = c.AuthTime
		}
		ts(start)
		ts(c.EndTime)
		ts(c.RenewTill)
		b = append(b, 0) // is_skey
		var fl [4]byte
		copy(fl[:], c.Flags.Bytes)
		b = append(b, fl[:]...)
		u32(0) // addresses
		u32(0) // authorization data
		data(c.TicketDER)
		data(nil) // second ticket
	}
	return b, nil
}

// WriteCCache writes credentials (the TGT first, then service tickets) to
// path as an MIT credential cache that klist and the GSSAPI libraries
// read, atomically and with mode 0600.
func WriteCCache(path string, creds ...*Credential) error {
	b, err := MarshalCCache(creds...)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}
