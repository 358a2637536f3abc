package kdc

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/x509"
	"time"

	gasn1 "github.com/jcmturner/gofork/encoding/asn1"
	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"
)

// pkinit checks PA-PK-AS-REQ (RFC 4556 §3.2.2) and, in Diffie-Hellman
// mode, makes the reply key and PA-PK-AS-REP. The order of the checks:
// the CMS signature, then the certificate (validity 71, chain 70, EKU 77,
// revocation 72/73), then the signed content (paChecksum 79, nonce, clock
// skew 37, freshness token), then the mapping to the account (75/66),
// then replay (34), then the DH group (65).
func (k *KDC) pkinit(a *asContext, value []byte) *Error {
	if k.cfg.Key == nil {
		return refuse(ErrPADataTypeNoSupp, "PKINIT is not configured")
	}
	req, err := parsePAPKASReq(value)
	if err != nil {
		return refuseQuiet(ErrPreauthFailed, "malformed PA-PK-AS-REQ", "PA-PK-AS-REQ: %v", err)
	}
	sd, err := parseSignedData(req.SignedAuthPack)
	if err != nil {
		return cmsRefusal(err, "signedAuthPack")
	}
	if !sd.ContentType.Equal(oidAuthData) {
		return refuseQuiet(ErrPreauthFailed, "malformed PA-PK-AS-REQ", "signedAuthPack content type %v is not id-pkinit-authData", sd.ContentType)
	}
	cert, mislabelled, err := sd.verify()
	if err != nil {
		return cmsRefusal(err, "signedAuthPack")
	}
	if mislabelled {
		k.log.Debug("kdc: accepted a CMS signature with a signatureAlgorithm that does not name the key type (MIT 1.20 labels ECDSA as RSA)",
			"sigalg", sd.signer.sigAlg.String(), "certificate", certDescription(cert))
	}
	if e := k.checkClientCertificate(cert, sd.Certificates, a.now); e != nil {
		return e
	}
	ap, err := parseAuthPack(sd.Content)
	if err != nil {
		return refuseQuiet(ErrPreauthFailed, "malformed AuthPack", "AuthPack: %v", err)
	}
	if ap.PAChecksum == nil {
		return refuse(ErrPAChecksumMustBeIncluded, "the PKAuthenticator has no paChecksum")
	}
	sum := sha1.Sum(a.req.rawBody)
	if subtle.ConstantTimeCompare(ap.PAChecksum, sum[:]) != 1 {
		return refuse(ErrPAChecksumMustBeIncluded, "paChecksum does not match the KDC-REQ-BODY")
	}
	if ap.Nonce != int64(uint32(a.req.body.Nonce)) && ap.Nonce != int64(a.req.body.Nonce) {
		return refuse(ErrModified, "PKAuthenticator nonce %d is not the request's %d", ap.Nonce, a.req.body.Nonce)
	}
	ctime := ap.CTime.Add(time.Duration(ap.CUsec) * time.Microsecond)
	if !k.withinSkew(ctime, a.now) {
		return refuse(ErrSkew, "client time %s is not within %v of the KDC's %s",
			ctime.UTC().Format(time.RFC3339), k.cfg.ClockSkew, a.now.Format(time.RFC3339))
	}
	if ap.FreshnessToken != nil {
		if e := k.checkFreshness(ap.FreshnessToken, a.now); e != nil {
			return e
		}
	} else if k.cfg.RequireFreshness {
		return refuse(ErrPreauthFailed, "a freshness token is required")
	}
	mapping, e := k.mapCertificate(cert, a.client)
	if e != nil {
		return e
	}
	if e := replayError(k.replay.check(sd.signer.signature, a.reqHash, a.now), "the signed AuthPack"); e != nil {
		return e
	}
	if ap.ClientPublicValue == nil {
		if e := k.pkinitRSA(a, ap, cert); e != nil {
			return e
		}
		a.method = "pkinit-rsa " + mapping
	} else {
		if e := k.pkinitDH(a, ap); e != nil {
			return e
		}
		a.method = "pkinit-dh " + mapping
	}
	k.log.Info("kdc: PKINIT certificate accepted", "account", a.client.Name, "mapping", mapping, "certificate", certDescription(cert))
	return nil
}

func cmsRefusal(err error, what string) *Error {
	if ce, ok := err.(*cmsError); ok {
		code := ce.code
		if code == ErrGeneric {
			code = ErrPreauthFailed
		}
		return refuseQuiet(code, ErrorName(code), "%s: %s", what, ce.reason)
	}
	return refuseQuiet(ErrPreauthFailed, "pre-authentication failed", "%s: %v", what, err)
}

