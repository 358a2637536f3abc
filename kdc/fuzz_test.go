package kdc_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
)

// FuzzHandleRequest feeds arbitrary bytes to the KDC's request handling
// (without its panic recovery): it must never panic, and must always
// answer with a KRB-ERROR, an AS-REP or a TGS-REP. The seed corpus in
// testdata/fuzz/FuzzHandleRequest holds requests MIT kinit and kvno sent
// (written by TestWriteFuzzSeeds), and more are made here with a valid
// TGT of this run's KDC.
func FuzzHandleRequest(f *testing.F) {
	s := kdctest.New(f, kdctest.Options{NoServe: true})
	s.AddUser("alice")
	cert, key := s.Issue(f, "smartcard-logon", "alice", pki.P256)
	c := s.Client(cert, key)
	probe, err := c.NewASRequest("alice", false)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(probe)
	req, err := c.NewPKINITRequest("alice", kdc.PKINITOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(req.Raw)
	tgt, err := c.ReadASReply(req, s.KDC.Handle(context.Background(), req.Raw))
	if err != nil {
		f.Fatal(err)
	}
	tgs, _, err := c.NewTGSRequest(tgt, kdctest.Service)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tgs)
	f.Add([]byte{0x6a, 0x80})
	f.Add([]byte{0x6c, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		reply := s.KDC.Process(b)
		if len(reply) == 0 {
			t.Fatal("no reply")
		}
		var err error
		switch reply[0] {
		case 0x7e:
			var ke messages.KRBError
			err = ke.Unmarshal(reply)
		case 0x6b:
			var r messages.ASRep
			err = r.Unmarshal(reply)
		case 0x6d:
			var r messages.TGSRep
			err = r.Unmarshal(reply)
		default:
			err = fmt.Errorf("reply starts with %#x", reply[0])
		}
		if err != nil {
			t.Fatalf("reply does not decode: %v", err)
		}
	})
}

// TestWriteFuzzSeeds records the requests MIT kinit (PKINIT in both
// modes, password)
// and kvno send, through a recording proxy in front of the KDC, into the
// seed corpus. It runs only with KDC_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("KDC_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set KDC_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzHandleRequest")
	}
	s := kdctest.New(t, kdctest.Options{})
	s.AddUser("alice")
	if _, err := s.Store.AddPrincipal("admin", []byte("Secret-pw-1")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen [][]byte
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				for {
					var n uint32
					if binary.Read(conn, binary.BigEndian, &n) != nil || n > kdc.MaxMessageSize {
						return
					}
					msg := make([]byte, n)
					if _, err := io.ReadFull(conn, msg); err != nil {
						return
					}
					mu.Lock()
					seen = append(seen, msg)
					mu.Unlock()
					reply := s.KDC.Handle(context.Background(), msg)
					binary.Write(conn, binary.BigEndian, uint32(len(reply)))
					conn.Write(reply)
				}
			}()
		}
	}()
	s.Addr = l.Addr().String()
	m := requireMITClient(t, s)
	for _, alg := range []pki.KeyAlgorithm{pki.P256, pki.RSA2048} {
		cert, key := s.Issue(t, "smartcard-logon", "alice", alg)
		name := "mit-" + string(alg)
		if r := m.kinitPKINIT(t, name, m.identity(t, name, cert, key), "alice@"+kdctest.Realm); r.err != nil {
			t.Fatalf("kinit: %v %s", r.err, r.out)
		}
		if r := m.run(t, name, m.kvno, kdctest.Service+"@"+kdctest.Realm); r.err != nil {
			t.Fatalf("kvno: %v %s", r.err, r.out)
		}
	}
	rsaCert, rsaKey := s.Issue(t, "smartcard-logon", "alice", pki.RSA2048)
	if r := m.kinitPKINIT(t, "mit-rsa-mode", m.identity(t, "mit-rsa-mode", rsaCert, rsaKey), "alice@"+kdctest.Realm, "-X", "flag_RSA_PROTOCOL=yes"); r.err != nil {
		t.Fatalf("kinit (public-key mode): %v %s", r.err, r.out)
	}
	if r := m.runStdin(t, "pw", "Secret-pw-1\n", m.kinit, "admin@"+kdctest.Realm); r.err != nil {
		t.Fatalf("kinit admin: %v %s", r.err, r.out)
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHandleRequest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, msg := range seen {
		kind := "as-req"
		if msg[0] == 0x6c {
			kind = "tgs-req"
		}
		name := filepath.Join(dir, fmt.Sprintf("mit-%02d-%s", i, kind))
		if err := os.WriteFile(name, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", msg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d seeds", len(seen))
}

// FuzzOpenKeys feeds OpenKeys arbitrary blobs, and arbitrary plaintexts
// sealed with the store's master key (so that the decoding behind the
// authentication is reached too): no panic, and keys it returns are
// usable.
func FuzzOpenKeys(f *testing.F) {
	s := kdctest.New(f, kdctest.Options{NoServe: true})
	keys, _, err := kdc.RotateKeys(nil)
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.Store.SealKeys("svc", keys)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, []byte(`[{"kvno":1,"etype":18,"key":"AAAA"}]`))
	f.Fuzz(func(t *testing.T, blob, plain []byte) {
		check := func(ks []kdc.Key, err error) {
			if err != nil {
				return
			}
			for _, k := range ks {
				if k.KVNO < 1 || len(k.Value) == 0 {
					t.Fatalf("OpenKeys returned an unusable key %+v", k)
				}
			}
		}
		check(s.Store.OpenKeys("svc", blob))
		sealed, err := s.Store.SealRaw("svc", plain)
		if err != nil {
			t.Fatal(err)
		}
		check(s.Store.OpenKeys("svc", sealed))
	})
}
