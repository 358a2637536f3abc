package kdc_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

// wantCode checks that err is a KRB-ERROR with code.
func wantCode(t *testing.T, err error, code int32) {
	t.Helper()
	var re *kdc.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want KRB-ERROR %s (%d)", err, kdc.ErrorName(code), code)
	}
	if re.Code != code {
		t.Fatalf("got %v, want %s (%d)", re, kdc.ErrorName(code), code)
	}
	t.Logf("refused as expected: %v", re)
}

// logon runs a PKINIT logon and gets a service ticket that the service's
// key opens.
func logon(t *testing.T, s *kdctest.Server, c *kdc.Client, user string, opts kdc.PKINITOptions) *kdc.Credential {
	t.Helper()
	ctx := context.Background()
	tgt, err := c.PKINIT(ctx, user, opts)
	if err != nil {
		t.Fatalf("PKINIT %s: %v", user, err)
	}
	if !slices.Equal(tgt.Server.NameString, []string{"krbtgt", kdctest.Realm}) {
		t.Fatalf("TGT for %v", tgt.Server)
	}
	st, err := c.ServiceTicket(ctx, tgt, kdctest.Service)
	if err != nil {
		t.Fatalf("service ticket: %v", err)
	}
	enc, err := kdc.DecryptTicket(st.Ticket, s.ServiceKeys(t, kdctest.Service))
	if err != nil {
		t.Fatalf("the service cannot open its ticket: %v", err)
	}
	if !keysEqual(enc.Key, st.SessionKey) || enc.CRealm != kdctest.Realm {
		t.Fatalf("service ticket: session key or realm differs from the reply")
	}
	return tgt
}

func TestPKINIT(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{})
	s.AddUser("alice")
	p256, p256Key := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	rsa, rsaKey := s.Issue(t, "smartcard-logon", "alice", pki.RSA2048)
	win, winKey := s.Issue(t, kdctest.WindowsLogon, "alice", pki.P256)
	for _, c := range []struct {
		name string
		c    *kdc.Client
		user string
		opts kdc.PKINITOptions
	}{
		{"p256", s.Client(p256, p256Key), "alice", kdc.PKINITOptions{}},
		{"rsa2048", s.Client(rsa, rsaKey), "alice", kdc.PKINITOptions{}},
		{"octetstring2key", s.Client(p256, p256Key), "alice", kdc.PKINITOptions{NoKDF: true}},
		{"modp16", s.Client(p256, p256Key), "alice", kdc.PKINITOptions{DHBits: 4096}},
		{"aes128", s.Client(p256, p256Key), "alice", kdc.PKINITOptions{ETypes: []int32{17}}},
		{"aes256-sha384", s.Client(p256, p256Key), "alice", kdc.PKINITOptions{ETypes: []int32{20}}},
		{"windows-upn", s.Client(win, winKey), "alice", kdc.PKINITOptions{}},
		{"public-key-mode", s.Client(rsa, rsaKey), "alice", kdc.PKINITOptions{PublicKeyMode: true}},
		{"public-key-mode-aes128", s.Client(rsa, rsaKey), "alice", kdc.PKINITOptions{PublicKeyMode: true, ETypes: []int32{17}}},
		{"enterprise", s.Client(win, winKey), "ALICE@example.test", kdc.PKINITOptions{Enterprise: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tgt := logon(t, s, c.c, c.user, c.opts)
			if !slices.Equal(tgt.Client.NameString, []string{"alice"}) && !c.opts.Enterprise {
				t.Errorf("TGT client %v", tgt.Client)
			}
			if c.opts.Enterprise && !slices.Equal(tgt.Client.NameString, []string{"alice"}) {
				t.Errorf("enterprise logon: TGT client %v, want the canonical name alice", tgt.Client)
			}
			if len(c.opts.ETypes) == 1 && tgt.SessionKey.KeyType != c.opts.ETypes[0] {
				t.Errorf("session key enctype %d", tgt.SessionKey.KeyType)
			}
		})
	}
}

