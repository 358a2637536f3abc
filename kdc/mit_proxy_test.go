package kdc_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/smallstep/pkcs7"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
)

// krbProxy sits between MIT kinit and our KDC on TCP and may rewrite
// kinit's PKINIT AS-REQ: the way to make MIT's client send a tampered or a
// replayed request, which it never does by itself.
type krbProxy struct {
	t      *testing.T
	target string
	ln     net.Listener

	mu      sync.Mutex
	rewrite func(req []byte) []byte // for PKINIT AS-REQs; nil forwards as is
	pkinit  [][]byte                // PKINIT AS-REQs seen, as kinit sent them
}

func newKrbProxy(t *testing.T, target string) *krbProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &krbProxy{t: t, target: target, ln: ln}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return p
}

func (p *krbProxy) Addr() string { return p.ln.Addr().String() }

func readFrameFrom(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	l := binary.BigEndian.Uint32(n[:])
	if l > 1<<20 {
		return nil, errors.New("frame too long")
	}
	b := make([]byte, l)
	_, err := io.ReadFull(r, b)
	return b, err
}

func writeFrameTo(w io.Writer, b []byte) error {
	_, err := w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
	if err == nil {
		_, err = w.Write(b)
	}
	return err
}

func (p *krbProxy) serve(c net.Conn) {
	defer c.Close()
	for {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		req, err := readFrameFrom(c)
		if err != nil {
			return
		}
		if isPKINITRequest(req) {
			p.mu.Lock()
			p.pkinit = append(p.pkinit, req)
			if p.rewrite != nil {
				req = p.rewrite(req)
			}
			p.mu.Unlock()
		}
		k, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			return
		}
		k.SetDeadline(time.Now().Add(20 * time.Second))
		var reply []byte
		if err = writeFrameTo(k, req); err == nil {
			reply, err = readFrameFrom(k)
		}
		k.Close()
		if err != nil || writeFrameTo(c, reply) != nil {
			return
		}
	}
}

func (p *krbProxy) setRewrite(f func([]byte) []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rewrite = f
}

func (p *krbProxy) lastPKINIT() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pkinit) == 0 {
		return nil
	}
	return p.pkinit[len(p.pkinit)-1]
}

func isPKINITRequest(req []byte) bool {
	var as messages.ASReq
	if as.Unmarshal(req) != nil {
		return false
	}
	for _, pa := range as.PAData {
		if pa.PADataType == 16 {
			return true
		}
	}
	return false
}

// signatureOf returns the CMS signature in the PA-PK-AS-REQ of an AS-REQ.
func signatureOf(req []byte) ([]byte, error) {
	var as messages.ASReq
	if err := as.Unmarshal(req); err != nil {
		return nil, err
	}
	for _, pa := range as.PAData {
		if pa.PADataType != 16 {
			continue
		}
		// PA-PK-AS-REQ ::= SEQUENCE { signedAuthPack [0] IMPLICIT OCTET STRING, ... }
		s := cryptobyte.String(pa.PADataValue)
		var seq, ci cryptobyte.String
		if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&ci, cbasn1.Tag(0).ContextSpecific()) {
			return nil, errors.New("malformed PA-PK-AS-REQ")
		}
		p7, err := pkcs7.Parse(ci)
		if err != nil {
			return nil, err
		}
		if len(p7.Signers) != 1 {
			return nil, errors.New("not one signer")
		}
		return p7.Signers[0].EncryptedDigest, nil
	}
	return nil, errors.New("no PA-PK-AS-REQ")
}

