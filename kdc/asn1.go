package kdc

// PKINIT (RFC 4556, 8070, 8636) structures, read and written by hand with
// cryptobyte: DER only, every length bounded by the input, no reflection.
// The PKINIT ASN.1 module uses EXPLICIT TAGS unless a field says IMPLICIT.

import (
	"encoding/asn1"
	"errors"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Object identifiers of PKINIT and CMS.
var (
	oidData            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidEnvelopedData   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidAuthData        = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 1} // id-pkinit-authData
	oidDHKeyData       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 2} // id-pkinit-DHKeyData
	oidRKeyData        = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 3} // id-pkinit-rkeyData
	oidKDFSHA1         = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 6, 1}
	oidKDFSHA256       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 6, 2}
	oidKDFSHA512       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 6, 3}
	oidDHPublicNumber  = asn1.ObjectIdentifier{1, 2, 840, 10046, 2, 1}
	oidAttrContentType = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrDigest      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA1WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidECPublicKey   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidECDSAWithSHA1 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	oidECDSASHA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
)

// Context-specific tags.
func ctx(n int) cbasn1.Tag          { return cbasn1.Tag(n).ContextSpecific().Constructed() }
func ctxPrimitive(n int) cbasn1.Tag { return cbasn1.Tag(n).ContextSpecific() }

// tagGeneralString is the universal tag of KerberosString.
const tagGeneralString = cbasn1.Tag(27)

var errMalformed = errors.New("malformed DER")

// paPKASReq is PA-PK-AS-REQ (RFC 4556 §3.2.1).
type paPKASReq struct {
	// SignedAuthPack is a CMS ContentInfo holding SignedData of an AuthPack.
	SignedAuthPack []byte
	KDCPkID        []byte
}

func parsePAPKASReq(b []byte) (*paPKASReq, error) {
	in := cryptobyte.String(b)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errMalformed
	}
	r := &paPKASReq{}
	if !seq.ReadASN1Bytes(&r.SignedAuthPack, ctxPrimitive(0)) {
		return nil, errMalformed
	}
	var skip cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&skip, &present, ctx(1)) { // trustedCertifiers
		return nil, errMalformed
	}
	if !seq.ReadOptionalASN1(&skip, &present, ctxPrimitive(2)) {
		return nil, errMalformed
	}
	if present {
		r.KDCPkID = skip
	}
	return r, nil // extensions after the known fields are ignored
}

func marshalPAPKASReq(signedAuthPack []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(ctxPrimitive(0), func(b *cryptobyte.Builder) { b.AddBytes(signedAuthPack) })
	})
	return b.Bytes()
}

// authPack is AuthPack with its PKAuthenticator (RFC 4556 §3.2.1, RFC 8070
// freshnessToken, RFC 8636 supportedKDFs).
type authPack struct {
	CUsec          int64
	CTime          time.Time
	Nonce          int64
	PAChecksum     []byte // nil when absent
	FreshnessToken []byte // nil when absent
	// ClientPublicValue is the client's DH SubjectPublicKeyInfo DER; nil in
	// public-key encryption mode.
	ClientPublicValue []byte
	// SupportedCMSTypes are AlgorithmIdentifier DERs.
	SupportedCMSTypes [][]byte
	ClientDHNonce     []byte
	SupportedKDFs     []asn1.ObjectIdentifier
}