func TestPKINITRefusals(t *testing.T) {
	t.Parallel()
	other := pkitest.New(t, pkitest.Options{}) // trusted by the KDC, but not in its CA database
	// A trusted CA that issued two years ago: its certificates have expired.
	past := pkitest.New(t, pkitest.Options{Now: func() time.Time { return time.Now().AddDate(-2, 0, 0) }})
	s := kdctest.New(t, kdctest.Options{ExtraRoots: []*x509.Certificate{other.CA.Root(), past.CA.Root()}})
	alice := s.AddUser("alice")
	other.Users.Put(&pki.User{Name: "alice", UPN: alice.UPN, SID: alice.SID})
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	otherIssued, otherKey := other.Issue(t, "smartcard-logon", "alice", pki.P256)
	c := s.Client(cert, key)
	ctx := context.Background()

	// The certificate refusals of issue 5, each with its RFC 4556 code
	// (MIT kinit's side is TestMITKinitRefusals and friends).
	foreign := pkitest.New(t, pkitest.Options{}) // not trusted by the KDC
	foreign.Users.Put(&pki.User{Name: "alice", UPN: alice.UPN, SID: alice.SID})
	foreignIssued, foreignKey := foreign.Issue(t, "smartcard-logon", "alice", pki.P256)
	past.Users.Put(&pki.User{Name: "alice", UPN: alice.UPN, SID: alice.SID})
	expiredIssued, expiredKey := past.Issue(t, "smartcard-logon", "alice", pki.P256)
	if time.Now().Before(expiredIssued.Certificate.NotAfter) {
		t.Fatalf("the certificate of two years ago is valid until %v", expiredIssued.Certificate.NotAfter)
	}
	s.AddUser("bob")
	bobCert, bobKey := s.Issue(t, "smartcard-logon", "bob", pki.P256)
	carol := s.AddUser("carol")
	carolCert, carolKey := s.Issue(t, "smartcard-logon", "carol", pki.P256)
	carol.SID = "S-1-5-21-1004336348-1177238915-682003330-9999" // the account was re-created
	s.Users.Put(carol)
	revCert, revKey := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	if _, err := s.CA.CA.Revoke(revCert.SerialNumber, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	ekuCert, ekuKey := s.Issue(t, kdctest.NoLogonEKU, "alice", pki.P256)

	opts := func(f ...func(*kdc.PKINITOptions)) kdc.PKINITOptions {
		var o kdc.PKINITOptions
		for _, g := range f {
			g(&o)
		}
		return o
	}
	for _, tc := range []struct {
		name string
		c    *kdc.Client
		user string
		opts kdc.PKINITOptions
		code int32
	}{
		{"clock-skew", c, "alice", opts(func(o *kdc.PKINITOptions) { kdc.SetTimeOffset(o, -10*time.Minute) }), kdc.ErrSkew},
		{"no-pachecksum", c, "alice", opts(kdc.OmitPAChecksum), kdc.ErrPAChecksumMustBeIncluded},
		{"tampered-signature", c, "alice", opts(kdc.TamperSignature), kdc.ErrInvalidSig},
		{"unknown-client", c, "mallory", kdc.PKINITOptions{}, kdc.ErrCPrincipalUnknown},
		{"public-key-mode-ec-key", c, "alice", kdc.PKINITOptions{PublicKeyMode: true}, kdc.ErrPublicKeyEncryptionNoSupp},
		{"revocation-unknown", s.Client(otherIssued.Certificate, otherKey), "alice", kdc.PKINITOptions{}, kdc.ErrRevocationUnknown},
		{"untrusted-ca", s.Client(foreignIssued.Certificate, foreignKey), "alice", kdc.PKINITOptions{}, kdc.ErrCantVerifyCertificate},
		{"expired", s.Client(expiredIssued.Certificate, expiredKey), "alice", kdc.PKINITOptions{}, kdc.ErrInvalidCertificate},
		{"revoked", s.Client(revCert, revKey), "alice", kdc.PKINITOptions{}, kdc.ErrRevokedCertificate},
		{"upn-mismatch", s.Client(bobCert, bobKey), "alice", kdc.PKINITOptions{}, kdc.ErrClientNameMismatch},
		{"sid-mismatch", s.Client(carolCert, carolKey), "carol", kdc.PKINITOptions{}, kdc.ErrClientNameMismatch},
		{"wrong-eku", s.Client(ekuCert, ekuKey), "alice", kdc.PKINITOptions{}, kdc.ErrInconsistentKeyPurpose},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.PKINIT(ctx, tc.user, tc.opts)
			wantCode(t, err, tc.code)
		})
	}
	t.Run("dh-group-too-small", func(t *testing.T) {
		var o kdc.PKINITOptions
		kdc.UseGroup1024(&o)
		_, err := c.PKINIT(ctx, "alice", o)
		wantCode(t, err, kdc.ErrDHKeyParameters)
		var re *kdc.RemoteError
		errors.As(err, &re)
		bits, err := kdc.ParseTDDHParameters(re.EData)
		if err != nil || !slices.Equal(bits, []int{2048, 4096}) {
			t.Fatalf("TD-DH-PARAMETERS: %v %v, want groups of 2048 and 4096 bits", bits, err)
		}
	})
}

