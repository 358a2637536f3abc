package smime

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Cipher is a content-encryption algorithm.
type Cipher int

const (
	AES256CBC Cipher = iota // enveloped-data, the default
	AES128CBC               // enveloped-data
	AES256GCM               // authEnveloped-data (RFC 5083, 5084)
	AES128GCM               // authEnveloped-data
)

// EncryptOptions vary Encrypt.
type EncryptOptions struct {
	Cipher Cipher
	// OAEP wraps the content key for RSA recipients with RSA-OAEP
	// (SHA-256, MGF1 with SHA-256) instead of PKCS#1 v1.5.
	OAEP bool
}

// ECDHKey is a private key that can do EC Diffie-Hellman: an
// *ecdh.PrivateKey, or an EC key on a card.
type ECDHKey interface {
	ECDH(*ecdh.PublicKey) ([]byte, error)
}

// Encrypt encrypts a mail message for recipients. The Content-* fields and
// the body become the encrypted MIME entity; the other header fields stay
// outside. Each recipient's certificate must hold an RSA key (key
// transport) or an EC key on P-256, P-384 or P-521 (key agreement). Put the
// sender among the recipients so they can read what they sent.
func Encrypt(msg []byte, recipients []*x509.Certificate, opts *EncryptOptions) ([]byte, error) {
	if opts == nil {
		opts = &EncryptOptions{}
	}
	outer, ent, err := entity(msg)
	if err != nil {
		return nil, err
	}
	der, smimeType, err := envelop(ent, recipients, opts)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(outer)+base64Len(len(der))+512)
	b = append(b, outer...)
	b = append(b, "MIME-Version: 1.0\r\n"...)
	return appendPKCS7Mime(b, smimeType, "smime.p7m", der), nil
}

func envelop(content mimeEntity, recipients []*x509.Certificate, opts *EncryptOptions) ([]byte, string, error) {
	if len(recipients) == 0 {
		return nil, "", errors.New("smime: no recipients")
	}
	keyLen := 32
	if opts.Cipher == AES128CBC || opts.Cipher == AES128GCM {
		keyLen = 16
	}
	cek := make([]byte, keyLen)
	if _, err := rand.Read(cek); err != nil {
		return nil, "", err
	}
	defer clear(cek)
	var ris []asn1.RawValue
	for _, r := range recipients {
		ri, err := recipientInfo(r, cek, opts)
		if err != nil {
			return nil, "", fmt.Errorf("smime: recipient %s: %w", describeCert(r), err)
		}
		ris = append(ris, asn1.RawValue{FullBytes: ri})
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, "", err
	}
	n := content.len()
	switch opts.Cipher {
	case AES256CBC, AES128CBC:
		iv := make([]byte, aes.BlockSize)
		if _, err := rand.Read(iv); err != nil {
			return nil, "", err
		}
		oid := oidAES256CBC
		if opts.Cipher == AES128CBC {
			oid = oidAES128CBC
		}
		ivDER, _ := asn1.Marshal(iv)
		alg := pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.RawValue{FullBytes: ivDER}}
		pad := aes.BlockSize - n%aes.BlockSize
		out, ct, err := envelopeDER(oidEnvelopedData, versionFor(recipients), ris, alg, n+pad, 0)
		if err != nil {
			return nil, "", err
		}
		// The plaintext goes where the ciphertext belongs and is encrypted
		// in place: a message of megabytes is copied once.
		content.copyTo(ct)
		for i := n; i < len(ct); i++ {
			ct[i] = byte(pad)
		}
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
		return out, "enveloped-data", nil
	case AES256GCM, AES128GCM:
		nonce := make([]byte, 12)
		if _, err := rand.Read(nonce); err != nil {
			return nil, "", err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, "", err
		}
		oid := oidAES256GCM
		if opts.Cipher == AES128GCM {
			oid = oidAES128GCM
		}
		tagLen := aead.Overhead()
		params, _ := asn1.Marshal(gcmParams{Nonce: nonce, ICVLen: tagLen})
		alg := pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.RawValue{FullBytes: params}}
		out, ct, err := envelopeDER(oidAuthEnvelopedData, 0, ris, alg, n, tagLen)
		if err != nil {
			return nil, "", err
		}
		content.copyTo(ct)
		// Seal in place; the tag it appends over the MAC's TLV header is
		// moved behind that header.
		sealed := aead.Seal(ct[:0], nonce, ct, nil)
		var tag [16]byte
		copy(tag[:], sealed[n:])
		mac := ct[n : n+2+tagLen : n+2+tagLen]
		mac[0], mac[1] = 0x04, byte(tagLen)
		copy(mac[2:], tag[:tagLen])
		return out, "authEnveloped-data", nil
	}
	return nil, "", fmt.Errorf("smime: unknown cipher %d", opts.Cipher)
}

