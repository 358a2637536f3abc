package kdc

import (
	"context"
	"errors"
	"time"

	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// handleTGS answers a TGS-REQ (RFC 4120 §3.3): the TGT and authenticator
// in PA-TGS-REQ are checked, the authenticator's checksum over the
// KDC-REQ-BODY exactly as received, and a ticket for the service is issued.
func (k *KDC) handleTGS(ctx context.Context, req *kdcReq, reqHash [32]byte) ([]byte, *Error) {
	b := &req.body
	now := k.now()
	if b.Realm != k.realm {
		return nil, refuse(ErrWrongRealm, "realm %q is not %s", b.Realm, k.realm)
	}
	if len(b.SName.NameString) == 0 {
		return nil, refuse(ErrSPrincipalUnknown, "no server name")
	}
	pa, ok := req.pa(paTypeTGSReq)
	if !ok {
		return nil, refuse(ErrPADataTypeNoSupp, "TGS-REQ without PA-TGS-REQ")
	}
	var ap messages.APReq
	if err := safely(func() error { return ap.Unmarshal(pa.PADataValue) }); err != nil {
		return nil, refuseQuiet(ErrGeneric, "malformed AP-REQ", "PA-TGS-REQ: %v", err)
	}
	if ap.PVNO != 5 {
		return nil, refuse(ErrBadVersion, "AP-REQ version %d", ap.PVNO)
	}
	tkt := ap.Ticket
	if tkt.Realm != k.realm || !k.isKrbtgt(tkt.SName) {
		return nil, refuse(ErrNotUs, "the ticket in PA-TGS-REQ is for %s, not a TGT of %s", principalString(tkt.SName, tkt.Realm), k.realm)
	}
	tgsKey, ok := k.cfg.Store.krbtgt().keyVersion(tkt.EncPart.EType, tkt.EncPart.KVNO)
	if !ok {
		return nil, refuse(ErrBadKeyVer, "no krbtgt key of enctype %d version %d", tkt.EncPart.EType, tkt.EncPart.KVNO)
	}
	et, err := decryptTicket(tkt, types.EncryptionKey{KeyType: tgsKey.EType, KeyValue: tgsKey.Value})
	if err != nil {
		return nil, refuseQuiet(ErrIntegrity, "ticket integrity check failed", "TGT: %v", err)
	}
	if types.IsFlagSet(&et.Flags, flags.Invalid) || (!et.StartTime.IsZero() && et.StartTime.After(now.Add(k.cfg.ClockSkew))) {
		return nil, refuse(ErrTicketNotYetValid, "TGT not yet valid")
	}
	if et.EndTime.Before(now.Add(-k.cfg.ClockSkew)) {
		return nil, refuse(ErrTicketExpired, "TGT of %s expired %s", principalString(et.CName, et.CRealm), et.EndTime.Format(time.RFC3339))
	}
	plain, err := decrypt(ap.EncryptedAuthenticator, et.Key, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR)
	if err != nil {
		return nil, refuseQuiet(ErrIntegrity, "authenticator integrity check failed", "authenticator: %v", err)
	}
	var auth types.Authenticator
	if err := safely(func() error { return auth.Unmarshal(plain) }); err != nil {
		return nil, refuseQuiet(ErrGeneric, "malformed authenticator", "authenticator: %v", err)
	}
	client := principalString(et.CName, et.CRealm)
	if auth.CRealm != et.CRealm || !auth.CName.Equal(et.CName) {
		return nil, refuse(ErrBadMatch, "authenticator for %s in a ticket of %s", principalString(auth.CName, auth.CRealm), client)
	}
	ctime := auth.CTime.Add(time.Duration(auth.Cusec) * time.Microsecond)
	if !k.withinSkew(ctime, now) {
		return nil, refuse(ErrSkew, "authenticator time %s is not within %v of the KDC's %s", ctime.UTC().Format(time.RFC3339), k.cfg.ClockSkew, now.Format(time.RFC3339))
	}
	if e := checkTGSChecksum(auth.Cksum, et.Key, req.rawBody); e != nil {
		return nil, e
	}
	if e := replayError(k.replay.check(ap.EncryptedAuthenticator.Cipher, reqHash, now), "the authenticator"); e != nil {
		return nil, e
	}
	// The account may have been disabled or deleted since its TGT was
	// issued: as AD does, every TGS-REQ looks at it again.
	if et.CRealm == k.realm {
		acct, err := k.lookupClient(ctx, et.CName)
		switch {
		case errors.Is(err, ErrUnknownPrincipal):
			return nil, refuse(ErrCPrincipalUnknown, "client %s no longer exists", client)
		case err != nil:
			return nil, refuseQuiet(ErrServiceUnavailable, "directory unavailable", "looking up %s: %v", client, err)
		case acct.Disabled:
			return nil, refuse(ErrClientRevoked, "account %s is disabled", acct.Name)
		}
	}

	if req.additionalTickets {
		return nil, refuse(ErrBadOption, "additional tickets (user-to-user) are not supported")
	}
	for _, f := range []int{flags.Validate, flags.EncTktInSkey, flags.Forwarded, flags.Proxy, flags.PostDated} {
		if types.IsFlagSet(&b.KDCOptions, f) {
			return nil, refuse(ErrBadOption, "KDC option %d is not supported", f)
		}
	}
	var server *Principal
	if k.isKrbtgt(b.SName) {
		server = k.cfg.Store.krbtgt()
	} else {
		server, err = k.principals.LookupService(ctx, nameOf(b.SName))
		if errors.Is(err, ErrUnknownPrincipal) {
			return nil, refuse(ErrSPrincipalUnknown, "server %s is unknown", principalString(b.SName, b.Realm))
		}
		if err != nil {
			return nil, refuseQuiet(ErrServiceUnavailable, "directory unavailable", "looking up %s: %v", nameOf(b.SName), err)
		}
	}
	etype, ok := chooseSessionEType(b.EType, server)
	if !ok {
		return nil, refuse(ErrETypeNoSupp, "no supported enctype among %v", b.EType)
	}
	session, err := newSessionKey(etype)
	if err != nil {
		return nil, refuseQuiet(ErrGeneric, "internal error", "session key: %v", err)
	}

	start := kerberosTime(now)
	tf := types.NewKrbFlags()
	if types.IsFlagSet(&et.Flags, flags.PreAuthent) {
		types.SetFlag(&tf, flags.PreAuthent)
	}
	if types.IsFlagSet(&et.Flags, flags.HWAuthent) {
		types.SetFlag(&tf, flags.HWAuthent)
	}
	if types.IsFlagSet(&b.KDCOptions, flags.Forwardable) && types.IsFlagSet(&et.Flags, flags.Forwardable) {
		types.SetFlag(&tf, flags.Forwardable)
	}
	end := minTime(et.EndTime, start.Add(k.cfg.TicketLifetime))
	var renewTill time.Time
	if types.IsFlagSet(&b.KDCOptions, flags.Renew) {
		if !types.IsFlagSet(&et.Flags, flags.Renewable) || et.RenewTill.Before(now) {
			return nil, refuse(ErrBadOption, "ticket is not renewable")
		}
		end = minTime(et.RenewTill, start.Add(k.cfg.TicketLifetime))
		renewTill = et.RenewTill
		types.SetFlag(&tf, flags.Renewable)
	} else if types.IsFlagSet(&b.KDCOptions, flags.Renewable) && types.IsFlagSet(&et.Flags, flags.Renewable) {
		renewTill = et.RenewTill
		if !b.RTime.IsZero() {
			renewTill = minTime(renewTill, kerberosTime(b.RTime))
		}
		if renewTill.After(end) {
			types.SetFlag(&tf, flags.Renewable)
		} else {
			renewTill = time.Time{}
		}
	}
	if !b.Till.IsZero() && b.Till.After(start) && b.Till.Before(end) {
		end = kerberosTime(b.Till)
	}
	if !end.After(start) {
		return nil, refuse(ErrTicketExpired, "the TGT has no lifetime left")
	}
	newTkt, err := k.sealTicket(server, b.SName, messages.EncTicketPart{
		Flags: tf, Key: session, CRealm: et.CRealm, CName: et.CName,
		Transited: messages.TransitedEncoding{Contents: []byte{}},
		AuthTime:  et.AuthTime, StartTime: start, EndTime: end, RenewTill: renewTill,
		CAddr: et.CAddr,
	})
	if err != nil {
		return nil, refuseQuiet(ErrGeneric, "internal error", "sealing the ticket: %v", err)
	}
	enc := messages.EncKDCRepPart{
		Key:      session,
		LastReqs: []messages.LastReq{{LRType: 0, LRValue: et.AuthTime}},
		Nonce:    b.Nonce,
		Flags:    tf,
		AuthTime: et.AuthTime, StartTime: start, EndTime: end, RenewTill: renewTill,
		SRealm: k.realm, SName: b.SName, CAddr: et.CAddr,
	}
	replyKey, usage := et.Key, uint32(keyusage.TGS_REP_ENCPART_SESSION_KEY)
	if len(auth.SubKey.KeyValue) > 0 {
		set, err := krbcrypto.GetEtype(auth.SubKey.KeyType)
		if err != nil || len(auth.SubKey.KeyValue) != keySeedBytes(set) {
			return nil, refuse(ErrETypeNoSupp, "authenticator subkey of enctype %d and %d bytes", auth.SubKey.KeyType, len(auth.SubKey.KeyValue))
		}
		replyKey, usage = auth.SubKey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY
	}
	ed, err := sealRepPart(enc, asnAppTag.EncTGSRepPart, replyKey, usage)
	if err != nil {
		return nil, refuseQuiet(ErrGeneric, "internal error", "sealing the reply: %v", err)
	}
	rep := messages.TGSRep{KDCRepFields: messages.KDCRepFields{
		PVNO: 5, MsgType: msgtype.KRB_TGS_REP, CRealm: et.CRealm, CName: et.CName, Ticket: newTkt, EncPart: ed,
	}}
	out, err := rep.Marshal()
	if err != nil {
		return nil, refuseQuiet(ErrGeneric, "internal error", "encoding the reply: %v", err)
	}
	k.log.Info("kdc: issued", "exchange", "TGS", "peer", req.peer, "client", client, "server", principalString(b.SName, b.Realm), "etype", etype)
	return out, nil
}

// checkTGSChecksum verifies the authenticator's checksum over the raw
// KDC-REQ-BODY: a keyed checksum of the TGT session key's enctype, key
// usage 6.
func checkTGSChecksum(ck types.Checksum, key types.EncryptionKey, rawBody []byte) *Error {
	if ck.CksumType == 0 && len(ck.Checksum) == 0 {
		return refuse(ErrInappChecksum, "the authenticator has no checksum of the request body")
	}
	et, err := krbcrypto.GetChksumEtype(ck.CksumType)
	if err != nil {
		return refuse(ErrSumTypeNoSupp, "checksum type %d is not supported", ck.CksumType)
	}
	if et.GetETypeID() != key.KeyType {
		return refuse(ErrInappChecksum, "checksum type %d does not go with the session key's enctype %d", ck.CksumType, key.KeyType)
	}
	if !et.VerifyChecksum(key.KeyValue, rawBody, ck.Checksum, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM) {
		return refuse(ErrModified, "the authenticator's checksum does not match the request body")
	}
	return nil
}
