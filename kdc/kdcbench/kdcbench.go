// Package kdcbench is a Kerberos load generator that works against any KDC
// (ours, MIT krb5kdc, ...). It pre-generates N distinct, validly built
// requests before the clock starts — PKINIT AS-REQs each with a fresh
// nonce, AuthPack and DH key, signed with the user's key; encrypted
// timestamp AS-REQs; or TGS-REQs with fresh authenticators under a TGT got
// once — then fires them over C connections, checks that each reply is an
// AS-REP or TGS-REP (a KRB-ERROR is counted as an error by its code) and
// reports logons per second and latency percentiles.
package kdcbench

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gasn1 "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/credentials"
	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/scstation/scstation/kdc"
)

// Modes.
const (
	PKINITDH  = "pkinit-dh"
	PKINITRSA = "pkinit-rsa"
	Password  = "password"
	TGS       = "tgs"
)

// Modes lists the modes.
var Modes = []string{PKINITDH, PKINITRSA, Password, TGS}

// Config describes one run.
type Config struct {
	// KDC is host:port, Realm the realm.
	KDC, Realm string
	// Mode is one of Modes.
	Mode string
	// Requests to send (N) over Conns concurrent connections (C).
	Requests, Conns int
	// UDP sends over UDP instead of TCP.
	UDP bool
	// User is the client principal (login name, or a UPN with Enterprise).
	User       string
	Enterprise bool
	// Certificate and Key (PKINIT modes, and tgs without TGT or Password),
	// Chain intermediates, Roots the KDC's trust anchors (only used to get
	// the TGT for tgs).
	Certificate *x509.Certificate
	Key         crypto.Signer
	Chain       []*x509.Certificate
	Roots       *x509.CertPool
	// Password for password mode (and tgs without a TGT or certificate).
	Password []byte
	// TGT for tgs mode; when nil it is got once, by PKINIT or password.
	TGT *TGT
	// Service is the service principal of tgs mode.
	Service string
	// EType is the enctype asked for (default aes256-cts-hmac-sha1-96).
	EType int32
	// Timeout bounds one exchange (default 10 s).
	Timeout time.Duration
}

// TGT is a ticket-granting ticket with its session key.
type TGT struct {
	Client     types.PrincipalName
	Realm      string
	Ticket     messages.Ticket
	SessionKey types.EncryptionKey
}

// TGTFromCredential converts a kdc.Credential.
func TGTFromCredential(c *kdc.Credential) *TGT {
	return &TGT{Client: c.Client, Realm: c.Realm, Ticket: c.Ticket, SessionKey: c.SessionKey}
}

// Result of a run.
type Result struct {
	Mode      string
	Requests  int
	OK        int
	Errors    map[string]int // KRB-ERROR name (code) or transport error
	Elapsed   time.Duration
	PreGen    time.Duration
	Rate      float64 // successful logons (or tickets) per second
	P50, P90  time.Duration
	P99, Max  time.Duration
	ErrorRate float64
}

// ErrorCount is the number of failed requests.
func (r *Result) ErrorCount() int { return r.Requests - r.OK }

func (r *Result) String() string {
	s := fmt.Sprintf("%s: %d requests in %s: %.1f/s ok=%d errors=%d  p50 %s p90 %s p99 %s max %s",
		r.Mode, r.Requests, r.Elapsed.Round(time.Millisecond), r.Rate, r.OK, r.ErrorCount(),
		dur(r.P50), dur(r.P90), dur(r.P99), dur(r.Max))
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s += fmt.Sprintf("\n  %6d  %s", r.Errors[k], k)
		}
	}
	return s
}