// envelopeDER lays out a ContentInfo holding EnvelopedData (macLen 0) or
// AuthEnvelopedData (then the MAC, an OCTET STRING of macLen bytes, ends
// it) for a ciphertext of ctLen bytes, and returns the whole buffer and
// the window the ciphertext goes into (with room for the MAC behind it).
func envelopeDER(ctype asn1.ObjectIdentifier, version int, ris []asn1.RawValue, alg pkix.AlgorithmIdentifier, ctLen, macLen int) (out, ct []byte, err error) {
	v, err := asn1.Marshal(version)
	if err != nil {
		return nil, nil, err
	}
	set, err := asn1.MarshalWithParams(ris, "set")
	if err != nil {
		return nil, nil, err
	}
	head := append(v, set...) // version and recipientInfos
	ctOID, _ := asn1.Marshal(oidData)
	algDER, err := asn1.Marshal(alg)
	if err != nil {
		return nil, nil, err
	}
	eciPrefix := append(append(ctOID, algDER...), tlvHeader(0x80, ctLen)...)
	tailLen := 0
	if macLen > 0 {
		tailLen = 2 + macLen // a short OCTET STRING
	}
	eciLen := len(eciPrefix) + ctLen
	eciHdr := tlvHeader(0x30, eciLen)
	edLen := len(head) + len(eciHdr) + eciLen + tailLen
	edHdr := tlvHeader(0x30, edLen)
	expHdr := tlvHeader(0xa0, len(edHdr)+edLen)
	typeDER, _ := asn1.Marshal(ctype)
	ciLen := len(typeDER) + len(expHdr) + len(edHdr) + edLen
	ciHdr := tlvHeader(0x30, ciLen)
	out = make([]byte, 0, len(ciHdr)+ciLen)
	for _, p := range [][]byte{ciHdr, typeDER, expHdr, edHdr, head, eciHdr, eciPrefix} {
		out = append(out, p...)
	}
	off := len(out)
	out = out[:off+ctLen+tailLen]
	return out, out[off : off+ctLen : off+ctLen+tailLen], nil
}

func tlvHeader(tag byte, n int) []byte {
	return appendLen([]byte{tag}, n)
}

// versionFor is the EnvelopedData version (RFC 5652 6.1): 2 with a key
// agreement recipient, else 0.
func versionFor(recipients []*x509.Certificate) int {
	for _, r := range recipients {
		if _, ok := r.PublicKey.(*ecdsa.PublicKey); ok {
			return 2
		}
	}
	return 0
}

func describeCert(c *x509.Certificate) string {
	if len(c.EmailAddresses) > 0 {
		return c.EmailAddresses[0]
	}
	return c.Subject.String()
}

// recipientInfo wraps cek for one recipient.
func recipientInfo(cert *x509.Certificate, cek []byte, opts *EncryptOptions) ([]byte, error) {
	rid, err := ridFor(cert)
	if err != nil {
		return nil, err
	}
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		var alg pkix.AlgorithmIdentifier
		var ek []byte
		if opts.OAEP {
			params, err := asn1.Marshal(oaepParams{
				Hash: pkix.AlgorithmIdentifier{Algorithm: oidSHA256},
				MGF:  pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: mustRaw(pkix.AlgorithmIdentifier{Algorithm: oidSHA256})},
			})
			if err != nil {
				return nil, err
			}
			alg = pkix.AlgorithmIdentifier{Algorithm: oidRSAOAEP, Parameters: asn1.RawValue{FullBytes: params}}
			ek, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, cek, nil)
			if err != nil {
				return nil, err
			}
		} else {
			alg = pkix.AlgorithmIdentifier{Algorithm: oidRSAEncryption, Parameters: asn1.NullRawValue}
			ek, err = rsa.EncryptPKCS1v15(rand.Reader, pub, cek)
			if err != nil {
				return nil, err
			}
		}
		return asn1.Marshal(keyTransRecipientInfo{Version: 0, RID: rid, KeyEncryptionAlgorithm: alg, EncryptedKey: ek})
	case *ecdsa.PublicKey:
		return kariFor(pub, rid, cek)
	}
	return nil, fmt.Errorf("cannot encrypt to a %T key", cert.PublicKey)
}