// TestReplay: a retransmission of the same request gets the same reply; a
// different request with the same signed AuthPack, or the same TGS
// authenticator, is a replay.
func TestReplay(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{})
	s.AddUser("alice")
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	c := s.Client(cert, key)
	ctx := context.Background()

	req, err := c.NewPKINITRequest("alice", kdc.PKINITOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Exchange(ctx, req.Raw)
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := c.ReadASReply(req, first)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Exchange(ctx, req.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Fatal("a retransmitted AS-REQ got a different reply")
	}
	udpReply := exchangeUDP(t, s.Addr, req.Raw)
	if !bytes.Equal(first, udpReply) {
		t.Fatal("the same AS-REQ over UDP got a different reply")
	}
	// The same body and AuthPack, with PA-PAC-REQUEST added.
	replayed, err := kdc.AddPAData(req.Raw, 128, []byte{0x30, 0x05, 0xa0, 0x03, 0x01, 0x01, 0xff})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := c.Exchange(ctx, replayed)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ReadASReply(req, reply)
	wantCode(t, err, kdc.ErrRepeat)

	tgsReq, read, err := c.NewTGSRequest(tgt, kdctest.Service)
	if err != nil {
		t.Fatal(err)
	}
	r1, _ := c.Exchange(ctx, tgsReq)
	if _, err := read(r1); err != nil {
		t.Fatal(err)
	}
	r2, _ := c.Exchange(ctx, tgsReq)
	if !bytes.Equal(r1, r2) {
		t.Fatal("a retransmitted TGS-REQ got a different reply")
	}
	tgsReplayed, err := kdc.AddPAData(tgsReq, 167, []byte{0x30, 0x00})
	if err != nil {
		t.Fatal(err)
	}
	r3, _ := c.Exchange(ctx, tgsReplayed)
	_, err = read(r3)
	wantCode(t, err, kdc.ErrRepeat)
}

func TestTGSRefusals(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{})
	s.AddUser("alice")
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	c := s.Client(cert, key)
	ctx := context.Background()
	tgt, err := c.PKINIT(ctx, "alice", kdc.PKINITOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("unknown-service", func(t *testing.T) {
		_, err := c.ServiceTicket(ctx, tgt, "host/nowhere.example.test")
		wantCode(t, err, kdc.ErrSPrincipalUnknown)
	})
	t.Run("body-checksum", func(t *testing.T) {
		req, read, err := c.NewTGSRequest(tgt, kdctest.Service)
		if err != nil {
			t.Fatal(err)
		}
		bad, err := kdc.TamperTGSBody(req)
		if err != nil {
			t.Fatal(err)
		}
		reply, err := c.Exchange(ctx, bad)
		if err != nil {
			t.Fatal(err)
		}
		_, err = read(reply)
		wantCode(t, err, kdc.ErrModified)
	})
	t.Run("forged-tgt", func(t *testing.T) {
		forged := *tgt
		forged.Ticket.EncPart.Cipher = slices.Clone(forged.Ticket.EncPart.Cipher)
		forged.Ticket.EncPart.Cipher[20] ^= 1
		_, err := c.ServiceTicket(ctx, &forged, kdctest.Service)
		wantCode(t, err, kdc.ErrIntegrity)
	})
}

