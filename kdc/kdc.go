package kdc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// MaxMessageSize bounds a request: longer TCP length prefixes are refused
// without reading (KRB_ERR_FIELD_TOOLONG), longer datagrams are dropped. A
// PKINIT request with a certificate chain is 3–8 KiB.
const MaxMessageSize = 64 << 10

// maxUDPReply is the largest reply sent over UDP; longer ones become
// KRB_ERR_RESPONSE_TOO_BIG, and the client retries over TCP.
const maxUDPReply = 4096

// KDC is a Kerberos key distribution center for one realm.
type KDC struct {
	cfg        Config
	realm      string
	log        *slog.Logger
	principals PrincipalStore
	krbtgtName types.PrincipalName
	replay     *replayCache
	inflight   chan struct{}

	mu      sync.Mutex
	tcp     net.Listener
	udp     net.PacketConn
	conns   map[net.Conn]struct{}
	closed  bool
	done    chan struct{}
	serving sync.WaitGroup
}

// New checks the configuration and returns a KDC; Listen and Serve run it,
// Handle answers a single request.
func New(cfg Config) (*KDC, error) {
	if cfg.Realm == "" {
		return nil, errors.New("kdc: no realm")
	}
	if cfg.Store == nil {
		return nil, errors.New("kdc: no key store")
	}
	if cfg.Store.Realm() != cfg.Realm {
		return nil, fmt.Errorf("kdc: key store is for realm %s, not %s", cfg.Store.Realm(), cfg.Realm)
	}
	if (cfg.Certificate == nil) != (cfg.Key == nil) {
		return nil, errors.New("kdc: a PKINIT certificate needs its key and the other way round")
	}
	if cfg.Certificate != nil {
		if !publicKeysEqual(cfg.Certificate.PublicKey, cfg.Key.Public()) {
			return nil, errors.New("kdc: the PKINIT key does not match the KDC certificate")
		}
		if cfg.Roots == nil {
			return nil, errors.New("kdc: PKINIT needs trust anchors for client certificates")
		}
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = 5 * time.Minute
	}
	if cfg.TicketLifetime <= 0 {
		cfg.TicketLifetime = 10 * time.Hour
	}
	if cfg.RenewLifetime <= 0 {
		cfg.RenewLifetime = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = 512
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 4 * runtime.GOMAXPROCS(0)
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	k := &KDC{
		cfg:        cfg,
		realm:      cfg.Realm,
		log:        cfg.Log.With("realm", cfg.Realm),
		principals: cfg.Principals,
		krbtgtName: types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", cfg.Realm}},
		replay:     newReplayCache(2*cfg.ClockSkew, 200_000, 4096),
		inflight:   make(chan struct{}, cfg.MaxInFlight),
		conns:      map[net.Conn]struct{}{},
		done:       make(chan struct{}),
	}
	if k.principals == nil {
		k.principals = cfg.Store
	}
	return k, nil
}

// now is the KDC's clock in UTC, with microseconds.
func (k *KDC) now() time.Time { return k.cfg.Now().UTC().Truncate(time.Microsecond) }

// kdcReq is a decoded AS-REQ or TGS-REQ with the bytes it came in.
type kdcReq struct {
	raw     []byte // the whole message as received
	msgType int
	padata  types.PADataSequence
	rawBody []byte // the KDC-REQ-BODY exactly as received
	body    messages.KDCReqBody
	// additionalTickets says the body has some (they are not decoded).
	additionalTickets bool
	// peer is the client's address, for the log.
	peer string
}

type marshalKDCReqRaw struct {
	PVNO    int                  `asn1:"explicit,tag:1"`
	MsgType int                  `asn1:"explicit,tag:2"`
	PAData  types.PADataSequence `asn1:"explicit,optional,tag:3"`
	ReqBody asn1.RawValue        `asn1:"explicit,tag:4"`
}

// kdcReqBodyRaw is KDC-REQ-BODY with the additional tickets left raw:
// gokrb5's KDCReqBody.Unmarshal panics on malformed ones, and the KDC
// supports none (ENC-TKT-IN-SKEY is refused).
type kdcReqBodyRaw struct {
	KDCOptions        asn1.BitString      `asn1:"explicit,tag:0"`
	CName             types.PrincipalName `asn1:"explicit,optional,tag:1"`
	Realm             string              `asn1:"generalstring,explicit,tag:2"`
	SName             types.PrincipalName `asn1:"explicit,optional,tag:3"`
	From              time.Time           `asn1:"generalized,explicit,optional,tag:4"`
	Till              time.Time           `asn1:"generalized,explicit,tag:5"`
	RTime             time.Time           `asn1:"generalized,explicit,optional,tag:6"`
	Nonce             int                 `asn1:"explicit,tag:7"`
	EType             []int32             `asn1:"explicit,tag:8"`
	Addresses         []types.HostAddress `asn1:"explicit,optional,tag:9"`
	EncAuthData       types.EncryptedData `asn1:"explicit,optional,tag:10"`
	AdditionalTickets asn1.RawValue       `asn1:"explicit,optional,tag:11"`
}

func decodeKDCReqBody(b []byte) (messages.KDCReqBody, bool, error) {
	var m kdcReqBodyRaw
	rest, err := asn1.Unmarshal(b, &m)
	if err != nil {
		return messages.KDCReqBody{}, false, err
	}
	if len(rest) > 0 {
		return messages.KDCReqBody{}, false, errors.New("trailing data after the KDC-REQ-BODY")
	}
	opts := m.KDCOptions
	if len(opts.Bytes) < 4 { // as gokrb5 does, so that flag tests work
		opts.Bytes = append(make([]byte, 4-len(opts.Bytes)), opts.Bytes...)
		opts.BitLength = 32
	}
	return messages.KDCReqBody{
		KDCOptions: opts, CName: m.CName, Realm: m.Realm, SName: m.SName,
		From: m.From, Till: m.Till, RTime: m.RTime, Nonce: m.Nonce, EType: m.EType,
		Addresses: m.Addresses, EncAuthData: m.EncAuthData,
	}, len(m.AdditionalTickets.Bytes) > 0, nil
}

// decodeKDCReq decodes an AS-REQ (tag 10) or TGS-REQ (tag 12), keeping the
// raw KDC-REQ-BODY: gokrb5 discards it, and re-encoding changes it. A
// panic in the ASN.1 decoders (not ours) is a malformed request.
func decodeKDCReq(b []byte, appTag int) (r *kdcReq, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("undecodable request (decoder panic: %v)", p)
		}
	}()
	var m marshalKDCReqRaw
	rest, err := asn1.UnmarshalWithParams(b, &m, fmt.Sprintf("application,explicit,tag:%d", appTag))
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing data after the request")
	}
	want := msgtype.KRB_AS_REQ
	if appTag == asnAppTag.TGSREQ {
		want = msgtype.KRB_TGS_REQ
	}
	if m.MsgType != want {
		return nil, fmt.Errorf("message type %d in a message tagged %d", m.MsgType, appTag)
	}
	if m.PVNO != 5 {
		return nil, fmt.Errorf("protocol version %d", m.PVNO)
	}
	if len(m.ReqBody.Bytes) == 0 || m.ReqBody.Bytes[0] != 0x30 {
		return nil, errors.New("malformed KDC-REQ-BODY")
	}
	r = &kdcReq{raw: b, msgType: m.MsgType, padata: m.PAData, rawBody: m.ReqBody.Bytes}
	if r.body, r.additionalTickets, err = decodeKDCReqBody(r.rawBody); err != nil {
		return nil, err
	}
	if len(r.padata) > 32 || len(r.body.EType) > 64 || len(r.body.Addresses) > 64 {
		return nil, errors.New("request has too many elements")
	}
	return r, nil
}