func mustRaw(v any) asn1.RawValue {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(err) // only called with fixed, valid values
	}
	return asn1.RawValue{FullBytes: b}
}

// kariFor makes a KeyAgreeRecipientInfo (RFC 5753): an ephemeral key on the
// recipient's curve, ECDH, the X9.63 KDF with SHA-256 and AES key wrap.
func kariFor(pub *ecdsa.PublicKey, rid asn1.RawValue, cek []byte) ([]byte, error) {
	rpub, err := pub.ECDH()
	if err != nil {
		return nil, err
	}
	eph, err := rpub.Curve().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	z, err := eph.ECDH(rpub)
	if err != nil {
		return nil, err
	}
	defer clear(z)
	wrapOID, kekLen := oidAES256Wrap, 32
	if len(cek) == 16 {
		wrapOID, kekLen = oidAES128Wrap, 16
	}
	wrapAlg := mustRaw(pkix.AlgorithmIdentifier{Algorithm: wrapOID})
	kek, err := x963KDF(sha256.New, z, wrapAlg.FullBytes, nil, kekLen)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	wrapped, err := aesKeyWrap(kek, cek)
	if err != nil {
		return nil, err
	}
	origKey, err := asn1.MarshalWithParams(originatorPublicKey{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidECPublicKey},
		PublicKey: asn1.BitString{Bytes: eph.PublicKey().Bytes(), BitLength: 8 * len(eph.PublicKey().Bytes())},
	}, "tag:1")
	if err != nil {
		return nil, err
	}
	kari, err := asn1.MarshalWithParams(keyAgreeRecipientInfo{
		Version:                3,
		Originator:             asn1.RawValue{FullBytes: explicit0(origKey)},
		KeyEncryptionAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidDHSinglePassSHA256KDF, Parameters: wrapAlg},
		RecipientEncryptedKeys: []recipientEncryptedKey{{RID: rid, EncryptedKey: wrapped}},
	}, "tag:1")
	return kari, err
}

// x963KDF is the ANSI X9.63 KDF as RFC 5753 uses it: hash(Z || counter ||
// ECC-CMS-SharedInfo) with keyInfo the key-wrap algorithm as it appears in
// the message.
func x963KDF(h func() hash.Hash, z, keyInfo, ukm []byte, keyLen int) ([]byte, error) {
	var supp [4]byte
	binary.BigEndian.PutUint32(supp[:], uint32(keyLen*8))
	info, err := asn1.Marshal(eccCMSSharedInfo{KeyInfo: asn1.RawValue{FullBytes: keyInfo}, EntityUInfo: ukm, SuppPubInfo: supp[:]})
	if err != nil {
		return nil, err
	}
	var out []byte
	for counter := uint32(1); len(out) < keyLen; counter++ {
		d := h()
		d.Write(z)
		var c [4]byte
		binary.BigEndian.PutUint32(c[:], counter)
		d.Write(c[:])
		d.Write(info)
		out = d.Sum(out)
	}
	return out[:keyLen], nil
}

var wrapIV = []byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

// aesKeyWrap is RFC 3394 key wrap.
func aesKeyWrap(kek, key []byte) ([]byte, error) {
	if len(key)%8 != 0 || len(key) < 16 {
		return nil, errors.New("key wrap: bad key length")
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(key) / 8
	out := make([]byte, 8+len(key))
	copy(out, wrapIV)
	copy(out[8:], key)
	var buf [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(buf[:8], out[:8])
			copy(buf[8:], out[8*i:8*i+8])
			block.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(out[:8], binary.BigEndian.Uint64(buf[:8])^t)
			copy(out[8*i:], buf[8:])
		}
	}
	return out, nil
}

