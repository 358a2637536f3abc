package kdc

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	gasn1 "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/scstation/scstation/pki"
)

// Client is a PKINIT (Diffie-Hellman mode) and TGS client: it logs a
// certificate holder on with any crypto.Signer (a card) and gets service
// tickets. It works against any KDC that speaks RFC 4556.
type Client struct {
	// Realm is the Kerberos realm; KDC the KDC's TCP address.
	Realm, KDC string
	// Certificate is the user's logon certificate, Key its private key
	// (a card's), Chain intermediates to send along.
	Certificate *x509.Certificate
	Key         crypto.Signer
	Chain       []*x509.Certificate
	// Roots verify the KDC's certificate.
	Roots *x509.CertPool
	// Now is the client's clock (default time.Now).
	Now func() time.Time
	// Timeout bounds one exchange (default 10 s).
	Timeout time.Duration
}

// RemoteError is a KRB-ERROR from the KDC.
type RemoteError struct {
	Code  int32
	Text  string
	EData []byte
	STime time.Time
}

func (e *RemoteError) Error() string {
	s := fmt.Sprintf("KDC refused: %s (%d)", ErrorName(e.Code), e.Code)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Credential is a ticket with its session key, as a credential cache
// holds it.
type Credential struct {
	Client     types.PrincipalName
	Realm      string
	Server     types.PrincipalName
	Ticket     messages.Ticket
	TicketDER  []byte
	SessionKey types.EncryptionKey
	Flags      gasn1.BitString
	AuthTime   time.Time
	StartTime  time.Time
	EndTime    time.Time
	RenewTill  time.Time
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

// Exchange sends one message over TCP and returns the reply.
func (c *Client) Exchange(ctx context.Context, msg []byte) ([]byte, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.KDC)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return exchangeConn(conn, msg)
}

func exchangeConn(conn net.Conn, msg []byte) ([]byte, error) {
	out := make([]byte, 4+len(msg))
	binary.BigEndian.PutUint32(out, uint32(len(msg)))
	copy(out[4:], msg)
	if _, err := conn.Write(out); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxMessageSize {
		return nil, fmt.Errorf("kdc: reply of %d bytes is too long", n)
	}
	reply := make([]byte, n)
	_, err := io.ReadFull(conn, reply)
	return reply, err
}

// asKRBError decodes a KRB-ERROR reply, or returns nil.
func asKRBError(reply []byte) *RemoteError {
	if len(reply) == 0 || reply[0] != 0x7e {
		return nil
	}
	var ke messages.KRBError
	if err := ke.Unmarshal(reply); err != nil {
		return &RemoteError{Code: ErrGeneric, Text: "undecodable KRB-ERROR"}
	}
	return &RemoteError{Code: ke.ErrorCode, Text: ke.EText, EData: ke.EData, STime: ke.STime}
}

// PKINITOptions vary a PKINIT request.
type PKINITOptions struct {
	// Enterprise sends the user name as an enterprise (UPN) name.
	Enterprise bool
	// Freshness is the token from the KDC's PREAUTH_REQUIRED, if any.
	Freshness []byte
	// DHBits selects MODP group 14 (2048, default) or 16 (4096).
	DHBits int
	// NoKDF offers no RFC 8636 KDF, so the KDC uses octetstring2key.
	NoKDF bool
	// PublicKeyMode asks for public-key encryption mode (RFC 4556
	// §3.2.3.2) instead of Diffie-Hellman: the KDC encrypts the reply key
	// to the certificate, and Key must be an RSA crypto.Decrypter.
	PublicKeyMode bool
	// ETypes are the enctypes asked for (default 18, 17, 20).
	ETypes []int32

	// For tests: the PKAuthenticator's time offset, a group to use
	// instead, no paChecksum, and extra pre-authentication data.
	timeOffset     time.Duration
	group          *dhGroup
	omitPAChecksum bool
	tamperSig      bool
	extraPA        []types.PAData
}

// ASRequest is a PKINIT AS-REQ and what is needed to read its reply.
type ASRequest struct {
	Raw     []byte
	body    messages.KDCReqBody
	rawBody []byte
	padata  types.PADataSequence
	dh      *dhKey
	nonce   int64
	dhNonce []byte
}

func randomNonce() int {
	var b [4]byte
	rand.Read(b[:])
	return int(binary.BigEndian.Uint32(b[:]) & 0x7fffffff)
}

func (c *Client) asBody(user string, enterprise bool, etypes []int32) messages.KDCReqBody {
	cname := types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: strings.Split(user, "/")}
	if enterprise {
		cname = types.PrincipalName{NameType: nametype.KRB_NT_ENTERPRISE, NameString: []string{user}}
	}
	if len(etypes) == 0 {
		etypes = slices.Clone(supportedETypes)
	}
	opts := types.NewKrbFlags()
	types.SetFlag(&opts, flags.Forwardable)
	types.SetFlag(&opts, flags.RenewableOK)
	if enterprise {
		types.SetFlag(&opts, flags.Canonicalize)
	}
	return messages.KDCReqBody{
		KDCOptions: opts,
		CName:      cname,
		Realm:      c.Realm,
		SName:      types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", c.Realm}},
		Till:       c.now().Add(10 * time.Hour).Truncate(time.Second),
		Nonce:      randomNonce(),
		EType:      etypes,
	}
}