// TestFreshness checks RFC 8070 freshness tokens: a tampered token is
// refused, an old one has expired, and a KDC that requires them refuses a
// request without one.
func TestFreshness(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	s := kdctest.New(t, kdctest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	s.AddUser("alice")
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	c := s.Client(cert, key)
	ctx := context.Background()
	token := freshnessToken(t, c)

	bad := slices.Clone(token)
	bad[len(bad)-1] ^= 1
	_, err := c.PKINIT(ctx, "alice", kdc.PKINITOptions{Freshness: bad})
	wantCode(t, err, kdc.ErrPreauthFailed)

	offset.Store(int64(20 * time.Minute))
	c.Now = func() time.Time { return time.Now().Add(20 * time.Minute) }
	_, err = c.PKINIT(ctx, "alice", kdc.PKINITOptions{Freshness: token})
	wantCode(t, err, kdc.ErrPreauthExpired)

	req := kdctest.New(t, kdctest.Options{RequireFreshness: true})
	req.AddUser("alice")
	rc, rk := req.Issue(t, "smartcard-logon", "alice", pki.P256)
	r, err := req.Client(rc, rk).NewPKINITRequest("alice", kdc.PKINITOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := req.Client(rc, rk).Exchange(ctx, r.Raw)
	if err != nil {
		t.Fatal(err)
	}
	_, err = req.Client(rc, rk).ReadASReply(r, reply)
	wantCode(t, err, kdc.ErrPreauthFailed)
}

// freshnessToken asks the KDC for a token.
func freshnessToken(t *testing.T, c *kdc.Client) []byte {
	t.Helper()
	probe, err := c.NewASRequest("alice", false)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := c.Exchange(context.Background(), probe)
	if err != nil {
		t.Fatal(err)
	}
	var ke messages.KRBError
	if err := ke.Unmarshal(reply); err != nil || ke.ErrorCode != kdc.ErrPreauthRequired {
		t.Fatalf("probe: %v %v", ke.ErrorCode, err)
	}
	md, err := kdc.ParseMethodData(ke.EData)
	if err != nil {
		t.Fatal(err)
	}
	for _, pa := range md {
		if pa.PADataType == 150 && len(pa.PADataValue) > 0 {
			return pa.PADataValue
		}
	}
	t.Fatal("no freshness token in PREAUTH_REQUIRED")
	return nil
}

// TestEncryptedTimestamp logs a password principal on with gokrb5's
// client (encrypted timestamp, ETYPE-INFO2 salt) and gets a service ticket.
func TestEncryptedTimestamp(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{})
	if _, err := s.Store.AddPrincipal("admin", []byte("Secret-pw-1")); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.NewFromString(fmt.Sprintf(`[libdefaults]
 default_realm = %[1]s
 dns_lookup_kdc = false
 udp_preference_limit = 1
 default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
 default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
 permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
[realms]
 %[1]s = {
  kdc = %[2]s
 }
`, kdctest.Realm, s.Addr))
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithPassword("admin", kdctest.Realm, "Secret-pw-1", cfg, client.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		t.Fatalf("gokrb5 login: %v", err)
	}
	tkt, key, err := cl.GetServiceTicket(kdctest.Service)
	if err != nil {
		t.Fatalf("gokrb5 service ticket: %v", err)
	}
	enc, err := kdc.DecryptTicket(tkt, s.ServiceKeys(t, kdctest.Service))
	if err != nil || !keysEqual(enc.Key, key) {
		t.Fatalf("service ticket: %v", err)
	}
	wrong := client.NewWithPassword("admin", kdctest.Realm, "wrong", cfg, client.DisablePAFXFAST(true))
	err = wrong.Login()
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("KDC_ERR_PREAUTH_FAILED")) {
		t.Fatalf("login with a wrong password: %v", err)
	}
}