// pointKrb5Conf makes the MIT client's krb5.conf name another KDC address.
func pointKrb5Conf(t *testing.T, m *mitClient, from, to string) {
	t.Helper()
	var conf string
	for _, e := range m.env {
		if v, ok := strings.CutPrefix(e, "KRB5_CONFIG="); ok {
			conf = v
		}
	}
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(from)) {
		t.Fatalf("%s does not name %s", conf, from)
	}
	if err := os.WriteFile(conf, bytes.ReplaceAll(b, []byte(from), []byte(to)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The refusals of issue 5, from both clients against our KDC:
//
//	refusal            MIT kinit                               our client
//	untrusted CA       TestMITKinitRefusals/untrusted-ca       TestPKINITRefusals/untrusted-ca
//	expired            TestMITKinitExpired                     TestPKINITRefusals/expired
//	revoked            TestMITKinitRefusals/revoked            TestPKINITRefusals/revoked
//	UPN mismatch       TestMITKinitRefusals/upn-mismatch       TestPKINITRefusals/upn-mismatch
//	SID mismatch       TestMITKinitRefusals/sid-mismatch       TestPKINITRefusals/sid-mismatch
//	wrong EKU          TestMITKinitRefusals/wrong-eku          TestPKINITRefusals/wrong-eku
//	tampered signature TestMITKinitTamperedAndReplayed         TestPKINITRefusals/tampered-signature
//	clock skew         TestMITKinitClockSkew/refused           TestPKINITRefusals/clock-skew
//	replayed request   TestMITKinitTamperedAndReplayed         TestReplay
//	disabled account   TestDisabledAccount (both)

// TestMITKinitTamperedAndReplayed makes MIT kinit's own PKINIT requests
// bad on the way: one with a bit of its CMS signature flipped
// (KDC_ERR_INVALID_SIG), and one replaying the signed AuthPack of an
// earlier logon in a request that is not a plain retransmission
// (KRB_AP_ERR_REPEAT). kinit must report each refusal.
func TestMITKinitTamperedAndReplayed(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{KeyAlgorithm: pki.RSA2048})
	m := requireMITClient(t, s)
	s.AddUser("alice")
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.RSA2048)
	id := m.identity(t, "alice", cert, key)
	proxy := newKrbProxy(t, s.Addr)
	pointKrb5Conf(t, m, s.Addr, proxy.Addr())

	// Through the proxy untouched, kinit logs on (and the request is kept).
	if r := m.kinitPKINIT(t, "through-proxy", id, "alice@"+kdctest.Realm); r.err != nil {
		t.Fatalf("kinit through the proxy: %v: %s\n%s", r.err, r.out, r.trace)
	}
	first := proxy.lastPKINIT()
	if first == nil {
		t.Fatal("the proxy saw no PKINIT request")
	}

	t.Run("tampered-signature", func(t *testing.T) {
		proxy.setRewrite(func(req []byte) []byte {
			sig, err := signatureOf(req)
			if err != nil {
				t.Errorf("kinit's request: %v", err)
				return req
			}
			i := bytes.Index(req, sig)
			if i < 0 || bytes.Index(req[i+1:], sig) >= 0 {
				t.Errorf("the signature is not once in the request")
				return req
			}
			out := bytes.Clone(req)
			out[i+len(sig)/2] ^= 0x01
			return out
		})
		defer proxy.setRewrite(nil)
		r := m.kinitPKINIT(t, "tampered", id, "alice@"+kdctest.Realm)
		checkRefusal(t, s, r, kdc.ErrInvalidSig, "Invalid signature")
	})

	t.Run("replayed", func(t *testing.T) {
		// The earlier request's body and signed AuthPack, with a
		// PA-PAC-REQUEST added: not a retransmission (which gets the
		// cached reply), but the same AuthPack again.
		replay, err := kdc.AddPAData(first, 128, []byte{0x30, 0x05, 0xa0, 0x03, 0x01, 0x01, 0xff})
		if err != nil {
			t.Fatal(err)
		}
		proxy.setRewrite(func([]byte) []byte { return replay })
		defer proxy.setRewrite(nil)
		r := m.kinitPKINIT(t, "replayed", id, "alice@"+kdctest.Realm)
		checkRefusal(t, s, r, kdc.ErrRepeat, "Request is a replay")
	})

	// Untouched again, kinit still logs on.
	if r := m.kinitPKINIT(t, "after", id, "alice@"+kdctest.Realm); r.err != nil {
		t.Fatalf("kinit after the refusals: %v: %s", r.err, r.out)
	}
}