// marshalKDCReq encodes an AS-REQ or TGS-REQ around body bytes as given.
func marshalKDCReq(appTag, msgType int, padata types.PADataSequence, rawBody []byte) ([]byte, error) {
	m := marshalKDCReqRaw{PVNO: 5, MsgType: msgType, PAData: padata,
		ReqBody: gasn1.RawValue{Class: gasn1.ClassContextSpecific, IsCompound: true, Tag: 4, Bytes: rawBody}}
	b, err := gasn1.Marshal(m)
	if err != nil {
		return nil, err
	}
	return asn1tools.AddASNAppTag(b, appTag), nil
}

// NewASRequest builds an AS-REQ without pre-authentication, to learn
// what the KDC wants (and get a freshness token).
func (c *Client) NewASRequest(user string, enterprise bool) ([]byte, error) {
	body := c.asBody(user, enterprise, nil)
	raw, err := body.Marshal()
	if err != nil {
		return nil, err
	}
	// MIT asks for a freshness token with an empty PA-AS-FRESHNESS.
	return marshalKDCReq(asnAppTag.ASREQ, msgtype.KRB_AS_REQ, types.PADataSequence{{PADataType: paTypeASFreshness, PADataValue: []byte{}}}, raw)
}

// NewPKINITRequest builds a signed PKINIT AS-REQ in DH mode.
func (c *Client) NewPKINITRequest(user string, opts PKINITOptions) (*ASRequest, error) {
	if c.Certificate == nil || c.Key == nil {
		return nil, errors.New("kdc: client has no certificate or key")
	}
	body := c.asBody(user, opts.Enterprise, opts.ETypes)
	rawBody, err := body.Marshal()
	if err != nil {
		return nil, err
	}
	var dh *dhKey
	var spki []byte
	if !opts.PublicKeyMode {
		group := modp14
		if opts.DHBits == 4096 {
			group = modp16
		}
		if opts.group != nil {
			group = *opts.group
		}
		if dh, err = newDHKey(group); err != nil {
			return nil, err
		}
		if spki, err = marshalDHSubjectPublicKeyInfo(group.dhDomain, dh.Public); err != nil {
			return nil, err
		}
	}
	now := c.now().Add(opts.timeOffset)
	sum := sha1.Sum(rawBody)
	ap := &authPack{
		CUsec: int64(now.Nanosecond() / 1000), CTime: now.Truncate(time.Second), Nonce: int64(body.Nonce),
		PAChecksum: sum[:], FreshnessToken: opts.Freshness, ClientPublicValue: spki,
	}
	if opts.omitPAChecksum {
		ap.PAChecksum = nil
	}
	if !opts.NoKDF {
		ap.SupportedKDFs = []asn1.ObjectIdentifier{oidKDFSHA256, oidKDFSHA1, oidKDFSHA512}
	}
	if opts.PublicKeyMode {
		for _, alg := range []asn1.ObjectIdentifier{oidAES256CBC, oidDESEDE3CBC} {
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(alg) })
			ap.SupportedCMSTypes = append(ap.SupportedCMSTypes, b.BytesOrPanic())
		}
	}
	content, err := ap.marshal()
	if err != nil {
		return nil, err
	}
	signed, err := signCMS(oidAuthData, content, c.Key, append([]*x509.Certificate{c.Certificate}, c.Chain...))
	if err != nil {
		return nil, err
	}
	if opts.tamperSig { // the signature is the last element of the ContentInfo
		signed[len(signed)-1] ^= 0x01
	}
	pa, err := marshalPAPKASReq(signed)
	if err != nil {
		return nil, err
	}
	padata := types.PADataSequence{{PADataType: paTypePKASReq, PADataValue: pa}}
	padata = append(padata, opts.extraPA...)
	raw, err := marshalKDCReq(asnAppTag.ASREQ, msgtype.KRB_AS_REQ, padata, rawBody)
	if err != nil {
		return nil, err
	}
	return &ASRequest{Raw: raw, body: body, rawBody: rawBody, padata: padata, dh: dh, nonce: ap.Nonce}, nil
}