// aesKeyUnwrap is RFC 3394 key unwrap; a wrong key or tampered input fails
// the integrity check.
func aesKeyUnwrap(kek, wrapped []byte) ([]byte, error) {
	if len(wrapped)%8 != 0 || len(wrapped) < 24 || len(wrapped) > 8+64 {
		return nil, ErrDecrypt
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(wrapped)/8 - 1
	a := binary.BigEndian.Uint64(wrapped[:8])
	r := append([]byte(nil), wrapped[8:]...)
	var buf [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], a^t)
			copy(buf[8:], r[8*(i-1):8*i])
			block.Decrypt(buf[:], buf[:])
			a = binary.BigEndian.Uint64(buf[:8])
			copy(r[8*(i-1):], buf[8:])
		}
	}
	var got [8]byte
	binary.BigEndian.PutUint64(got[:], a)
	if subtle.ConstantTimeCompare(got[:], wrapIV) != 1 {
		clear(r)
		return nil, ErrDecrypt
	}
	return r, nil
}

// Decrypt decrypts an enveloped-data or authEnveloped-data message for the
// recipient whose certificate is cert, with its private key: a
// crypto.Decrypter for RSA, an ECDHKey (or *ecdsa.PrivateKey) for EC. It
// returns the mail's own header fields followed by the decrypted MIME
// entity. A message without an entry for cert is ErrNotForRecipient.
func Decrypt(msg []byte, key crypto.PrivateKey, cert *x509.Certificate) ([]byte, error) {
	m, err := parseMessage(canonicalCRLF(msg))
	if err != nil {
		return nil, err
	}
	t, params, err := m.mediaType()
	if err != nil {
		return nil, err
	}
	if t != "application/pkcs7-mime" && t != "application/x-pkcs7-mime" {
		return nil, malformed("S/MIME message", "%s is not an encrypted message", t)
	}
	switch st := strings.ToLower(params["smime-type"]); st {
	case "enveloped-data", "authenveloped-data", "":
	default:
		return nil, malformed("S/MIME message", "smime-type %q is not enveloped-data", params["smime-type"])
	}
	der, err := pkcs7Part("enveloped-data", m)
	if err != nil {
		return nil, err
	}
	content, err := DecryptCMS(der, key, cert)
	if err != nil {
		return nil, err
	}
	return append(m.outer(), content...), nil
}

// DecryptCMS decrypts a DER or BER ContentInfo holding EnvelopedData or
// AuthEnvelopedData and returns the content.
func DecryptCMS(der []byte, key crypto.PrivateKey, cert *x509.Certificate) (content []byte, err error) {
	if cert == nil || key == nil {
		return nil, errors.New("smime: decrypting needs the recipient's certificate and key")
	}
	// Nothing below should panic on any input; if some library does, the
	// message is bad, not the program.
	defer func() {
		if r := recover(); r != nil {
			content, err = nil, malformed("CMS", "rejected (%v)", r)
		}
	}()
	norm, err := normalizeBER(der)
	if err != nil {
		return nil, &FormatError{What: "CMS", Err: err}
	}
	var ci contentInfo
	if err := unmarshal("CMS ContentInfo", norm, &ci); err != nil {
		return nil, err
	}
	var ris []asn1.RawValue
	var eci encryptedContentInfo
	var mac []byte
	var aad []byte
	switch {
	case ci.ContentType.Equal(oidEnvelopedData):
		var ed envelopedData
		if err := unmarshal("CMS EnvelopedData", ci.Content.Bytes, &ed); err != nil {
			return nil, err
		}
		ris, eci = ed.RecipientInfos, ed.EncryptedContentInfo
	case ci.ContentType.Equal(oidAuthEnvelopedData):
		var ad authEnvelopedData
		if err := unmarshal("CMS AuthEnvelopedData", ci.Content.Bytes, &ad); err != nil {
			return nil, err
		}
		ris, eci, mac = ad.RecipientInfos, ad.AuthEncryptedContentInfo, ad.MAC
		if ad.AuthAttrs.FullBytes != nil {
			// The MAC covers the attributes as a DER SET OF.
			aad = append([]byte{0x31}, ad.AuthAttrs.FullBytes[1:]...)
		}
	default:
		return nil, malformed("CMS", "content type %v is not enveloped-data", ci.ContentType)
	}
	ct, err := octets(eci.EncryptedContent)
	if err != nil {
		return nil, &FormatError{What: "encrypted content", Err: err}
	}
	if eci.EncryptedContent.FullBytes == nil {
		return nil, malformed("CMS", "no encrypted content")
	}
	cekLen, err := contentKeyLen(eci.ContentEncryptionAlgorithm.Algorithm)
	if err != nil {
		return nil, err
	}
	cek, err := findAndUnwrap(ris, key, cert, cekLen)
	if err != nil {
		return nil, err
	}
	defer clear(cek)
	return decryptContent(eci.ContentEncryptionAlgorithm, cek, ct, mac, aad)
}

