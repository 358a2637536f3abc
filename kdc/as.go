package kdc

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

var errNoKrbtgtKey = errors.New("kdc: no krbtgt key")

// asContext is an AS exchange in progress.
type asContext struct {
	req     *kdcReq
	reqHash [32]byte
	now     time.Time
	client  *Principal
	server  *Principal
	// replyKey encrypts the EncASRepPart; replyPA goes in the AS-REP.
	replyKey types.EncryptionKey
	replyPA  []types.PAData
	etype    int32 // the reply key's and session key's enctype
	method   string
}

func (k *KDC) handleAS(ctx context.Context, req *kdcReq, reqHash [32]byte) ([]byte, *Error) {
	b := &req.body
	if b.Realm != k.realm {
		return nil, refuse(ErrWrongRealm, "realm %q is not %s", b.Realm, k.realm)
	}
	if len(b.CName.NameString) == 0 || len(b.SName.NameString) == 0 {
		return nil, refuse(ErrCPrincipalUnknown, "no client or server name")
	}
	a := &asContext{req: req, reqHash: reqHash, now: k.now()}
	var err error
	a.client, err = k.lookupClient(ctx, b.CName)
	if errors.Is(err, ErrUnknownPrincipal) {
		return nil, refuse(ErrCPrincipalUnknown, "client %s is unknown", principalString(b.CName, b.Realm))
	}
	if err != nil {
		return nil, refuseQuiet(ErrServiceUnavailable, "directory unavailable", "looking up %s: %v", nameOf(b.CName), err)
	}
	if a.client.Disabled {
		return nil, refuse(ErrClientRevoked, "account %s is disabled", a.client.Name)
	}
	if k.isKrbtgt(b.SName) {
		a.server = k.cfg.Store.krbtgt()
	} else {
		a.server, err = k.principals.LookupService(ctx, nameOf(b.SName))
		if errors.Is(err, ErrUnknownPrincipal) {
			return nil, refuse(ErrSPrincipalUnknown, "server %s is unknown", principalString(b.SName, b.Realm))
		}
		if err != nil {
			return nil, refuseQuiet(ErrServiceUnavailable, "directory unavailable", "looking up %s: %v", nameOf(b.SName), err)
		}
	}
	var ok bool
	if a.etype, ok = chooseSessionEType(b.EType, a.server); !ok {
		return nil, refuse(ErrETypeNoSupp, "no supported enctype among %v", b.EType)
	}
	if req.additionalTickets || types.IsFlagSet(&b.KDCOptions, flags.PostDated) || types.IsFlagSet(&b.KDCOptions, flags.EncTktInSkey) ||
		types.IsFlagSet(&b.KDCOptions, flags.Renew) || types.IsFlagSet(&b.KDCOptions, flags.Validate) {
		return nil, refuse(ErrBadOption, "option not supported in an AS-REQ")
	}

	switch {
	case hasPA(req, paTypePKASReq):
		pa, _ := req.pa(paTypePKASReq)
		if kerr := k.pkinit(a, pa.PADataValue); kerr != nil {
			return nil, kerr
		}
	case hasPA(req, paTypeEncTimestamp):
		pa, _ := req.pa(paTypeEncTimestamp)
		if kerr := k.encTimestamp(a, pa.PADataValue); kerr != nil {
			return nil, kerr
		}
	default:
		return nil, k.preauthRequired(a)
	}
	reply, err := k.issueAS(a)
	if err != nil {
		return nil, refuseQuiet(ErrGeneric, "internal error", "issuing the ticket: %v", err)
	}
	k.log.Info("kdc: issued", "exchange", "AS", "peer", req.peer, "client", principalString(b.CName, b.Realm),
		"account", a.client.Name, "server", principalString(b.SName, b.Realm), "preauth", a.method, "etype", a.etype)
	return reply, nil
}

func hasPA(req *kdcReq, t int32) bool { _, ok := req.pa(t); return ok }

// lookupClient finds the client of an AS-REQ: enterprise names (and any
// single-component name with '@') are UPNs, others login names.
func (k *KDC) lookupClient(ctx context.Context, cname types.PrincipalName) (*Principal, error) {
	name := nameOf(cname)
	if len(name) > 512 {
		return nil, ErrUnknownPrincipal
	}
	if cname.NameType == nametype.KRB_NT_ENTERPRISE && len(cname.NameString) != 1 {
		return nil, ErrUnknownPrincipal
	}
	return k.principals.LookupUser(ctx, name)
}

// preauthRequired answers a request without pre-authentication:
// KDC_ERR_PREAUTH_REQUIRED with METHOD-DATA naming what the client may
// use, and a freshness token.
func (k *KDC) preauthRequired(a *asContext) *Error {
	var md types.PADataSequence
	if k.cfg.Key != nil {
		md = append(md, types.PAData{PADataType: paTypePKASReq, PADataValue: []byte{}})
	}
	if len(a.client.Keys) > 0 {
		md = append(md, types.PAData{PADataType: paTypeEncTimestamp, PADataValue: []byte{}})
		var info types.ETypeInfo2
		for _, e := range a.req.body.EType {
			if _, ok := a.client.key(e); ok && etypeSupported(e) {
				info = append(info, types.ETypeInfo2Entry{EType: e, Salt: k.salt(a.client)})
			}
		}
		if len(info) > 0 {
			b, err := asn1.Marshal(info)
			if err == nil {
				md = append(md, types.PAData{PADataType: paTypeETypeInfo2, PADataValue: b})
			}
		}
	}
	if k.cfg.Key != nil {
		if tok, err := k.freshnessToken(a.now); err == nil {
			md = append(md, types.PAData{PADataType: paTypeASFreshness, PADataValue: tok})
		}
	}
	if len(md) == 0 {
		return refuse(ErrPolicy, "%s has no way to pre-authenticate", a.client.Name)
	}
	edata, err := asn1.Marshal(md)
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "encoding METHOD-DATA: %v", err)
	}
	return &Error{Code: ErrPreauthRequired, Text: "pre-authentication required", Reason: "no pre-authentication in request", EData: edata}
}