// pkinitDH is the Diffie-Hellman reply (RFC 4556 §3.2.3.1).
func (k *KDC) pkinitDH(a *asContext, ap *authPack) *Error {
	dom, y, err := parseDHSubjectPublicKeyInfo(ap.ClientPublicValue)
	if err != nil {
		return refuseQuiet(ErrPreauthFailed, "malformed client public value", "clientPublicValue: %v", err)
	}
	group, ok := findGroup(dom)
	if !ok {
		groups := make([]dhDomain, len(acceptedGroups))
		for i, g := range acceptedGroups {
			groups[i] = g.dhDomain
		}
		td, err := marshalTDDHParameters(groups)
		if err != nil {
			return refuseQuiet(ErrGeneric, "internal error", "TD-DH-PARAMETERS: %v", err)
		}
		edata, err := gasn1.Marshal(types.PADataSequence{{PADataType: tdDHParameters, PADataValue: td}})
		if err != nil {
			return refuseQuiet(ErrGeneric, "internal error", "e-data: %v", err)
		}
		e := refuse(ErrDHKeyParameters, "DH group of %d bits not accepted; use MODP group 14 or 16", dom.P.BitLen())
		e.EData = edata
		return e
	}
	if err := group.checkPublic(y); err != nil {
		return refuse(ErrPreauthFailed, "client DH public value out of range")
	}
	key, err := newDHKey(group)
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "DH key: %v", err)
	}
	z, err := key.shared(y)
	if err != nil {
		return refuse(ErrPreauthFailed, "%v", err)
	}
	info, err := (&kdcDHKeyInfo{PublicKey: key.Public, Nonce: ap.Nonce}).marshal()
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "KDCDHKeyInfo: %v", err)
	}
	signed, err := signCMS(oidDHKeyData, info, k.cfg.Key, append([]*x509.Certificate{k.cfg.Certificate}, k.cfg.Chain...))
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "signing the DH reply: %v", err)
	}
	rep := &paPKASRep{DHSignedData: signed, KDF: chooseKDF(ap.SupportedKDFs)}
	repDER, err := rep.marshal()
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "PA-PK-AS-REP: %v", err)
	}
	if rep.KDF != nil {
		b := &a.req.body
		partyU, err1 := marshalKRB5PrincipalName(b.Realm, b.CName.NameType, b.CName.NameString)
		partyV, err2 := marshalKRB5PrincipalName(b.Realm, b.SName.NameType, b.SName.NameString)
		if err1 != nil || err2 != nil {
			return refuseQuiet(ErrGeneric, "internal error", "KDF party names: %v %v", err1, err2)
		}
		other, err := marshalOtherInfo(rep.KDF, partyU, partyV, a.etype, a.req.raw, repDER)
		if err != nil {
			return refuseQuiet(ErrGeneric, "internal error", "KDF OtherInfo: %v", err)
		}
		a.replyKey, err = agilityKDF(rep.KDF, z, other, a.etype)
		if err != nil {
			return refuseQuiet(ErrGeneric, "internal error", "KDF: %v", err)
		}
	} else {
		a.replyKey, err = octetString2Key(append(z, ap.ClientDHNonce...), a.etype)
		if err != nil {
			return refuseQuiet(ErrGeneric, "internal error", "octetstring2key: %v", err)
		}
	}
	a.replyPA = append(a.replyPA, types.PAData{PADataType: paTypePKASRep, PADataValue: repDER})
	return nil
}

// replyKeyPack is ReplyKeyPack (RFC 4556 §3.2.3.2).
type replyKeyPack struct {
	ReplyKey   types.EncryptionKey `asn1:"explicit,tag:0"`
	ASChecksum types.Checksum      `asn1:"explicit,tag:1"`
}

// pkinitRSA is the public-key encryption reply (RFC 4556 §3.2.3.2, the
// Windows 2000 flow): a random reply key and a checksum of the AS-REQ
// under it, in a ReplyKeyPack signed by the KDC, encrypted to the
// client's certificate.
func (k *KDC) pkinitRSA(a *asContext, ap *authPack, cert *x509.Certificate) *Error {
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return refuse(ErrPublicKeyEncryptionNoSupp, "public-key encryption mode needs an RSA certificate; use Diffie-Hellman")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		return refuseQuiet(ErrInconsistentKeyPurpose, "certificate not for key encipherment",
			"client certificate (%s) lacks keyEncipherment for public-key encryption mode", certDescription(cert))
	}
	key, err := randomKey(a.etype)
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "reply key: %v", err)
	}
	et, err := krbcrypto.GetEtype(a.etype)
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "%v", err)
	}
	ck, err := et.GetChecksumHash(key.KeyValue, a.req.raw, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM)
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "asChecksum: %v", err)
	}
	pack, err := gasn1.Marshal(replyKeyPack{ReplyKey: key, ASChecksum: types.Checksum{CksumType: et.GetHashID(), Checksum: ck}})
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "ReplyKeyPack: %v", err)
	}
	signed, err := signCMS(oidRKeyData, pack, k.cfg.Key, append([]*x509.Certificate{k.cfg.Certificate}, k.cfg.Chain...))
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "signing the ReplyKeyPack: %v", err)
	}
	sd, err := signedDataOf(signed)
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "%v", err)
	}
	alg := chooseContentCipher(ap.SupportedCMSTypes)
	k.log.Debug("kdc: public-key mode reply", "content_encryption", alg.String(), "client_cms_types", len(ap.SupportedCMSTypes))
	env, err := envelope(oidSignedData, sd, cert, alg)
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "EnvelopedData: %v", err)
	}
	repDER, err := (&paPKASRep{EncKeyPack: env}).marshal()
	if err != nil {
		return refuseQuiet(ErrGeneric, "internal error", "PA-PK-AS-REP: %v", err)
	}
	a.replyKey = key
	a.replyPA = append(a.replyPA, types.PAData{PADataType: paTypePKASRep, PADataValue: repDER})
	return nil
}