// PKINIT logs user on: an AS-REQ to get a freshness token, then the
// signed PKINIT request. It returns the TGT.
func (c *Client) PKINIT(ctx context.Context, user string, opts PKINITOptions) (*Credential, error) {
	fresh, err := c.Probe(ctx, user, opts.Enterprise)
	if err != nil {
		return nil, err
	}
	if opts.Freshness == nil {
		opts.Freshness = fresh
	}
	req, err := c.NewPKINITRequest(user, opts)
	if err != nil {
		return nil, err
	}
	reply, err := c.Exchange(ctx, req.Raw)
	if err != nil {
		return nil, err
	}
	return c.ReadASReply(req, reply)
}

// ReadASReply checks a reply to a PKINIT request: the KDC's signature on
// its DH value, the KDC certificate, the reply key, the nonce.
func (c *Client) ReadASReply(req *ASRequest, reply []byte) (*Credential, error) {
	if ke := asKRBError(reply); ke != nil {
		return nil, ke
	}
	var rep messages.ASRep
	if err := rep.Unmarshal(reply); err != nil {
		return nil, fmt.Errorf("kdc: AS-REP: %w", err)
	}
	var pkRep []byte
	for _, pa := range rep.PAData {
		if pa.PADataType == paTypePKASRep {
			pkRep = pa.PADataValue
		}
	}
	if pkRep == nil {
		return nil, errors.New("kdc: AS-REP without PA-PK-AS-REP")
	}
	r, err := parsePAPKASRep(pkRep)
	if err != nil {
		return nil, errors.New("kdc: malformed PA-PK-AS-REP")
	}
	if r.EncKeyPack != nil {
		key, err := c.openKeyPack(req, r.EncKeyPack)
		if err != nil {
			return nil, err
		}
		return c.decryptASRep(req, &rep, key)
	}
	if r.DHSignedData == nil || req.dh == nil {
		return nil, errors.New("kdc: PA-PK-AS-REP is not the reply asked for")
	}
	sd, err := parseSignedData(r.DHSignedData)
	if err != nil {
		return nil, fmt.Errorf("kdc: KDC's signed data: %w", err)
	}
	kdcCert, _, err := sd.verify()
	if err != nil {
		return nil, fmt.Errorf("kdc: KDC's signature: %w", err)
	}
	if err := c.checkKDCCertificate(kdcCert, sd.Certificates); err != nil {
		return nil, err
	}
	if !sd.ContentType.Equal(oidDHKeyData) {
		return nil, fmt.Errorf("kdc: KDC signed content of type %v", sd.ContentType)
	}
	info, err := parseKDCDHKeyInfo(sd.Content)
	if err != nil {
		return nil, fmt.Errorf("kdc: KDCDHKeyInfo: %w", err)
	}
	if info.Nonce != req.nonce {
		return nil, errors.New("kdc: KDCDHKeyInfo nonce does not match")
	}
	z, err := req.dh.shared(info.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("kdc: KDC's DH value: %w", err)
	}
	etype := rep.EncPart.EType
	var key types.EncryptionKey
	if r.KDF != nil {
		u, _ := marshalKRB5PrincipalName(req.body.Realm, req.body.CName.NameType, req.body.CName.NameString)
		v, _ := marshalKRB5PrincipalName(req.body.Realm, req.body.SName.NameType, req.body.SName.NameString)
		other, err := marshalOtherInfo(r.KDF, u, v, etype, req.Raw, pkRep)
		if err != nil {
			return nil, err
		}
		key, err = agilityKDF(r.KDF, z, other, etype)
		if err != nil {
			return nil, err
		}
	} else {
		key, err = octetString2Key(append(z, req.dhNonce...), etype)
		if err != nil {
			return nil, err
		}
	}
	return c.decryptASRep(req, &rep, key)
}

