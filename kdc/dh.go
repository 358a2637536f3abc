package kdc

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/big"

	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The MODP groups of RFC 3526 (generator 2), by the name MIT uses.
var (
	modp14 = mustModp(2048, "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF")
	modp16 = mustModp(4096, "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D788719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA993B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF")
	// modp2 is the 1024-bit group MIT once used; it is refused.
	modp2 = mustModp(1024, "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF")
)

// acceptedGroups are the groups the KDC takes, preferred first, as listed
// in TD-DH-PARAMETERS.
var acceptedGroups = []dhGroup{modp14, modp16}

// dhGroup is a safe-prime MODP group and the length of the private
// exponents used with it: twice the group's security strength (NIST SP
// 800-56A rev. 3, RFC 7919 §5.2), which keeps a logon fast without
// weakening the group.
type dhGroup struct {
	dhDomain
	bits, exponentBits int
}

func mustModp(bits int, hexP string) dhGroup {
	p, ok := new(big.Int).SetString(hexP, 16)
	if !ok || p.BitLen() != bits {
		panic("kdc: bad MODP prime")
	}
	q := new(big.Int).Rsh(p, 1)
	exp := 256
	if bits >= 4096 {
		exp = 320
	}
	return dhGroup{dhDomain: dhDomain{P: p, G: big.NewInt(2), Q: q}, bits: bits, exponentBits: exp}
}

// findGroup returns the accepted group with the client's domain
// parameters, or false.
func findGroup(d dhDomain) (dhGroup, bool) {
	if d.P == nil || d.G == nil {
		return dhGroup{}, false
	}
	for _, g := range acceptedGroups {
		if g.P.Cmp(d.P) == 0 && g.G.Cmp(d.G) == 0 && (d.Q == nil || g.Q.Cmp(d.Q) == 0) {
			return g, true
		}
	}
	return dhGroup{}, false
}

// dhKey is one side's ephemeral key.
type dhKey struct {
	group  dhGroup
	x      *big.Int
	Public *big.Int
}

func newDHKey(g dhGroup) (*dhKey, error) {
	buf := make([]byte, g.exponentBits/8)
	for {
		if _, err := rand.Read(buf); err != nil {
			return nil, err
		}
		x := new(big.Int).SetBytes(buf)
		if x.Sign() > 0 && x.Cmp(g.Q) < 0 {
			return &dhKey{group: g, x: x, Public: new(big.Int).Exp(g.G, x, g.P)}, nil
		}
	}
}

// checkPublic refuses peer values outside 2..p-2 (the subgroup of order 2
// and out-of-range values); p is a safe prime, so nothing else is small.
func (g dhGroup) checkPublic(y *big.Int) error {
	pm1 := new(big.Int).Sub(g.P, big.NewInt(1))
	if y == nil || y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(pm1) >= 0 {
		return errors.New("DH public value out of range")
	}
	return nil
}

// shared computes the shared secret ZZ, left-padded to the length of p
// (RFC 4556 §3.2.3.1).
func (k *dhKey) shared(peer *big.Int) ([]byte, error) {
	if err := k.group.checkPublic(peer); err != nil {
		return nil, err
	}
	z := new(big.Int).Exp(peer, k.x, k.group.P)
	out := make([]byte, (k.group.P.BitLen()+7)/8)
	return z.FillBytes(out), nil
}

// kdfHash maps an RFC 8636 KDF OID to its hash.
func kdfHash(oid asn1.ObjectIdentifier) (func() hash.Hash, bool) {
	switch {
	case oid.Equal(oidKDFSHA256):
		return sha256.New, true
	case oid.Equal(oidKDFSHA1):
		return sha1.New, true
	case oid.Equal(oidKDFSHA512):
		return sha512.New, true
	}
	return nil, false
}

// chooseKDF picks the first of sha256, sha1, sha512 (in that order of
// preference) that the client offers; nil when it offers none of them.
func chooseKDF(offered []asn1.ObjectIdentifier) asn1.ObjectIdentifier {
	for _, want := range []asn1.ObjectIdentifier{oidKDFSHA256, oidKDFSHA1, oidKDFSHA512} {
		for _, o := range offered {
			if o.Equal(want) {
				return want
			}
		}
	}
	return nil
}

// agilityKDF is the RFC 8636 KDF: the key-generation seed is the
// concatenation of H(counter || Z || OtherInfo) for counter = 1, 2, ...,
// truncated to the enctype's seed length, then random-to-key.
func agilityKDF(kdf asn1.ObjectIdentifier, z, otherInfo []byte, etypeID int32) (types.EncryptionKey, error) {
	newHash, ok := kdfHash(kdf)
	if !ok {
		return types.EncryptionKey{}, fmt.Errorf("unsupported KDF %v", kdf)
	}
	et, err := krbcrypto.GetEtype(etypeID)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	n := keySeedBytes(et)
	var seed []byte
	var ctr [4]byte
	for counter := uint32(1); len(seed) < n; counter++ {
		h := newHash()
		binary.BigEndian.PutUint32(ctr[:], counter)
		h.Write(ctr[:])
		h.Write(z)
		h.Write(otherInfo)
		seed = h.Sum(seed)
	}
	return types.EncryptionKey{KeyType: etypeID, KeyValue: et.RandomToKey(seed[:n])}, nil
}

// octetString2Key is RFC 4556 §3.2.3.1's octetstring2key: K-truncate of
// SHA1(0x00 | x) | SHA1(0x01 | x) | ..., then random-to-key, where x is
// ZZ | clientDHNonce | serverDHNonce.
func octetString2Key(x []byte, etypeID int32) (types.EncryptionKey, error) {
	et, err := krbcrypto.GetEtype(etypeID)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	n := keySeedBytes(et)
	var seed []byte
	for counter := 0; len(seed) < n; counter++ {
		h := sha1.New()
		h.Write([]byte{byte(counter)})
		h.Write(x)
		seed = h.Sum(seed)
	}
	return types.EncryptionKey{KeyType: etypeID, KeyValue: et.RandomToKey(seed[:n])}, nil
}

// keySeedBytes is an enctype's key-generation seed length in bytes.
// gokrb5 v8.4.4 reports 24 for aes256-cts-hmac-sha384-192, whose keys
// are 32 bytes (RFC 8009 §5: random-to-key is the identity on 256 bits).
func keySeedBytes(et etype.EType) int {
	if et.GetETypeID() == etypeID.AES256_CTS_HMAC_SHA384_192 {
		return 32
	}
	return et.GetKeySeedBitLength() / 8
}

// randomKey makes a random key of an enctype.
func randomKey(etypeID int32) (types.EncryptionKey, error) {
	et, err := krbcrypto.GetEtype(etypeID)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	seed := make([]byte, keySeedBytes(et))
	if _, err := rand.Read(seed); err != nil {
		return types.EncryptionKey{}, err
	}
	return types.EncryptionKey{KeyType: etypeID, KeyValue: et.RandomToKey(seed)}, nil
}