// pa returns the first padata of a type.
func (r *kdcReq) pa(t int32) (types.PAData, bool) {
	for _, p := range r.padata {
		if p.PADataType == t {
			return p, true
		}
	}
	return types.PAData{}, false
}

// Handle answers one request (an AS-REQ or TGS-REQ, without the TCP length
// prefix) with a reply or a KRB-ERROR. It never panics: a failure while
// processing becomes KRB_ERR_GENERIC.
func (k *KDC) Handle(ctx context.Context, req []byte) []byte {
	return k.handle(ctx, req, "")
}

func (k *KDC) handle(ctx context.Context, req []byte, peer string) (reply []byte) {
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 4096)
			buf = buf[:runtime.Stack(buf, false)]
			k.log.Error("kdc: panic while handling a request", "peer", peer, "panic", fmt.Sprint(r), "stack", string(buf))
			reply = k.errorReply(nil, &Error{Code: ErrGeneric, Text: "internal error"})
		}
	}()
	return k.process(ctx, req, peer)
}

// process is Handle without the recovery, for the fuzz target.
func (k *KDC) process(ctx context.Context, b []byte, peer string) []byte {
	if len(b) == 0 {
		return k.errorReply(nil, refuse(ErrGeneric, "empty request"))
	}
	if len(b) > MaxMessageSize {
		return k.errorReply(nil, refuse(ErrFieldTooLong, "request too long"))
	}
	h := sha256.Sum256(b)
	if cached, ok := k.replay.reply(h, k.now()); ok {
		k.log.Info("kdc: retransmitted request, sending the cached reply", "peer", peer)
		return cached
	}
	var tag int
	switch b[0] {
	case 0x6a: // [APPLICATION 10] AS-REQ
		tag = asnAppTag.ASREQ
	case 0x6c: // [APPLICATION 12] TGS-REQ
		tag = asnAppTag.TGSREQ
	default:
		k.log.Info("kdc: refused: not a KDC request", "peer", peer, "first_byte", fmt.Sprintf("%#02x", b[0]))
		return k.errorReply(nil, refuse(ErrMsgType, "not an AS-REQ or TGS-REQ"))
	}
	req, err := decodeKDCReq(b, tag)
	if err != nil {
		k.log.Info("kdc: refused: malformed request", "peer", peer, "err", err)
		return k.errorReply(nil, refuseQuiet(ErrGeneric, "malformed request", "%v", err))
	}
	req.peer = peer
	var reply []byte
	var kerr *Error
	if tag == asnAppTag.ASREQ {
		reply, kerr = k.handleAS(ctx, req, h)
	} else {
		reply, kerr = k.handleTGS(ctx, req, h)
	}
	if kerr != nil {
		return k.errorReply(req, kerr)
	}
	k.replay.storeReply(h, reply, k.now())
	return reply
}