// openKeyPack decrypts and checks a public-key mode reply: the
// EnvelopedData (with the card's key), the KDC's signature on the
// ReplyKeyPack, and the asChecksum over our AS-REQ.
func (c *Client) openKeyPack(req *ASRequest, env []byte) (types.EncryptionKey, error) {
	dec, ok := c.Key.(crypto.Decrypter)
	if !ok {
		return types.EncryptionKey{}, errors.New("kdc: the key cannot decrypt (public-key mode needs a crypto.Decrypter)")
	}
	ctype, content, err := openEnvelope(env, c.Certificate, dec)
	if err != nil {
		return types.EncryptionKey{}, fmt.Errorf("kdc: encKeyPack: %w", err)
	}
	if !ctype.Equal(oidSignedData) {
		return types.EncryptionKey{}, fmt.Errorf("kdc: encKeyPack holds %v, not SignedData", ctype)
	}
	wrapped, err := wrapSignedData(content)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	sd, err := parseSignedData(wrapped)
	if err != nil {
		return types.EncryptionKey{}, fmt.Errorf("kdc: KDC's signed data: %w", err)
	}
	kdcCert, _, err := sd.verify()
	if err != nil {
		return types.EncryptionKey{}, fmt.Errorf("kdc: KDC's signature: %w", err)
	}
	if err := c.checkKDCCertificate(kdcCert, sd.Certificates); err != nil {
		return types.EncryptionKey{}, err
	}
	if !sd.ContentType.Equal(oidRKeyData) {
		return types.EncryptionKey{}, fmt.Errorf("kdc: KDC signed content of type %v", sd.ContentType)
	}
	var pack replyKeyPack
	if err := safely(func() error { _, err := gasn1.Unmarshal(sd.Content, &pack); return err }); err != nil {
		return types.EncryptionKey{}, fmt.Errorf("kdc: ReplyKeyPack: %w", err)
	}
	et, err := krbcrypto.GetEtype(pack.ReplyKey.KeyType)
	if err != nil || len(pack.ReplyKey.KeyValue) != keySeedBytes(et) {
		return types.EncryptionKey{}, errors.New("kdc: unusable reply key")
	}
	if pack.ASChecksum.CksumType != et.GetHashID() ||
		!et.VerifyChecksum(pack.ReplyKey.KeyValue, req.Raw, pack.ASChecksum.Checksum, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM) {
		return types.EncryptionKey{}, errors.New("kdc: the asChecksum does not match our AS-REQ")
	}
	return pack.ReplyKey, nil
}

// decryptASRep opens the AS-REP with the reply key and checks the nonce.
func (c *Client) decryptASRep(req *ASRequest, rep *messages.ASRep, key types.EncryptionKey) (*Credential, error) {
	plain, err := decrypt(rep.EncPart, key, keyusage.AS_REP_ENCPART)
	if err != nil {
		return nil, fmt.Errorf("kdc: AS-REP does not decrypt with the reply key: %w", err)
	}
	var enc messages.EncKDCRepPart
	if err := enc.Unmarshal(plain); err != nil {
		return nil, fmt.Errorf("kdc: EncASRepPart: %w", err)
	}
	if enc.Nonce != req.body.Nonce {
		return nil, errors.New("kdc: AS-REP nonce does not match")
	}
	return credential(rep.KDCRepFields, enc)
}

func credential(rep messages.KDCRepFields, enc messages.EncKDCRepPart) (*Credential, error) {
	tkt := rep.Ticket
	tkt.DecryptedEncPart = messages.EncTicketPart{}
	der, err := tkt.Marshal()
	if err != nil {
		return nil, err
	}
	return &Credential{
		Client: rep.CName, Realm: rep.CRealm, Server: enc.SName, Ticket: tkt, TicketDER: der,
		SessionKey: enc.Key, Flags: enc.Flags, AuthTime: enc.AuthTime, StartTime: enc.StartTime,
		EndTime: enc.EndTime, RenewTill: enc.RenewTill,
	}, nil
}

// checkKDCCertificate verifies the KDC's certificate as MIT does: it
// chains to Roots, and names krbtgt/REALM@REALM in id-pkinit-san or has
// the id-pkinit-KPKdc EKU.
func (c *Client) checkKDCCertificate(cert *x509.Certificate, others []*x509.Certificate) error {
	if c.Roots == nil {
		return errors.New("kdc: no trust anchors to verify the KDC with")
	}
	inter := x509.NewCertPool()
	for _, o := range others {
		inter.AddCert(o)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: c.Roots, Intermediates: inter, CurrentTime: c.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("kdc: the KDC's certificate does not verify: %w", err)
	}
	if hasEKU(cert, pki.OIDPKINITKDC) {
		return nil
	}
	san, _, _ := pki.SubjectAltNamesOf(cert)
	for _, p := range san.Principals {
		if p.Realm == c.Realm && len(p.Components) == 2 && p.Components[0] == "krbtgt" && p.Components[1] == c.Realm {
			return nil
		}
	}
	return errors.New("kdc: the KDC's certificate is not a KDC certificate for " + c.Realm)
}