// salt is the default salt of a principal's password keys.
func (k *KDC) salt(p *Principal) string { return k.realm + strings.ReplaceAll(p.Name, "/", "") }

// encTimestamp checks PA-ENC-TIMESTAMP (RFC 4120 §5.2.7.2): the time,
// encrypted in the client's long-term key.
func (k *KDC) encTimestamp(a *asContext, value []byte) *Error {
	if len(a.client.Keys) == 0 {
		return refuse(ErrPreauthFailed, "%s has no password; use a smart card", a.client.Name)
	}
	var ed types.EncryptedData
	if err := ed.Unmarshal(value); err != nil {
		return refuseQuiet(ErrPreauthFailed, "malformed PA-ENC-TIMESTAMP", "PA-ENC-TIMESTAMP: %v", err)
	}
	key, ok := a.client.keyVersion(ed.EType, ed.KVNO)
	if !ok {
		return refuse(ErrETypeNoSupp, "%s has no key of enctype %d", a.client.Name, ed.EType)
	}
	ek := types.EncryptionKey{KeyType: key.EType, KeyValue: key.Value}
	plain, err := decrypt(ed, ek, keyusage.AS_REQ_PA_ENC_TIMESTAMP)
	if err != nil {
		return refuseQuiet(ErrPreauthFailed, "pre-authentication failed", "encrypted timestamp of %s does not decrypt (wrong password)", a.client.Name)
	}
	var ts types.PAEncTSEnc
	if _, err := asn1.Unmarshal(plain, &ts); err != nil {
		return refuseQuiet(ErrPreauthFailed, "pre-authentication failed", "encrypted timestamp: %v", err)
	}
	if !k.withinSkew(ts.PATimestamp, a.now) {
		return refuse(ErrSkew, "client time %s is not within %v of the KDC's %s", ts.PATimestamp.Format(time.RFC3339), k.cfg.ClockSkew, a.now.Format(time.RFC3339))
	}
	if e := replayError(k.replay.check(ed.Cipher, a.reqHash, a.now), "the encrypted timestamp"); e != nil {
		return e
	}
	a.replyKey, a.etype, a.method = ek, key.EType, "encrypted-timestamp"
	return nil
}

// issueAS makes the ticket and the AS-REP.
func (k *KDC) issueAS(a *asContext) ([]byte, error) {
	b := &a.req.body
	session, err := newSessionKey(a.etype)
	if err != nil {
		return nil, err
	}
	authTime := kerberosTime(a.now)
	tf := types.NewKrbFlags()
	types.SetFlag(&tf, flags.Initial)
	types.SetFlag(&tf, flags.PreAuthent)
	if types.IsFlagSet(&b.KDCOptions, flags.Forwardable) {
		types.SetFlag(&tf, flags.Forwardable)
	}
	if types.IsFlagSet(&b.KDCOptions, flags.Proxiable) {
		types.SetFlag(&tf, flags.Proxiable)
	}
	end := authTime.Add(k.cfg.TicketLifetime)
	if !b.Till.IsZero() && b.Till.Before(end) && b.Till.After(authTime) {
		end = kerberosTime(b.Till)
	}
	var renewTill time.Time
	maxRenew := authTime.Add(k.cfg.RenewLifetime)
	switch {
	case types.IsFlagSet(&b.KDCOptions, flags.Renewable) && b.RTime.After(authTime):
		renewTill = minTime(kerberosTime(b.RTime), maxRenew)
	case types.IsFlagSet(&b.KDCOptions, flags.RenewableOK) && b.Till.After(end):
		renewTill = minTime(kerberosTime(b.Till), maxRenew)
	}
	if !renewTill.IsZero() && renewTill.After(end) {
		types.SetFlag(&tf, flags.Renewable)
	} else {
		renewTill = time.Time{}
	}
	cname := b.CName
	if cname.NameType == nametype.KRB_NT_ENTERPRISE || types.IsFlagSet(&b.KDCOptions, flags.Canonicalize) {
		cname = types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: strings.Split(a.client.Name, "/")}
	}
	tkt, err := k.sealTicket(a.server, b.SName, messages.EncTicketPart{
		Flags: tf, Key: session, CRealm: k.realm, CName: cname,
		Transited: messages.TransitedEncoding{Contents: []byte{}},
		AuthTime:  authTime, StartTime: authTime, EndTime: end, RenewTill: renewTill,
		CAddr: b.Addresses,
	})
	if err != nil {
		return nil, err
	}
	enc := messages.EncKDCRepPart{
		Key:      session,
		LastReqs: []messages.LastReq{{LRType: 0, LRValue: authTime}},
		Nonce:    b.Nonce,
		Flags:    tf,
		AuthTime: authTime, StartTime: authTime, EndTime: end, RenewTill: renewTill,
		SRealm: k.realm, SName: b.SName, CAddr: b.Addresses,
	}
	ed, err := sealRepPart(enc, asnAppTag.EncASRepPart, a.replyKey, keyusage.AS_REP_ENCPART)
	if err != nil {
		return nil, err
	}
	rep := messages.ASRep{KDCRepFields: messages.KDCRepFields{
		PVNO: 5, MsgType: msgtype.KRB_AS_REP, PAData: a.replyPA,
		CRealm: k.realm, CName: cname, Ticket: tkt, EncPart: ed,
	}}
	return rep.Marshal()
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
