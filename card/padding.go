package card

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
)

var randReader io.Reader = rand.Reader

// DigestInfo prefixes (RFC 8017 §9.2 note 1).
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.MD5SHA1:    {},
	crypto.SHA1:       {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA224:     {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256:     {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384:     {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512:     {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
	crypto.SHA512_224: {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x05, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA512_256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x06, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA3_256:   {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x08, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA3_384:   {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x09, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA3_512:   {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x0a, 0x05, 0x00, 0x04, 0x40},
}

// pkcs1v15SignPad builds EMSA-PKCS1-v1_5 (RFC 8017 §9.2): 00 01 FF… 00
// DigestInfo. hash 0 signs the digest as given (as rsa.SignPKCS1v15).
func pkcs1v15SignPad(h crypto.Hash, digest []byte, k int) ([]byte, error) {
	var prefix []byte
	if h != 0 {
		var ok bool
		if prefix, ok = digestInfoPrefix[h]; !ok {
			return nil, fmt.Errorf("card: unsupported hash %v for RSA PKCS #1 v1.5", h)
		}
	}
	tLen := len(prefix) + len(digest)
	if k < tLen+11 {
		return nil, rsa.ErrMessageTooLong
	}
	em := make([]byte, k)
	em[1] = 0x01
	for i := 2; i < k-tLen-1; i++ {
		em[i] = 0xFF
	}
	copy(em[k-tLen:], prefix)
	copy(em[k-len(digest):], digest)
	return em, nil
}

func mgf1XOR(out []byte, h hash.Hash, seed []byte) {
	var counter [4]byte
	var digest []byte
	done := 0
	for done < len(out) {
		h.Reset()
		h.Write(seed)
		h.Write(counter[:])
		digest = h.Sum(digest[:0])
		for i := 0; i < len(digest) && done < len(out); i++ {
			out[done] ^= digest[i]
			done++
		}
		for i := 3; i >= 0; i-- {
			counter[i]++
			if counter[i] != 0 {
				break
			}
		}
	}
}

// emsaPSSEncode builds EMSA-PSS (RFC 8017 §9.1.1) with MGF1 over the same
// hash. saltLength follows rsa.PSSOptions (0 auto = as large as possible,
// -1 equals hash).
func emsaPSSEncode(random io.Reader, mHash []byte, emBits int, h crypto.Hash, saltLength int) ([]byte, error) {
	if h == 0 || !h.Available() {
		return nil, errors.New("card: RSA-PSS needs an available hash")
	}
	hLen := h.Size()
	if len(mHash) != hLen {
		return nil, errors.New("card: RSA-PSS digest length does not match the hash")
	}
	emLen := (emBits + 7) / 8
	switch {
	case saltLength == rsa.PSSSaltLengthAuto:
		saltLength = emLen - hLen - 2
	case saltLength == rsa.PSSSaltLengthEqualsHash:
		saltLength = hLen
	case saltLength < 0:
		return nil, errors.New("card: invalid RSA-PSS salt length")
	}
	if emLen < hLen+saltLength+2 || saltLength < 0 {
		return nil, rsa.ErrMessageTooLong
	}
	salt := make([]byte, saltLength)
	if random == nil {
		random = randReader
	}
	if _, err := io.ReadFull(random, salt); err != nil {
		return nil, err
	}
	hh := h.New()
	hh.Write(make([]byte, 8))
	hh.Write(mHash)
	hh.Write(salt)
	H := hh.Sum(nil)

	em := make([]byte, emLen)
	db := em[:emLen-hLen-1]
	db[emLen-saltLength-hLen-2] = 0x01
	copy(db[emLen-saltLength-hLen-1:], salt)
	mgf1XOR(db, hh, H)
	db[0] &= 0xFF >> (8*emLen - emBits)
	copy(em[emLen-hLen-1:], H)
	em[emLen-1] = 0xBC
	return em, nil
}

// pkcs1v15Unpad checks EME-PKCS1-v1_5 in constant time: valid is 1 when
// em is 00 02 PS(≥8 non-zero) 00 M, and index is where M starts.
func pkcs1v15Unpad(em []byte) (valid, index int) {
	if len(em) < 11 {
		return 0, 0
	}
	first := subtle.ConstantTimeByteEq(em[0], 0)
	second := subtle.ConstantTimeByteEq(em[1], 2)
	looking := 1
	for i := 2; i < len(em); i++ {
		zero := subtle.ConstantTimeByteEq(em[i], 0)
		index = subtle.ConstantTimeSelect(looking&zero, i, index)
		looking = subtle.ConstantTimeSelect(zero, 0, looking)
	}
	validPS := subtle.ConstantTimeLessOrEq(2+8, index)
	valid = first & second & (^looking & 1) & validPS
	index = subtle.ConstantTimeSelect(valid, index+1, 0)
	return valid, index
}

// oaepUnpad checks EME-OAEP (RFC 8017 §7.1.2) in constant time.
func oaepUnpad(em []byte, h, mgfHash crypto.Hash, label []byte) ([]byte, error) {
	if h == 0 || !h.Available() || !mgfHash.Available() {
		return nil, errors.New("card: OAEP needs an available hash")
	}
	hLen := h.Size()
	if len(em) < 2*hLen+2 {
		return nil, rsa.ErrDecryption
	}
	lh := h.New()
	lh.Write(label)
	lHash := lh.Sum(nil)

	em = append([]byte(nil), em...)
	defer clear(em)
	first := subtle.ConstantTimeByteEq(em[0], 0)
	seed := em[1 : hLen+1]
	db := em[hLen+1:]
	mh := mgfHash.New()
	mgf1XOR(seed, mh, db)
	mgf1XOR(db, mh, seed)
	good := subtle.ConstantTimeCompare(lHash, db[:hLen])

	looking, index, invalid := 1, 0, 0
	rest := db[hLen:]
	for i := 0; i < len(rest); i++ {
		zero := subtle.ConstantTimeByteEq(rest[i], 0)
		one := subtle.ConstantTimeByteEq(rest[i], 1)
		index = subtle.ConstantTimeSelect(looking&one, i, index)
		looking = subtle.ConstantTimeSelect(one, 0, looking)
		invalid = subtle.ConstantTimeSelect(looking&^zero, 1, invalid)
	}
	if first&good&^invalid&^looking != 1 {
		return nil, rsa.ErrDecryption
	}
	return append([]byte(nil), rest[index+1:]...), nil
}

func eqInt(a, b int) int { return subtle.ConstantTimeEq(int32(a), int32(b)) }

// subtleCopy copies src into dst when v is 1, in constant time.
func subtleCopy(v int, dst, src []byte) { subtle.ConstantTimeCopy(v, dst, src) }