// ServiceTicket gets a ticket for spn ("host/station.example.test") with a TGT.
func (c *Client) ServiceTicket(ctx context.Context, tgt *Credential, spn string) (*Credential, error) {
	req, subkey, body, err := c.newTGSRequest(tgt, spn)
	if err != nil {
		return nil, err
	}
	reply, err := c.Exchange(ctx, req)
	if err != nil {
		return nil, err
	}
	return readTGSReply(reply, subkey, body.Nonce)
}

func (c *Client) newTGSRequest(tgt *Credential, spn string) ([]byte, types.EncryptionKey, messages.KDCReqBody, error) {
	sname := types.PrincipalName{NameType: nametype.KRB_NT_SRV_HST, NameString: strings.Split(spn, "/")}
	if len(sname.NameString) == 1 {
		sname.NameType = nametype.KRB_NT_PRINCIPAL
	}
	body := messages.KDCReqBody{
		KDCOptions: types.NewKrbFlags(), Realm: c.Realm, SName: sname,
		Till: c.now().Add(10 * time.Hour).Truncate(time.Second), Nonce: randomNonce(),
		EType: slices.Clone(supportedETypes),
	}
	rawBody, err := body.Marshal()
	if err != nil {
		return nil, types.EncryptionKey{}, body, err
	}
	et, err := krbcrypto.GetEtype(tgt.SessionKey.KeyType)
	if err != nil {
		return nil, types.EncryptionKey{}, body, err
	}
	ck, err := et.GetChecksumHash(tgt.SessionKey.KeyValue, rawBody, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM)
	if err != nil {
		return nil, types.EncryptionKey{}, body, err
	}
	subkey, err := randomKey(et.GetETypeID())
	if err != nil {
		return nil, types.EncryptionKey{}, body, err
	}
	now := c.now()
	auth := types.Authenticator{
		AVNO: 5, CRealm: tgt.Realm, CName: tgt.Client,
		Cksum: types.Checksum{CksumType: et.GetHashID(), Checksum: ck},
		Cusec: now.Nanosecond() / 1000, CTime: now.Truncate(time.Second), SubKey: subkey,
	}
	ab, err := auth.Marshal()
	if err != nil {
		return nil, types.EncryptionKey{}, body, err
	}
	encAuth, err := krbcrypto.GetEncryptedData(ab, tgt.SessionKey, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR, 0)
	if err != nil {
		return nil, types.EncryptionKey{}, body, err
	}
	ap := messages.APReq{PVNO: 5, MsgType: msgtype.KRB_AP_REQ, APOptions: types.NewKrbFlags(), Ticket: tgt.Ticket, EncryptedAuthenticator: encAuth}
	apb, err := ap.Marshal()
	if err != nil {
		return nil, types.EncryptionKey{}, body, err
	}
	req, err := marshalKDCReq(asnAppTag.TGSREQ, msgtype.KRB_TGS_REQ, types.PADataSequence{{PADataType: paTypeTGSReq, PADataValue: apb}}, rawBody)
	return req, subkey, body, err
}

func readTGSReply(reply []byte, subkey types.EncryptionKey, nonce int) (*Credential, error) {
	if ke := asKRBError(reply); ke != nil {
		return nil, ke
	}
	var rep messages.TGSRep
	if err := rep.Unmarshal(reply); err != nil {
		return nil, fmt.Errorf("kdc: TGS-REP: %w", err)
	}
	plain, err := decrypt(rep.EncPart, subkey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY)
	if err != nil {
		return nil, fmt.Errorf("kdc: TGS-REP does not decrypt: %w", err)
	}
	var enc messages.EncKDCRepPart
	if err := enc.Unmarshal(plain); err != nil {
		return nil, fmt.Errorf("kdc: EncTGSRepPart: %w", err)
	}
	if enc.Nonce != nonce {
		return nil, errors.New("kdc: TGS-REP nonce does not match")
	}
	return credential(rep.KDCRepFields, enc)
}

// DecryptTicket opens a service ticket with the service's keys (from its
// keytab), as the service would: it proves the KDC encrypted it right.
func DecryptTicket(t messages.Ticket, keys []Key) (messages.EncTicketPart, error) {
	for _, k := range keys {
		if k.EType == t.EncPart.EType && (t.EncPart.KVNO == 0 || k.KVNO == t.EncPart.KVNO) {
			return decryptTicket(t, types.EncryptionKey{KeyType: k.EType, KeyValue: k.Value})
		}
	}
	return messages.EncTicketPart{}, fmt.Errorf("kdc: no key of enctype %d version %d", t.EncPart.EType, t.EncPart.KVNO)
}