func dur(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// Load is a set of pre-generated requests ready to fire.
type Load struct {
	cfg  Config
	reqs [][]byte
	want byte // application tag byte of a good reply
	pre  time.Duration
}

func (c *Config) defaults() error {
	if c.Requests <= 0 {
		c.Requests = 1000
	}
	if c.Conns <= 0 {
		c.Conns = 16
	}
	if c.EType == 0 {
		c.EType = etypeID.AES256_CTS_HMAC_SHA1_96
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.KDC == "" || c.Realm == "" || c.User == "" && c.TGT == nil {
		return errors.New("kdcbench: KDC, realm and user are required")
	}
	if !slices.Contains(Modes, c.Mode) {
		return fmt.Errorf("kdcbench: mode %q is not one of %s", c.Mode, strings.Join(Modes, ", "))
	}
	return nil
}

func (c *Config) client() *kdc.Client {
	return &kdc.Client{Realm: c.Realm, KDC: c.KDC, Certificate: c.Certificate, Key: c.Key, Chain: c.Chain, Roots: c.Roots, Timeout: c.Timeout}
}

// Prepare generates the requests (the clock is not running).
func Prepare(ctx context.Context, cfg Config) (*Load, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	l := &Load{cfg: cfg, reqs: make([][]byte, cfg.Requests), want: 0x6b} // [APPLICATION 11] AS-REP
	start := time.Now()
	var gen func(i int) ([]byte, error)
	switch cfg.Mode {
	case PKINITDH, PKINITRSA:
		if cfg.Certificate == nil || cfg.Key == nil {
			return nil, errors.New("kdcbench: PKINIT modes need a certificate and key")
		}
		c := cfg.client()
		opts := kdc.PKINITOptions{Enterprise: cfg.Enterprise, PublicKeyMode: cfg.Mode == PKINITRSA, ETypes: []int32{cfg.EType}}
		// A freshness token, if the KDC hands one out, is good for all.
		if fresh, err := probeFreshness(ctx, &cfg); err == nil {
			opts.Freshness = fresh
		} else {
			return nil, err
		}
		gen = func(int) ([]byte, error) {
			r, err := c.NewPKINITRequest(cfg.User, opts)
			if err != nil {
				return nil, err
			}
			return r.Raw, nil
		}
	case Password:
		key, err := passwordKey(ctx, &cfg)
		if err != nil {
			return nil, err
		}
		gen = func(int) ([]byte, error) { return passwordASReq(&cfg, key) }
	case TGS:
		if cfg.Service == "" {
			return nil, errors.New("kdcbench: tgs mode needs a service principal")
		}
		if cfg.TGT == nil {
			tgt, err := getTGT(ctx, &cfg)
			if err != nil {
				return nil, fmt.Errorf("kdcbench: getting the TGT: %w", err)
			}
			cfg.TGT = tgt
			l.cfg.TGT = tgt
		}
		l.want = 0x6d // [APPLICATION 13] TGS-REP
		gen = func(int) ([]byte, error) { return tgsReq(&cfg) }
	}
	var (
		next     atomic.Int64
		firstErr error
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Requests || ctx.Err() != nil {
					return
				}
				b, err := gen(i)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				l.reqs[i] = b
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("kdcbench: generating requests: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.pre = time.Since(start)
	return l, nil
}

// Run prepares and fires the requests.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	l, err := Prepare(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return l.Fire(ctx)
}

// Fire sends every request once and measures.
func (l *Load) Fire(ctx context.Context) (*Result, error) {
	cfg := l.cfg
	lat := make([]time.Duration, len(l.reqs))
	errs := make([]string, len(l.reqs))
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range min(cfg.Conns, len(l.reqs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var udp net.Conn
			defer func() {
				if udp != nil {
					udp.Close()
				}
			}()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(l.reqs) || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				var reply []byte
				var err error
				if cfg.UDP {
					if udp == nil {
						udp, err = net.Dial("udp", cfg.KDC)
					}
					if err == nil {
						reply, err = exchangeUDP(udp, l.reqs[i], cfg.Timeout)
					}
				} else {
					reply, err = exchangeTCP(cfg.KDC, l.reqs[i], cfg.Timeout)
				}
				lat[i] = time.Since(t0)
				switch {
				case err != nil:
					errs[i] = "transport: " + err.Error()
				default:
					errs[i] = checkReply(reply, l.want)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &Result{Mode: cfg.Mode, Requests: len(l.reqs), Errors: map[string]int{}, Elapsed: elapsed, PreGen: l.pre}
	var good []time.Duration
	for i, e := range errs {
		if e == "" {
			res.OK++
			good = append(good, lat[i])
		} else {
			res.Errors[e]++
		}
	}
	slices.Sort(good)
	if n := len(good); n > 0 {
		pct := func(p float64) time.Duration { return good[min(n-1, int(p*float64(n)))] }
		res.P50, res.P90, res.P99, res.Max = pct(0.50), pct(0.90), pct(0.99), good[n-1]
	}
	res.Rate = float64(res.OK) / elapsed.Seconds()
	res.ErrorRate = float64(res.ErrorCount()) / float64(res.Requests)
	return res, nil
}

// checkReply returns "" for a reply of the wanted type, or what it is.
func checkReply(reply []byte, want byte) string {
	if len(reply) == 0 {
		return "empty reply"
	}
	if reply[0] == 0x7e {
		var ke messages.KRBError
		if err := ke.Unmarshal(reply); err != nil {
			return "undecodable KRB-ERROR"
		}
		return fmt.Sprintf("%s (%d)", kdc.ErrorName(ke.ErrorCode), ke.ErrorCode)
	}
	if reply[0] != want {
		return fmt.Sprintf("unexpected reply tag 0x%02x", reply[0])
	}
	var err error
	if want == 0x6b {
		var rep messages.ASRep
		err = rep.Unmarshal(reply)
	} else {
		var rep messages.TGSRep
		err = rep.Unmarshal(reply)
	}
	if err != nil {
		return "undecodable reply"
	}
	return ""
}

// exchangeTCP sends one message to the KDC at addr over TCP, as the
// station's client does, and returns the reply.
func exchangeTCP(addr string, msg []byte, timeout time.Duration) ([]byte, error) {
	c := kdc.Client{KDC: addr, Timeout: timeout}
	return c.Exchange(context.Background(), msg)
}

func exchangeUDP(conn net.Conn, msg []byte, timeout time.Duration) ([]byte, error) {
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func (c *Config) cname() types.PrincipalName {
	if c.Enterprise {
		return types.PrincipalName{NameType: nametype.KRB_NT_ENTERPRISE, NameString: []string{c.User}}
	}
	return types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: strings.Split(c.User, "/")}
}

func nonce() int {
	var b [4]byte
	rand.Read(b[:])
	return int(binary.BigEndian.Uint32(b[:]) & 0x7fffffff)
}

func (c *Config) asBody() messages.KDCReqBody {
	opts := types.NewKrbFlags()
	types.SetFlag(&opts, flags.Forwardable)
	types.SetFlag(&opts, flags.RenewableOK)
	if c.Enterprise {
		types.SetFlag(&opts, flags.Canonicalize)
	}
	return messages.KDCReqBody{
		KDCOptions: opts, CName: c.cname(), Realm: c.Realm,
		SName: types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", c.Realm}},
		Till:  time.Now().UTC().Add(10 * time.Hour).Truncate(time.Second), Nonce: nonce(),
		EType: []int32{c.EType},
	}
}

func asReq(body messages.KDCReqBody, pa types.PADataSequence) ([]byte, error) {
	r := messages.ASReq{KDCReqFields: messages.KDCReqFields{PVNO: 5, MsgType: msgtype.KRB_AS_REQ, PAData: pa, ReqBody: body}}
	return r.Marshal()
}

// probe sends an AS-REQ without pre-authentication and returns the
// METHOD-DATA of the PREAUTH_REQUIRED error.
func probe(ctx context.Context, c *Config) (types.PADataSequence, error) {
	// An empty PA-AS-FRESHNESS (150) asks for a freshness token.
	req, err := asReq(c.asBody(), types.PADataSequence{{PADataType: 150, PADataValue: []byte{}}})
	if err != nil {
		return nil, err
	}
	reply, err := exchangeTCP(c.KDC, req, c.Timeout)
	if err != nil {
		return nil, err
	}
	if len(reply) == 0 || reply[0] != 0x7e {
		return nil, errors.New("kdcbench: the KDC answered an AS-REQ without pre-authentication")
	}
	var ke messages.KRBError
	if err := ke.Unmarshal(reply); err != nil {
		return nil, err
	}
	if ke.ErrorCode != kdc.ErrPreauthRequired {
		return nil, &kdc.RemoteError{Code: ke.ErrorCode, Text: ke.EText}
	}
	var md types.PADataSequence
	if _, err := gasn1.Unmarshal(ke.EData, &md); err != nil {
		return nil, fmt.Errorf("kdcbench: METHOD-DATA: %w", err)
	}
	return md, nil
}

func probeFreshness(ctx context.Context, c *Config) ([]byte, error) {
	md, err := probe(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, pa := range md {
		if pa.PADataType == 150 && len(pa.PADataValue) > 0 {
			return pa.PADataValue, nil
		}
	}
	return nil, nil
}

func passwordKey(ctx context.Context, c *Config) (types.EncryptionKey, error) {
	if c.Password == nil {
		return types.EncryptionKey{}, errors.New("kdcbench: password mode needs a password")
	}
	md, err := probe(ctx, c)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	key, _, err := krbcrypto.GetKeyFromPassword(string(c.Password), c.cname(), c.Realm, c.EType, md)
	return key, err
}

func passwordASReq(c *Config, key types.EncryptionKey) ([]byte, error) {
	now := time.Now().UTC()
	ts := types.PAEncTSEnc{PATimestamp: now.Truncate(time.Second), PAUSec: now.Nanosecond() / 1000}
	tb, err := gasn1.Marshal(ts)
	if err != nil {
		return nil, err
	}
	ed, err := krbcrypto.GetEncryptedData(tb, key, keyusage.AS_REQ_PA_ENC_TIMESTAMP, 0)
	if err != nil {
		return nil, err
	}
	eb, err := ed.Marshal()
	if err != nil {
		return nil, err
	}
	return asReq(c.asBody(), types.PADataSequence{{PADataType: 2, PADataValue: eb}})
}

// getTGT logs on once, by PKINIT with the certificate or with the password.
func getTGT(ctx context.Context, c *Config) (*TGT, error) {
	if c.Certificate != nil && c.Key != nil {
		cred, err := c.client().PKINIT(ctx, c.User, kdc.PKINITOptions{Enterprise: c.Enterprise, ETypes: []int32{c.EType}})
		if err != nil {
			return nil, err
		}
		return TGTFromCredential(cred), nil
	}
	key, err := passwordKey(ctx, c)
	if err != nil {
		return nil, err
	}
	req, err := passwordASReq(c, key)
	if err != nil {
		return nil, err
	}
	reply, err := exchangeTCP(c.KDC, req, c.Timeout)
	if err != nil {
		return nil, err
	}
	if e := checkReply(reply, 0x6b); e != "" {
		return nil, errors.New(e)
	}
	var rep messages.ASRep
	if err := rep.Unmarshal(reply); err != nil {
		return nil, err
	}
	plain, err := krbcrypto.DecryptEncPart(rep.EncPart, key, keyusage.AS_REP_ENCPART)
	if err != nil {
		return nil, err
	}
	var enc messages.EncKDCRepPart
	if err := enc.Unmarshal(plain); err != nil {
		return nil, err
	}
	return &TGT{Client: rep.CName, Realm: rep.CRealm, Ticket: rep.Ticket, SessionKey: enc.Key}, nil
}

// tgsReq builds a TGS-REQ for the service with a fresh authenticator.
func tgsReq(c *Config) ([]byte, error) {
	tgt := c.TGT
	sname := types.PrincipalName{NameType: nametype.KRB_NT_SRV_HST, NameString: strings.Split(c.Service, "/")}
	if len(sname.NameString) == 1 {
		sname.NameType = nametype.KRB_NT_PRINCIPAL
	}
	now := time.Now().UTC()
	body := messages.KDCReqBody{
		KDCOptions: types.NewKrbFlags(), Realm: c.Realm, SName: sname,
		Till: now.Add(10 * time.Hour).Truncate(time.Second), Nonce: nonce(), EType: []int32{c.EType},
	}
	rawBody, err := body.Marshal()
	if err != nil {
		return nil, err
	}
	et, err := krbcrypto.GetEtype(tgt.SessionKey.KeyType)
	if err != nil {
		return nil, err
	}
	ck, err := et.GetChecksumHash(tgt.SessionKey.KeyValue, rawBody, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM)
	if err != nil {
		return nil, err
	}
	auth := types.Authenticator{
		AVNO: 5, CRealm: tgt.Realm, CName: tgt.Client,
		Cksum: types.Checksum{CksumType: et.GetHashID(), Checksum: ck},
		Cusec: now.Nanosecond() / 1000, CTime: now.Truncate(time.Second),
	}
	ab, err := auth.Marshal()
	if err != nil {
		return nil, err
	}
	encAuth, err := krbcrypto.GetEncryptedData(ab, tgt.SessionKey, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR, 0)
	if err != nil {
		return nil, err
	}
	ap := messages.APReq{PVNO: 5, MsgType: msgtype.KRB_AP_REQ, APOptions: types.NewKrbFlags(), Ticket: tgt.Ticket, EncryptedAuthenticator: encAuth}
	apb, err := ap.Marshal()
	if err != nil {
		return nil, err
	}
	r := messages.TGSReq{KDCReqFields: messages.KDCReqFields{PVNO: 5, MsgType: msgtype.KRB_TGS_REQ,
		PAData: types.PADataSequence{{PADataType: 1, PADataValue: apb}}, ReqBody: body}}
	return r.Marshal()
}

// TGTFromCCache reads the TGT of realm from an MIT credential cache file.
func TGTFromCCache(path, realm string) (*TGT, error) {
	cc, err := credentials.LoadCCache(path)
	if err != nil {
		return nil, fmt.Errorf("kdcbench: %s: %w", path, err)
	}
	krbtgt := types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", realm}}
	e, ok := cc.GetEntry(krbtgt)
	if !ok {
		return nil, fmt.Errorf("kdcbench: %s holds no krbtgt/%s ticket", path, realm)
	}
	var t messages.Ticket
	if err := t.Unmarshal(e.Ticket); err != nil {
		return nil, fmt.Errorf("kdcbench: %s: ticket: %w", path, err)
	}
	if time.Now().After(e.EndTime) {
		return nil, fmt.Errorf("kdcbench: the TGT in %s expired at %s", path, e.EndTime)
	}
	return &TGT{Client: e.Client.PrincipalName, Realm: e.Client.Realm, Ticket: t, SessionKey: e.Key}, nil
}