func contentKeyLen(oid asn1.ObjectIdentifier) (int, error) {
	switch {
	case oid.Equal(oidAES128CBC), oid.Equal(oidAES128GCM):
		return 16, nil
	case oid.Equal(oidAES192CBC), oid.Equal(oidAES192GCM):
		return 24, nil
	case oid.Equal(oidAES256CBC), oid.Equal(oidAES256GCM):
		return 32, nil
	}
	return 0, malformed("CMS", "unsupported content encryption %v", oid)
}

func decryptContent(alg pkix.AlgorithmIdentifier, cek, ct, mac, aad []byte) ([]byte, error) {
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, ErrDecrypt
	}
	oid := alg.Algorithm
	switch {
	case oid.Equal(oidAES128CBC), oid.Equal(oidAES192CBC), oid.Equal(oidAES256CBC):
		if mac != nil {
			return nil, malformed("CMS", "CBC inside authEnveloped-data")
		}
		var iv []byte
		if err := unmarshal("CBC parameters", alg.Parameters.FullBytes, &iv); err != nil {
			return nil, err
		}
		if len(iv) != aes.BlockSize {
			return nil, malformed("CBC parameters", "IV of %d bytes", len(iv))
		}
		if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
			return nil, ErrDecrypt
		}
		pt := make([]byte, len(ct))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
		pad := int(pt[len(pt)-1])
		if pad == 0 || pad > aes.BlockSize {
			return nil, ErrDecrypt
		}
		for _, b := range pt[len(pt)-pad:] {
			if int(b) != pad {
				return nil, ErrDecrypt
			}
		}
		return pt[:len(pt)-pad], nil
	case oid.Equal(oidAES128GCM), oid.Equal(oidAES192GCM), oid.Equal(oidAES256GCM):
		if mac == nil {
			return nil, malformed("CMS", "AES-GCM outside authEnveloped-data")
		}
		var p gcmParams
		if err := unmarshal("GCM parameters", alg.Parameters.FullBytes, &p); err != nil {
			return nil, err
		}
		if p.ICVLen < 12 || p.ICVLen > 16 || len(mac) != p.ICVLen || len(p.Nonce) == 0 || len(p.Nonce) > 64 {
			return nil, malformed("GCM parameters", "nonce of %d bytes, tag of %d (%d announced)", len(p.Nonce), len(mac), p.ICVLen)
		}
		var aead cipher.AEAD
		switch {
		case len(p.Nonce) == 12 && p.ICVLen == 16:
			aead, err = cipher.NewGCM(block)
		case p.ICVLen == 16:
			aead, err = cipher.NewGCMWithNonceSize(block, len(p.Nonce))
		case len(p.Nonce) == 12:
			aead, err = cipher.NewGCMWithTagSize(block, p.ICVLen)
		default:
			return nil, malformed("GCM parameters", "nonce of %d bytes with a %d-byte tag", len(p.Nonce), p.ICVLen)
		}
		if err != nil {
			return nil, &FormatError{What: "GCM parameters", Err: err}
		}
		pt, err := aead.Open(nil, p.Nonce, append(ct[:len(ct):len(ct)], mac...), aad)
		if err != nil {
			return nil, ErrDecrypt
		}
		return pt, nil
	}
	return nil, malformed("CMS", "unsupported content encryption %v", oid)
}

// findAndUnwrap finds the recipient entry for cert and unwraps the content
// key with key.
func findAndUnwrap(ris []asn1.RawValue, key crypto.PrivateKey, cert *x509.Certificate, cekLen int) ([]byte, error) {
	for _, ri := range ris {
		switch {
		case ri.Class == asn1.ClassUniversal && ri.Tag == asn1.TagSequence:
			var kt keyTransRecipientInfo
			if err := unmarshal("KeyTransRecipientInfo", ri.FullBytes, &kt); err != nil {
				return nil, err
			}
			if !ridMatches(kt.RID, cert) {
				continue
			}
			return unwrapKeyTrans(&kt, key, cert, cekLen)
		case ri.Class == asn1.ClassContextSpecific && ri.Tag == 1:
			var ka keyAgreeRecipientInfo
			if err := unmarshal("KeyAgreeRecipientInfo", ri.FullBytes, &ka, "tag:1"); err != nil {
				return nil, err
			}
			for _, rek := range ka.RecipientEncryptedKeys {
				rid := rek.RID
				if rid.Class == asn1.ClassContextSpecific && rid.Tag == 0 {
					// rKeyId [0] IMPLICIT RecipientKeyIdentifier: SKI first.
					var ski []byte
					if _, err := asn1.Unmarshal(rid.Bytes, &ski); err == nil {
						rid = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: ski}
					}
				}
				if !ridMatches(rid, cert) {
					continue
				}
				return unwrapKeyAgree(&ka, rek.EncryptedKey, key, cert, cekLen)
			}
		}
		// Other recipient kinds (KEK, password) are not for a certificate.
	}
	return nil, ErrNotForRecipient
}

