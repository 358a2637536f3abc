package kdc

// CMS EnvelopedData (RFC 5652 §6) for PKINIT public-key encryption mode:
// one KeyTransRecipientInfo (RSA PKCS#1 v1.5, as MIT and Windows use), the
// content encrypted with AES-256-CBC when the client lists it among its
// supportedCMSTypes, else DES-EDE3-CBC (MIT's choice, which every client
// takes).

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// chooseContentCipher picks AES-256-CBC when the client's
// supportedCMSTypes (AlgorithmIdentifier DERs) name AES-CBC, else 3DES.
func chooseContentCipher(supported [][]byte) asn1.ObjectIdentifier {
	for _, alg := range supported {
		s := cryptobyte.String(alg)
		var seq cryptobyte.String
		var oid asn1.ObjectIdentifier
		if s.ReadASN1(&seq, cbasn1.SEQUENCE) && seq.ReadASN1ObjectIdentifier(&oid) &&
			(oid.Equal(oidAES256CBC) || oid.Equal(oidAES128CBC)) {
			return oidAES256CBC
		}
	}
	return oidDESEDE3CBC
}

func newBlock(alg asn1.ObjectIdentifier, key []byte) (cipher.Block, error) {
	switch {
	case alg.Equal(oidAES256CBC), alg.Equal(oidAES128CBC):
		return aes.NewCipher(key)
	case alg.Equal(oidDESEDE3CBC):
		return des.NewTripleDESCipher(key)
	}
	return nil, fmt.Errorf("content encryption %v is not supported", alg)
}

func contentKeySize(alg asn1.ObjectIdentifier) int {
	switch {
	case alg.Equal(oidAES128CBC):
		return 16
	case alg.Equal(oidAES256CBC):
		return 32
	}
	return 24
}

// envelope encrypts content (of type contentType) to the RSA key of cert.
func envelope(contentType asn1.ObjectIdentifier, content []byte, cert *x509.Certificate, alg asn1.ObjectIdentifier) ([]byte, error) {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("the recipient's key is not RSA")
	}
	cek := make([]byte, contentKeySize(alg))
	if _, err := rand.Read(cek); err != nil {
		return nil, err
	}
	if alg.Equal(oidDESEDE3CBC) {
		setDESParity(cek)
	}
	block, err := newBlock(alg, cek)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, block.BlockSize())
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	pad := block.BlockSize() - len(content)%block.BlockSize()
	plain := append(append([]byte{}, content...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	enc := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(enc, plain)
	encKey, err := rsa.EncryptPKCS1v15(rand.Reader, pub, cek)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidEnvelopedData)
		b.AddASN1(ctx(0), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(0)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1Int64(0)
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddBytes(cert.RawIssuer)
							b.AddASN1BigInt(cert.SerialNumber)
						})
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(oidRSAEncryption)
							b.AddASN1NULL()
						})
						b.AddASN1OctetString(encKey)
					})
				})
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(contentType)
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(alg)
						b.AddASN1OctetString(iv)
					})
					b.AddASN1(ctxPrimitive(0), func(b *cryptobyte.Builder) { b.AddBytes(enc) })
				})
			})
		})
	})
	return b.Bytes()
}

// setDESParity gives every byte of a DES key odd parity.
func setDESParity(k []byte) {
	for i, c := range k {
		c &= 0xfe
		p := c ^ c>>4
		p ^= p >> 2
		p ^= p >> 1
		k[i] = c | (^p & 1)
	}
}

// openEnvelope decrypts an EnvelopedData addressed to cert with key (a
// card's crypto.Decrypter) and returns the content type and content.
func openEnvelope(der []byte, cert *x509.Certificate, key crypto.Decrypter) (asn1.ObjectIdentifier, []byte, error) {
	bad := errors.New("malformed CMS EnvelopedData")
	in := cryptobyte.String(der)
	var ci, w, ed, recips, eci cryptobyte.String
	var oid asn1.ObjectIdentifier
	var version int64
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidEnvelopedData) ||
		!ci.ReadASN1(&w, ctx(0)) || !w.ReadASN1(&ed, cbasn1.SEQUENCE) || !ed.ReadASN1Integer(&version) {
		return nil, nil, bad
	}
	if ed.PeekASN1Tag(ctx(0)) { // originatorInfo
		var skip cryptobyte.String
		ed.ReadASN1(&skip, ctx(0))
	}
	if !ed.ReadASN1(&recips, cbasn1.SET) || !ed.ReadASN1(&eci, cbasn1.SEQUENCE) {
		return nil, nil, bad
	}
	var encKey []byte
	for !recips.Empty() && encKey == nil {
		var ri, ias, name, alg cryptobyte.String
		var v int64
		if !recips.ReadASN1(&ri, cbasn1.SEQUENCE) {
			return nil, nil, bad
		}
		if !ri.ReadASN1Integer(&v) || !ri.PeekASN1Tag(cbasn1.SEQUENCE) {
			continue // not a KeyTransRecipientInfo with issuerAndSerialNumber
		}
		serial := new(big.Int)
		if !ri.ReadASN1(&ias, cbasn1.SEQUENCE) || !ias.ReadASN1Element(&name, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Integer(serial) || !ri.ReadASN1(&alg, cbasn1.SEQUENCE) {
			return nil, nil, bad
		}
		var ek []byte
		if !ri.ReadASN1Bytes(&ek, cbasn1.OCTET_STRING) {
			return nil, nil, bad
		}
		if bytes.Equal(name, cert.RawIssuer) && serial.Cmp(cert.SerialNumber) == 0 {
			encKey = ek
		}
	}
	if encKey == nil {
		return nil, nil, errors.New("the EnvelopedData is not addressed to this certificate")
	}
	var ctype, calg asn1.ObjectIdentifier
	var algSeq cryptobyte.String
	var iv, enc []byte
	if !eci.ReadASN1ObjectIdentifier(&ctype) || !eci.ReadASN1(&algSeq, cbasn1.SEQUENCE) ||
		!algSeq.ReadASN1ObjectIdentifier(&calg) || !algSeq.ReadASN1Bytes(&iv, cbasn1.OCTET_STRING) ||
		!eci.ReadASN1Bytes(&enc, ctxPrimitive(0)) {
		return nil, nil, bad
	}
	cek, err := key.Decrypt(rand.Reader, encKey, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: contentKeySize(calg)})
	if err != nil {
		return nil, nil, fmt.Errorf("decrypting the content key: %w", err)
	}
	block, err := newBlock(calg, cek)
	if err != nil {
		return nil, nil, err
	}
	bs := block.BlockSize()
	if len(iv) != bs || len(enc) == 0 || len(enc)%bs != 0 {
		return nil, nil, bad
	}
	plain := make([]byte, len(enc))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, enc)
	pad := int(plain[len(plain)-1])
	if pad == 0 || pad > bs || pad > len(plain) || !bytes.Equal(plain[len(plain)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, nil, errors.New("bad padding in the EnvelopedData")
	}
	return ctype, plain[:len(plain)-pad], nil
}