func parseAuthPack(b []byte) (*authPack, error) {
	in := cryptobyte.String(b)
	var seq, pkAuth cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errMalformed
	}
	var wrap cryptobyte.String
	if !seq.ReadASN1(&wrap, ctx(0)) || !wrap.ReadASN1(&pkAuth, cbasn1.SEQUENCE) || !wrap.Empty() {
		return nil, errMalformed
	}
	a := &authPack{}
	if err := parsePKAuthenticator(pkAuth, a); err != nil {
		return nil, err
	}
	spki := func(w *cryptobyte.String) bool {
		return w.ReadASN1Element((*cryptobyte.String)(&a.ClientPublicValue), cbasn1.SEQUENCE)
	}
	cmsTypes := func(w *cryptobyte.String) bool {
		return readSequenceOf(w, maxListLen, func(list *cryptobyte.String) bool {
			var alg cryptobyte.String
			if !list.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
				return false
			}
			a.SupportedCMSTypes = append(a.SupportedCMSTypes, alg)
			return true
		})
	}
	kdfs := func(w *cryptobyte.String) bool {
		return readSequenceOf(w, maxListLen, func(list *cryptobyte.String) bool {
			var kdf, t cryptobyte.String
			var oid asn1.ObjectIdentifier
			if !list.ReadASN1(&kdf, cbasn1.SEQUENCE) || !kdf.ReadASN1(&t, ctx(0)) ||
				!t.ReadASN1ObjectIdentifier(&oid) || !t.Empty() {
				return false
			}
			a.SupportedKDFs = append(a.SupportedKDFs, oid)
			return true
		})
	}
	if !readOptionalExplicit(&seq, 1, spki) || !readOptionalExplicit(&seq, 2, cmsTypes) ||
		!readOptionalExplicit(&seq, 3, readOctets(&a.ClientDHNonce)) || !readOptionalExplicit(&seq, 4, kdfs) {
		return nil, errMalformed
	}
	return a, nil
}

// maxListLen bounds the SEQUENCE OF lists a client sends (CMS types,
// KDFs), so that a request cannot make the KDC hold an unbounded list.
const maxListLen = 64

// readOptionalExplicit reads an OPTIONAL [tag] EXPLICIT field of s: when
// present, read must consume all of its content. It reports whether s was
// well-formed.
func readOptionalExplicit(s *cryptobyte.String, tag int, read func(w *cryptobyte.String) bool) bool {
	var w cryptobyte.String
	var present bool
	if !s.ReadOptionalASN1(&w, &present, ctx(tag)) {
		return false
	}
	return !present || (read(&w) && w.Empty())
}

// readSequenceOf reads a SEQUENCE OF with at most max elements from s,
// calling read for each element.
func readSequenceOf(s *cryptobyte.String, max int, read func(list *cryptobyte.String) bool) bool {
	var list cryptobyte.String
	if !s.ReadASN1(&list, cbasn1.SEQUENCE) {
		return false
	}
	for n := 0; !list.Empty(); n++ {
		if n >= max || !read(&list) {
			return false
		}
	}
	return true
}

// readOctets reads an OCTET STRING into *dst, non-nil even when empty
// (nil means absent).
func readOctets(dst *[]byte) func(w *cryptobyte.String) bool {
	return func(w *cryptobyte.String) bool {
		if !w.ReadASN1Bytes(dst, cbasn1.OCTET_STRING) {
			return false
		}
		if *dst == nil {
			*dst = []byte{}
		}
		return true
	}
}

func parsePKAuthenticator(s cryptobyte.String, a *authPack) error {
	var w cryptobyte.String
	if !s.ReadASN1(&w, ctx(0)) || !w.ReadASN1Integer(&a.CUsec) || !w.Empty() {
		return errMalformed
	}
	if !s.ReadASN1(&w, ctx(1)) || !w.ReadASN1GeneralizedTime(&a.CTime) || !w.Empty() {
		return errMalformed
	}
	if !s.ReadASN1(&w, ctx(2)) || !w.ReadASN1Integer(&a.Nonce) || !w.Empty() {
		return errMalformed
	}
	if !readOptionalExplicit(&s, 3, readOctets(&a.PAChecksum)) || !readOptionalExplicit(&s, 4, readOctets(&a.FreshnessToken)) {
		return errMalformed
	}
	if a.CUsec < 0 || a.CUsec > 999999 || a.Nonce < 0 || a.Nonce > 0xffffffff {
		return errMalformed
	}
	return nil
}