func unwrapKeyTrans(kt *keyTransRecipientInfo, key crypto.PrivateKey, cert *x509.Certificate, cekLen int) ([]byte, error) {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, malformed("KeyTransRecipientInfo", "key transport to a non-RSA certificate")
	}
	dec, ok := key.(crypto.Decrypter)
	if !ok {
		return nil, fmt.Errorf("smime: the key (%T) cannot decrypt", key)
	}
	if !publicKeysEqual(pub, dec.Public()) {
		return nil, errors.New("smime: the key does not belong to the certificate")
	}
	alg := kt.KeyEncryptionAlgorithm.Algorithm
	switch {
	case alg.Equal(oidRSAEncryption):
		// With SessionKeyLen a bad padding yields a random key, so that the
		// content fails instead (no Bleichenbacher oracle); card keys honour
		// it too.
		cek, err := dec.Decrypt(rand.Reader, kt.EncryptedKey, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: cekLen})
		if err != nil {
			return nil, keyError(err)
		}
		if len(cek) != cekLen {
			return nil, ErrDecrypt
		}
		return cek, nil
	case alg.Equal(oidRSAOAEP):
		h, mgf, err := parseOAEP(kt.KeyEncryptionAlgorithm.Parameters)
		if err != nil {
			return nil, err
		}
		cek, err := dec.Decrypt(rand.Reader, kt.EncryptedKey, &rsa.OAEPOptions{Hash: h, MGFHash: mgf})
		if err != nil {
			return nil, keyError(err)
		}
		if len(cek) != cekLen {
			return nil, ErrDecrypt
		}
		return cek, nil
	}
	return nil, malformed("KeyTransRecipientInfo", "unsupported key encryption %v", alg)
}

// keyError keeps card and environment errors (wrong PIN, card removed) and
// turns RSA failures into ErrDecrypt.
func keyError(err error) error {
	if errors.Is(err, rsa.ErrDecryption) || errors.Is(err, rsa.ErrVerification) {
		return ErrDecrypt
	}
	return fmt.Errorf("smime: decrypting the content key: %w", err)
}

// parseOAEP reads RSAES-OAEP-params (RFC 4055); absent fields are SHA-1.
func parseOAEP(p asn1.RawValue) (crypto.Hash, crypto.Hash, error) {
	h, mgf := crypto.SHA1, crypto.SHA1
	if p.FullBytes == nil || (p.Tag == asn1.TagNull && p.Class == asn1.ClassUniversal) {
		return h, mgf, nil
	}
	var op oaepParams
	if err := unmarshal("RSA-OAEP parameters", p.FullBytes, &op); err != nil {
		return 0, 0, err
	}
	var err error
	if op.Hash.Algorithm != nil {
		if h, err = oaepHash(op.Hash.Algorithm); err != nil {
			return 0, 0, err
		}
	}
	if op.MGF.Algorithm != nil {
		if !op.MGF.Algorithm.Equal(oidMGF1) {
			return 0, 0, malformed("RSA-OAEP parameters", "mask generation %v is not MGF1", op.MGF.Algorithm)
		}
		var mh pkix.AlgorithmIdentifier
		if err := unmarshal("MGF1 parameters", op.MGF.Parameters.FullBytes, &mh); err != nil {
			return 0, 0, err
		}
		if mgf, err = oaepHash(mh.Algorithm); err != nil {
			return 0, 0, err
		}
	}
	if op.PSource.Algorithm != nil {
		return 0, 0, malformed("RSA-OAEP parameters", "a pSource label is not supported")
	}
	return h, mgf, nil
}