// errorReply logs a refusal and encodes it as a KRB-ERROR.
func (k *KDC) errorReply(req *kdcReq, e *Error) []byte {
	now := k.now()
	ke := messages.KRBError{
		PVNO:      5,
		MsgType:   msgtype.KRB_ERROR,
		STime:     now.Truncate(time.Second),
		Susec:     now.Nanosecond() / 1000,
		ErrorCode: e.Code,
		Realm:     k.realm,
		SName:     k.krbtgtName,
		EText:     e.Text,
		EData:     e.EData,
	}
	attrs := []any{"code", e.Code, "error", ErrorName(e.Code), "reason", e.Reason}
	if req != nil {
		attrs = append(attrs, "peer", req.peer)
		if len(req.body.SName.NameString) > 0 {
			ke.SName = req.body.SName
			attrs = append(attrs, "server", principalString(req.body.SName, req.body.Realm))
		}
		if len(req.body.CName.NameString) > 0 {
			ke.CName, ke.CRealm = req.body.CName, req.body.Realm
			attrs = append(attrs, "client", principalString(req.body.CName, req.body.Realm))
		}
	}
	if e.Code == ErrPreauthRequired {
		k.log.Debug("kdc: pre-authentication required", attrs...)
	} else {
		k.log.Warn("kdc: refused", attrs...)
	}
	b, err := ke.Marshal()
	if err != nil { // a name that does not encode: answer without it
		ke.CName, ke.CRealm, ke.SName = types.PrincipalName{}, "", k.krbtgtName
		b, _ = ke.Marshal()
	}
	return b
}

func principalString(pn types.PrincipalName, realm string) string {
	return strings.Join(pn.NameString, "/") + "@" + realm
}

func nameOf(pn types.PrincipalName) string { return strings.Join(pn.NameString, "/") }

// isKrbtgt reports whether pn is this realm's TGS principal.
func (k *KDC) isKrbtgt(pn types.PrincipalName) bool {
	return len(pn.NameString) == 2 && pn.NameString[0] == "krbtgt" && pn.NameString[1] == k.realm
}