func (a *authPack) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(ctx(0), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(ctx(0), func(b *cryptobyte.Builder) { b.AddASN1Int64(a.CUsec) })
				b.AddASN1(ctx(1), func(b *cryptobyte.Builder) { b.AddASN1GeneralizedTime(a.CTime.UTC()) })
				b.AddASN1(ctx(2), func(b *cryptobyte.Builder) { b.AddASN1Int64(a.Nonce) })
				if a.PAChecksum != nil {
					b.AddASN1(ctx(3), func(b *cryptobyte.Builder) { b.AddASN1OctetString(a.PAChecksum) })
				}
				if a.FreshnessToken != nil {
					b.AddASN1(ctx(4), func(b *cryptobyte.Builder) { b.AddASN1OctetString(a.FreshnessToken) })
				}
			})
		})
		if a.ClientPublicValue != nil {
			b.AddASN1(ctx(1), func(b *cryptobyte.Builder) { b.AddBytes(a.ClientPublicValue) })
		}
		if len(a.SupportedCMSTypes) > 0 {
			b.AddASN1(ctx(2), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for _, t := range a.SupportedCMSTypes {
						b.AddBytes(t)
					}
				})
			})
		}
		if a.ClientDHNonce != nil {
			b.AddASN1(ctx(3), func(b *cryptobyte.Builder) { b.AddASN1OctetString(a.ClientDHNonce) })
		}
		if len(a.SupportedKDFs) > 0 {
			b.AddASN1(ctx(4), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for _, k := range a.SupportedKDFs {
						addKDFAlgorithmID(b, k)
					}
				})
			})
		}
	})
	return b.Bytes()
}

// addKDFAlgorithmID writes KDFAlgorithmId ::= SEQUENCE { kdf-id [0] OID }.
func addKDFAlgorithmID(b *cryptobyte.Builder, oid asn1.ObjectIdentifier) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(ctx(0), func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oid) })
	})
}

// dhDomain is a finite-field Diffie-Hellman group (RFC 3279 DomainParameters).
type dhDomain struct {
	P, G, Q *big.Int
}

// parseDHSubjectPublicKeyInfo reads a dhpublicnumber SubjectPublicKeyInfo:
// the domain parameters and the public value y.
func parseDHSubjectPublicKeyInfo(b []byte) (dom dhDomain, y *big.Int, err error) {
	in := cryptobyte.String(b)
	var spki, alg, params cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&spki, cbasn1.SEQUENCE) || !in.Empty() ||
		!spki.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return dom, nil, errMalformed
	}
	if !oid.Equal(oidDHPublicNumber) {
		return dom, nil, errors.New("client public value is not a dhpublicnumber key")
	}
	if !alg.ReadASN1(&params, cbasn1.SEQUENCE) || !alg.Empty() {
		return dom, nil, errMalformed
	}
	dom.P, dom.G = new(big.Int), new(big.Int)
	if !params.ReadASN1Integer(dom.P) || !params.ReadASN1Integer(dom.G) {
		return dom, nil, errMalformed
	}
	if params.PeekASN1Tag(cbasn1.INTEGER) {
		dom.Q = new(big.Int)
		if !params.ReadASN1Integer(dom.Q) {
			return dom, nil, errMalformed
		}
	}
	var bits asn1.BitString
	if !spki.ReadASN1BitString(&bits) || !spki.Empty() || bits.BitLength%8 != 0 {
		return dom, nil, errMalformed
	}
	inner := cryptobyte.String(bits.Bytes)
	y = new(big.Int)
	if !inner.ReadASN1Integer(y) || !inner.Empty() {
		return dom, nil, errMalformed
	}
	return dom, y, nil
}

// addDHDomain writes AlgorithmIdentifier { dhpublicnumber, DomainParameters }.
func addDHAlgorithmIdentifier(b *cryptobyte.Builder, dom dhDomain) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidDHPublicNumber)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1BigInt(dom.P)
			b.AddASN1BigInt(dom.G)
			if dom.Q != nil {
				b.AddASN1BigInt(dom.Q)
			}
		})
	})
}

func marshalDHSubjectPublicKeyInfo(dom dhDomain, y *big.Int) ([]byte, error) {
	var inner cryptobyte.Builder
	inner.AddASN1BigInt(y)
	yDER, err := inner.Bytes()
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addDHAlgorithmIdentifier(b, dom)
		b.AddASN1BitString(yDER)
	})
	return b.Bytes()
}