func oaepHash(oid asn1.ObjectIdentifier) (crypto.Hash, error) {
	switch {
	case oid.Equal(oidSHA1):
		return crypto.SHA1, nil
	case oid.Equal(oidSHA256):
		return crypto.SHA256, nil
	case oid.Equal(oidSHA384):
		return crypto.SHA384, nil
	case oid.Equal(oidSHA512):
		return crypto.SHA512, nil
	}
	return 0, malformed("RSA-OAEP parameters", "unknown hash %v", oid)
}

func unwrapKeyAgree(ka *keyAgreeRecipientInfo, wrapped []byte, key crypto.PrivateKey, cert *x509.Certificate, cekLen int) ([]byte, error) {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, malformed("KeyAgreeRecipientInfo", "key agreement to a non-EC certificate")
	}
	var agree ECDHKey
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		ek, err := k.ECDH()
		if err != nil {
			return nil, err
		}
		agree = ek
	case ECDHKey:
		agree = k
	default:
		return nil, fmt.Errorf("smime: the key (%T) cannot do ECDH", key)
	}
	if s, ok := key.(crypto.Signer); ok && !publicKeysEqual(pub, s.Public()) {
		return nil, errors.New("smime: the key does not belong to the certificate")
	}
	var newHash func() hash.Hash
	alg := ka.KeyEncryptionAlgorithm.Algorithm
	switch {
	case alg.Equal(oidDHSinglePassSHA1KDF):
		newHash = sha1.New
	case alg.Equal(oidDHSinglePassSHA224KDF):
		newHash = sha256.New224
	case alg.Equal(oidDHSinglePassSHA256KDF):
		newHash = sha256.New
	case alg.Equal(oidDHSinglePassSHA384KDF):
		newHash = sha512.New384
	case alg.Equal(oidDHSinglePassSHA512KDF):
		newHash = sha512.New
	default:
		return nil, malformed("KeyAgreeRecipientInfo", "unsupported key agreement %v", alg)
	}
	var wrapAlg pkix.AlgorithmIdentifier
	if err := unmarshal("key wrap algorithm", ka.KeyEncryptionAlgorithm.Parameters.FullBytes, &wrapAlg); err != nil {
		return nil, err
	}
	var kekLen int
	switch {
	case wrapAlg.Algorithm.Equal(oidAES128Wrap):
		kekLen = 16
	case wrapAlg.Algorithm.Equal(oidAES192Wrap):
		kekLen = 24
	case wrapAlg.Algorithm.Equal(oidAES256Wrap):
		kekLen = 32
	default:
		return nil, malformed("KeyAgreeRecipientInfo", "unsupported key wrap %v", wrapAlg.Algorithm)
	}
	// The originator's ephemeral public key, on the recipient's curve.
	var orig asn1.RawValue
	if err := unmarshal("originator", ka.Originator.Bytes, &orig); err != nil {
		return nil, err
	}
	if orig.Class != asn1.ClassContextSpecific || orig.Tag != 1 {
		return nil, malformed("KeyAgreeRecipientInfo", "the originator is not an ephemeral public key")
	}
	var opk originatorPublicKey
	if err := unmarshal("originator key", orig.FullBytes, &opk, "tag:1"); err != nil {
		return nil, err
	}
	if !opk.Algorithm.Algorithm.Equal(oidECPublicKey) {
		return nil, malformed("originator key", "algorithm %v is not EC", opk.Algorithm.Algorithm)
	}
	curve, err := ecdhCurve(pub.Curve)
	if err != nil {
		return nil, err
	}
	eph, err := curve.NewPublicKey(opk.PublicKey.RightAlign())
	if err != nil {
		return nil, malformed("originator key", "not a point on the recipient's curve")
	}
	z, err := agree.ECDH(eph)
	if err != nil {
		return nil, fmt.Errorf("smime: key agreement: %w", err)
	}
	defer clear(z)
	kek, err := x963KDF(newHash, z, ka.KeyEncryptionAlgorithm.Parameters.FullBytes, ka.UKM, kekLen)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	cek, err := aesKeyUnwrap(kek, wrapped)
	if err != nil {
		return nil, err
	}
	if len(cek) != cekLen {
		return nil, ErrDecrypt
	}
	return cek, nil
}

func ecdhCurve(c elliptic.Curve) (ecdh.Curve, error) {
	switch c {
	case elliptic.P256():
		return ecdh.P256(), nil
	case elliptic.P384():
		return ecdh.P384(), nil
	case elliptic.P521():
		return ecdh.P521(), nil
	}
	return nil, errors.New("smime: unsupported curve")
}