// chooseSessionEType picks the first enctype of the client's list that the
// KDC supports and the server has a key for.
func chooseSessionEType(clientETypes []int32, server *Principal) (int32, bool) {
	for _, e := range clientETypes {
		if !etypeSupported(e) {
			continue
		}
		if _, ok := server.key(e); ok {
			return e, true
		}
	}
	return 0, false
}

// ticketKey picks the server's key to encrypt tickets with: the strongest
// enctype it has, newest version.
func ticketKey(server *Principal) (Key, bool) {
	for _, e := range supportedETypes {
		if k, ok := server.key(e); ok {
			return k, true
		}
	}
	return Key{}, false
}

func newSessionKey(etype int32) (types.EncryptionKey, error) { return randomKey(etype) }

// sealTicket encrypts the ticket's EncTicketPart with the server's key.
func (k *KDC) sealTicket(server *Principal, sname types.PrincipalName, enc messages.EncTicketPart) (messages.Ticket, error) {
	key, ok := ticketKey(server)
	if !ok {
		return messages.Ticket{}, fmt.Errorf("service %s has no usable key", server.Name)
	}
	b, err := asn1.Marshal(enc)
	if err != nil {
		return messages.Ticket{}, err
	}
	b = asn1tools.AddASNAppTag(b, asnAppTag.EncTicketPart)
	ed, err := krbcrypto.GetEncryptedData(b, types.EncryptionKey{KeyType: key.EType, KeyValue: key.Value}, keyusage.KDC_REP_TICKET, key.KVNO)
	if err != nil {
		return messages.Ticket{}, err
	}
	return messages.Ticket{TktVNO: 5, Realm: k.realm, SName: sname, EncPart: ed}, nil
}

// sealRepPart encrypts EncASRepPart (tag 25) or EncTGSRepPart (tag 26).
func sealRepPart(enc messages.EncKDCRepPart, appTag int, key types.EncryptionKey, usage uint32) (types.EncryptedData, error) {
	b, err := asn1.Marshal(enc)
	if err != nil {
		return types.EncryptedData{}, err
	}
	b = asn1tools.AddASNAppTag(b, appTag)
	return krbcrypto.GetEncryptedData(b, key, usage, 0)
}

// safely runs a gokrb5 decoder, turning a panic into an error.
func safely(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoder panic: %v", p)
		}
	}()
	return f()
}

// decrypt opens an EncryptedData that came from the network. gokrb5
// v8.4.4 panics on ciphertext shorter than a confounder and a MAC
// (rfc3962.DecryptMessage slices with a negative bound), so the length is
// checked first and any other panic becomes an error.
func decrypt(ed types.EncryptedData, key types.EncryptionKey, usage uint32) (plain []byte, err error) {
	et, err := krbcrypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, err
	}
	if ed.EType != key.KeyType {
		return nil, fmt.Errorf("encrypted with enctype %d, key of enctype %d", ed.EType, key.KeyType)
	}
	if len(key.KeyValue) != keySeedBytes(et) {
		return nil, fmt.Errorf("key of %d bytes for enctype %d", len(key.KeyValue), key.KeyType)
	}
	if len(ed.Cipher) < et.GetConfounderByteSize()+et.GetHMACBitLength()/8 {
		return nil, errors.New("ciphertext too short")
	}
	defer func() {
		if r := recover(); r != nil {
			plain, err = nil, fmt.Errorf("decryption failed: %v", r)
		}
	}()
	return krbcrypto.DecryptEncPart(ed, key, usage)
}

// decryptTicket opens a ticket's EncTicketPart.
func decryptTicket(t messages.Ticket, key types.EncryptionKey) (messages.EncTicketPart, error) {
	b, err := decrypt(t.EncPart, key, keyusage.KDC_REP_TICKET)
	if err != nil {
		return messages.EncTicketPart{}, err
	}
	var enc messages.EncTicketPart
	if err := safely(func() error { return enc.Unmarshal(b) }); err != nil {
		return messages.EncTicketPart{}, err
	}
	return enc, nil
}

// kerberosTime drops what KerberosTime cannot carry.
func kerberosTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// withinSkew reports whether t is within the clock skew of now.
func (k *KDC) withinSkew(t, now time.Time) bool {
	d := t.Sub(now)
	return d <= k.cfg.ClockSkew && d >= -k.cfg.ClockSkew
}