// marshalTDDHParameters writes TD-DH-PARAMETERS ::= SEQUENCE OF
// AlgorithmIdentifier, the groups the KDC accepts, preferred first.
func marshalTDDHParameters(groups []dhDomain) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, g := range groups {
			addDHAlgorithmIdentifier(b, g)
		}
	})
	return b.Bytes()
}

func parseTDDHParameters(b []byte) ([]dhDomain, error) {
	in := cryptobyte.String(b)
	var list cryptobyte.String
	if !in.ReadASN1(&list, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errMalformed
	}
	var out []dhDomain
	for !list.Empty() && len(out) < 16 {
		var alg, params cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !list.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) ||
			!alg.ReadASN1(&params, cbasn1.SEQUENCE) {
			return nil, errMalformed
		}
		if !oid.Equal(oidDHPublicNumber) {
			continue
		}
		d := dhDomain{P: new(big.Int), G: new(big.Int)}
		if !params.ReadASN1Integer(d.P) || !params.ReadASN1Integer(d.G) {
			return nil, errMalformed
		}
		out = append(out, d)
	}
	return out, nil
}

// kdcDHKeyInfo is KDCDHKeyInfo (RFC 4556 §3.2.3.1), the content the KDC
// signs in DH mode.
type kdcDHKeyInfo struct {
	PublicKey *big.Int // the KDC's DH public value
	Nonce     int64    // the nonce of the client's PKAuthenticator
	// Expiration is dhKeyExpiration; zero when absent.
	Expiration time.Time
}

func (k *kdcDHKeyInfo) marshal() ([]byte, error) {
	var inner cryptobyte.Builder
	inner.AddASN1BigInt(k.PublicKey)
	yDER, err := inner.Bytes()
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(ctx(0), func(b *cryptobyte.Builder) { b.AddASN1BitString(yDER) })
		b.AddASN1(ctx(1), func(b *cryptobyte.Builder) { b.AddASN1Int64(k.Nonce) })
		if !k.Expiration.IsZero() {
			b.AddASN1(ctx(2), func(b *cryptobyte.Builder) { b.AddASN1GeneralizedTime(k.Expiration.UTC()) })
		}
	})
	return b.Bytes()
}

func parseKDCDHKeyInfo(b []byte) (*kdcDHKeyInfo, error) {
	in := cryptobyte.String(b)
	var seq, w cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errMalformed
	}
	var bits asn1.BitString
	if !seq.ReadASN1(&w, ctx(0)) || !w.ReadASN1BitString(&bits) || !w.Empty() || bits.BitLength%8 != 0 {
		return nil, errMalformed
	}
	y := cryptobyte.String(bits.Bytes)
	k := &kdcDHKeyInfo{PublicKey: new(big.Int)}
	if !y.ReadASN1Integer(k.PublicKey) || !y.Empty() {
		return nil, errMalformed
	}
	if !seq.ReadASN1(&w, ctx(1)) || !w.ReadASN1Integer(&k.Nonce) || !w.Empty() {
		return nil, errMalformed
	}
	if !readOptionalExplicit(&seq, 2, func(w *cryptobyte.String) bool { return w.ReadASN1GeneralizedTime(&k.Expiration) }) {
		return nil, errMalformed
	}
	return k, nil
}

// paPKASRep is PA-PK-AS-REP (RFC 4556 §3.2.3): dhInfo in DH mode, or
// encKeyPack in public-key encryption mode.
type paPKASRep struct {
	DHSignedData  []byte // ContentInfo DER of SignedData(KDCDHKeyInfo)
	ServerDHNonce []byte
	KDF           asn1.ObjectIdentifier // nil when absent
	EncKeyPack    []byte                // ContentInfo DER of EnvelopedData
}

func (r *paPKASRep) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	if r.EncKeyPack != nil {
		b.AddASN1(ctxPrimitive(1), func(b *cryptobyte.Builder) { b.AddBytes(r.EncKeyPack) })
		return b.Bytes()
	}
	b.AddASN1(ctx(0), func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(ctxPrimitive(0), func(b *cryptobyte.Builder) { b.AddBytes(r.DHSignedData) })
			if r.ServerDHNonce != nil {
				b.AddASN1(ctx(1), func(b *cryptobyte.Builder) { b.AddASN1OctetString(r.ServerDHNonce) })
			}
			if r.KDF != nil {
				b.AddASN1(ctx(2), func(b *cryptobyte.Builder) { addKDFAlgorithmID(b, r.KDF) })
			}
		})
	})
	return b.Bytes()
}