// TestListeners checks the transports: UDP, TCP framing, an oversized
// length, the RFC 5021 extension bit, garbage, and concurrent logons.
func TestListeners(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{})
	s.AddUser("alice")
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	c := s.Client(cert, key)
	probe, err := c.NewASRequest("alice", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("udp", func(t *testing.T) {
		var ke messages.KRBError
		if err := ke.Unmarshal(exchangeUDP(t, s.Addr, probe)); err != nil || ke.ErrorCode != kdc.ErrPreauthRequired {
			t.Fatalf("UDP probe: %d %v", ke.ErrorCode, err)
		}
		var ke2 messages.KRBError
		if err := ke2.Unmarshal(exchangeUDP(t, s.Addr, []byte("garbage"))); err != nil || ke2.ErrorCode != kdc.ErrMsgType {
			t.Fatalf("UDP garbage: %d %v", ke2.ErrorCode, err)
		}
	})
	t.Run("tcp-too-long", func(t *testing.T) {
		conn := dial(t, s.Addr)
		binary.Write(conn, binary.BigEndian, uint32(1<<30))
		var ke messages.KRBError
		if err := ke.Unmarshal(readFrame(t, conn)); err != nil || ke.ErrorCode != kdc.ErrFieldTooLong {
			t.Fatalf("oversized length: %d %v", ke.ErrorCode, err)
		}
		if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("connection not closed: %v", err)
		}
	})
	t.Run("tcp-extension-bit", func(t *testing.T) {
		conn := dial(t, s.Addr)
		binary.Write(conn, binary.BigEndian, uint32(0x80000000))
		b, err := io.ReadAll(conn)
		if err != nil || !bytes.Equal(b, []byte{0, 0, 0, 0}) {
			t.Fatalf("extension request: %x %v", b, err)
		}
	})
	t.Run("tcp-several-requests", func(t *testing.T) {
		conn := dial(t, s.Addr)
		for _, msg := range [][]byte{[]byte{0x30, 0x00}, probe, probe} {
			binary.Write(conn, binary.BigEndian, uint32(len(msg)))
			conn.Write(msg)
			var ke messages.KRBError
			if err := ke.Unmarshal(readFrame(t, conn)); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("concurrent-logons", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.PKINIT(context.Background(), "alice", kdc.PKINITOptions{})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return conn
}

func readFrame(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	var n uint32
	if err := binary.Read(conn, binary.BigEndian, &n); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(conn, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func exchangeUDP(t *testing.T, addr string, msg []byte) []byte {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// TestStore checks the key store file: mode 0600, keys kept across
// reopening, re-keying keeps the previous version, keytabs parse.
func TestStore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "kdc")
	st, err := kdc.OpenStore(dir, kdctest.Realm)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, kdc.StoreFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file: %v %v", fi.Mode(), err)
	}
	if v, err := st.AddService(kdctest.Service); err != nil || v != 1 {
		t.Fatalf("AddService: %d %v", v, err)
	}
	if v, err := st.AddService(kdctest.Service); err != nil || v != 2 {
		t.Fatalf("AddService again: %d %v", v, err)
	}
	if _, err := st.AddPrincipal("admin", []byte("pw")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddPrincipal("krbtgt/OTHER", []byte("pw")); err == nil {
		t.Fatal("a krbtgt principal could be added")
	}
	if _, err := st.AddService("admin"); err == nil {
		t.Fatal("a password principal could be turned into a service")
	}
	st2, err := kdc.OpenStore(dir, kdctest.Realm)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := st2.LookupService(context.Background(), kdctest.Service)
	if err != nil {
		t.Fatal(err)
	}
	kvnos := map[int]int{}
	for _, k := range svc.Keys {
		kvnos[k.KVNO]++
	}
	if kvnos[1] != 3 || kvnos[2] != 3 {
		t.Fatalf("service keys by version: %v, want 3 of versions 1 and 2", kvnos)
	}
	if _, err := st2.LookupUser(context.Background(), kdctest.Service); !errors.Is(err, kdc.ErrUnknownPrincipal) {
		t.Fatalf("a service found as a user: %v", err)
	}
	ktb, err := st2.Keytab(kdctest.Service)
	if err != nil {
		t.Fatal(err)
	}
	kt := keytab.New()
	if err := kt.Unmarshal(ktb); err != nil {
		t.Fatalf("gokrb5 cannot read our keytab: %v", err)
	}
	if len(kt.Entries) != 6 {
		t.Fatalf("keytab has %d entries, want 6", len(kt.Entries))
	}
	if _, err := kdc.OpenStore(dir, "OTHER.TEST"); err == nil {
		t.Fatal("a store opened for another realm")
	}
	os.Chmod(filepath.Join(dir, kdc.StoreFile), 0o644)
	if _, err := kdc.OpenStore(dir, kdctest.Realm); err == nil {
		t.Fatal("a world-readable store was accepted")
	}
}

func keysEqual(a, b types.EncryptionKey) bool {
	return a.KeyType == b.KeyType && bytes.Equal(a.KeyValue, b.KeyValue)
}
