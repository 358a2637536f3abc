package directory

import (
	"errors"
	"net"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// pipeConn connects a go-ldap client to the server over net.Pipe, whose
// peer address is not loopback: the view of a client on another host.
func pipeConn(t *testing.T, srv *Server) *ldap.Conn {
	t.Helper()
	client, server := net.Pipe()
	c := srv.newConn(server, false)
	if c == nil {
		t.Fatal("connection refused")
	}
	go c.serve()
	lc := ldap.NewConn(client, false)
	lc.Start()
	t.Cleanup(func() { lc.Close() })
	return lc
}

func ldapCode(err error) uint16 {
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 0
}

func TestPlaintextBindPolicy(t *testing.T) {
	s, _ := openTemp(t)
	u, err := s.CreateUser(User{Name: "remote", UPN: "remote@example.test"}, []byte("remote-password"))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := NewServer(Config{Store: s})
	defer srv.Close()
	c := pipeConn(t, srv)
	if err := c.Bind(u.DN, "remote-password"); ldapCode(err) != ldap.LDAPResultConfidentialityRequired {
		t.Errorf("plaintext bind from afar: %v", err)
	}
	// Anonymous reads still work.
	if _, err := c.WhoAmI(nil); err != nil {
		t.Error(err)
	}
	insecure, _ := NewServer(Config{Store: s, AllowInsecureBind: true})
	defer insecure.Close()
	if err := pipeConn(t, insecure).Bind(u.DN, "remote-password"); err != nil {
		t.Errorf("with AllowInsecureBind: %v", err)
	}
}

func encodeSearchRequest(t *testing.T, id int64, filter string) []byte {
	t.Helper()
	fp, err := ldap.CompileFilter(filter)
	if err != nil {
		t.Fatal(err)
	}
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, opSearchRequest, nil, "")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "dc=example,dc=test", ""))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 2, ""))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, ""))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, ""))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, ""))
	op.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, ""))
	op.AppendChild(fp)
	op.AppendChild(ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, ""))
	p.AppendChild(op)
	return p.Bytes()
}

// TestOpsPerConnection: past MaxOpsPerConn, requests are answered busy
// and the connection carries on. Over net.Pipe a response blocks until
// the client reads, so the first search is still in progress when the
// second arrives.
func TestOpsPerConnection(t *testing.T) {
	s, _ := openTemp(t)
	srv, _ := NewServer(Config{Store: s, Limits: Limits{MaxOpsPerConn: 1}})
	defer srv.Close()
	client, server := net.Pipe()
	defer client.Close()
	c := srv.newConn(server, false)
	busy := make(chan struct{})
	c.testHookBusy = func() { close(busy) }
	go c.serve()
	client.Write(encodeSearchRequest(t, 1, "(objectClass=*)"))
	// An abandon for an operation that does not exist is ignored.
	client.Write([]byte{0x30, 0x06, 0x02, 0x01, 0x03, 0x50, 0x01, 0x63})
	client.Write(encodeSearchRequest(t, 2, "(objectClass=*)"))
	// Read nothing until the second search is refused: the first one is
	// in progress until its answer is read.
	select {
	case <-busy:
	case <-time.After(30 * time.Second):
		t.Fatal("the second search was never refused")
	}
	results := map[int64]int64{}
	entries := 0
	for len(results) < 2 {
		p, err := ber.ReadPacket(client)
		if err != nil {
			t.Fatal(err)
		}
		id := p.Children[0].Value.(int64)
		switch p.Children[1].Tag {
		case opSearchEntry:
			entries++
		case opSearchDone:
			results[id] = p.Children[1].Children[0].Value.(int64)
		default:
			t.Fatalf("unexpected %s", ber.DescribePacket(p))
		}
	}
	if results[1] != 0 || results[2] != int64(ResultBusy) || entries != 4 {
		t.Errorf("results %v, %d entries", results, entries)
	}
}