func parsePAPKASRep(b []byte) (*paPKASRep, error) {
	in := cryptobyte.String(b)
	r := &paPKASRep{}
	if in.PeekASN1Tag(ctxPrimitive(1)) {
		if !in.ReadASN1Bytes(&r.EncKeyPack, ctxPrimitive(1)) || !in.Empty() {
			return nil, errMalformed
		}
		return r, nil
	}
	var w, seq cryptobyte.String
	if !in.ReadASN1(&w, ctx(0)) || !in.Empty() || !w.ReadASN1(&seq, cbasn1.SEQUENCE) || !w.Empty() {
		return nil, errMalformed
	}
	if !seq.ReadASN1Bytes(&r.DHSignedData, ctxPrimitive(0)) {
		return nil, errMalformed
	}
	var present bool
	if !seq.ReadOptionalASN1(&w, &present, ctx(1)) {
		return nil, errMalformed
	}
	if present && !w.ReadASN1Bytes(&r.ServerDHNonce, cbasn1.OCTET_STRING) {
		return nil, errMalformed
	}
	if !seq.ReadOptionalASN1(&w, &present, ctx(2)) {
		return nil, errMalformed
	}
	if present {
		var kdf, t cryptobyte.String
		if !w.ReadASN1(&kdf, cbasn1.SEQUENCE) || !kdf.ReadASN1(&t, ctx(0)) || !t.ReadASN1ObjectIdentifier(&r.KDF) {
			return nil, errMalformed
		}
	}
	return r, nil
}

// marshalKRB5PrincipalName writes KRB5PrincipalName (RFC 4556 §3.2.2):
// SEQUENCE { realm [0] Realm, principalName [1] PrincipalName }.
func marshalKRB5PrincipalName(realm string, nameType int32, components []string) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(ctx(0), func(b *cryptobyte.Builder) {
			b.AddASN1(tagGeneralString, func(b *cryptobyte.Builder) { b.AddBytes([]byte(realm)) })
		})
		b.AddASN1(ctx(1), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(ctx(0), func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(nameType)) })
				b.AddASN1(ctx(1), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						for _, c := range components {
							b.AddASN1(tagGeneralString, func(b *cryptobyte.Builder) { b.AddBytes([]byte(c)) })
						}
					})
				})
			})
		})
	})
	return b.Bytes()
}

// marshalOtherInfo writes the RFC 8636 OtherInfo for the KDF:
// SEQUENCE { algorithmID, [0] OCTET STRING partyUInfo, [1] OCTET STRING
// partyVInfo, [2] OCTET STRING suppPubInfo }, where suppPubInfo is the DER
// of PkinitSuppPubInfo { [0] enctype, [1] as-REQ, [2] pk-as-rep }.
func marshalOtherInfo(kdf asn1.ObjectIdentifier, partyU, partyV []byte, etype int32, asReq, pkASRep []byte) ([]byte, error) {
	var sp cryptobyte.Builder
	sp.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(ctx(0), func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(etype)) })
		b.AddASN1(ctx(1), func(b *cryptobyte.Builder) { b.AddASN1OctetString(asReq) })
		b.AddASN1(ctx(2), func(b *cryptobyte.Builder) { b.AddASN1OctetString(pkASRep) })
	})
	suppPub, err := sp.Bytes()
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(kdf) })
		b.AddASN1(ctx(0), func(b *cryptobyte.Builder) { b.AddASN1OctetString(partyU) })
		b.AddASN1(ctx(1), func(b *cryptobyte.Builder) { b.AddASN1OctetString(partyV) })
		b.AddASN1(ctx(2), func(b *cryptobyte.Builder) { b.AddASN1OctetString(suppPub) })
	})
	return b.Bytes()
}
