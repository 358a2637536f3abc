package pki

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Encryption at rest of the CA private key.
//
// An encrypted key is a PEM "ENCRYPTED PRIVATE KEY" block holding a PKCS#8
// EncryptedPrivateKeyInfo (RFC 5958) protected with PBES2 (RFC 8018):
// PBKDF2 derives an AES key from the passphrase, and AES-CBC with PKCS#7
// padding encrypts the DER PKCS#8 PrivateKeyInfo. This is the format that
// `openssl pkcs8 -topk8 -v2 aes256` and `openssl genpkey -aes256` write and
// that `openssl pkey` reads.

var (
	// ErrEmptyPassphrase is returned by MarshalEncryptedPrivateKey when the
	// passphrase is empty.
	ErrEmptyPassphrase = errors.New("pki: empty passphrase")
	// ErrPassphraseRequired is returned by ParsePrivateKeyPEM when the key
	// is encrypted and no passphrase was given.
	ErrPassphraseRequired = errors.New("pki: private key is encrypted and a passphrase is required")
	// ErrIncorrectPassphrase is returned by ParsePrivateKeyPEM when the
	// encrypted key does not decrypt to a valid PKCS#8 private key: the
	// passphrase is wrong or the ciphertext is corrupt.
	ErrIncorrectPassphrase = errors.New("pki: incorrect passphrase or corrupt private key")
)

const (
	// pbkdf2Iterations is the PBKDF2 iteration count used when writing
	// (OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256).
	pbkdf2Iterations = 600000
	// pbkdf2SaltLen is the salt length used when writing.
	pbkdf2SaltLen = 16

	// Limits applied when reading, before any key derivation is done.
	minPBKDF2Iterations = 1000
	maxPBKDF2Iterations = 10000000
	minPBKDF2SaltLen    = 8 // RFC 8018 section 4.1
	maxPBKDF2SaltLen    = 1024
	// maxEncryptedKeyLen bounds the ciphertext. A PKCS#8 RSA-16384 key is
	// under 10 KiB.
	maxEncryptedKeyLen = 64 << 10

	pemTypePrivateKey          = "PRIVATE KEY"
	pemTypeEncryptedPrivateKey = "ENCRYPTED PRIVATE KEY"
	pemTypeRSAPrivateKey       = "RSA PRIVATE KEY"
	pemTypeECPrivateKey        = "EC PRIVATE KEY"
	pemTypeECParameters        = "EC PARAMETERS"
)

var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}

	oidHMACWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}

	oidAES128CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}

	oidScrypt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}

	// Private key algorithms crypto/x509 can parse out of PKCS#8; used to
	// tell a wrong passphrase apart from an unsupported key.
	oidKeyRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidKeyECDSA   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidKeyEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidKeyX25519  = asn1.ObjectIdentifier{1, 3, 101, 110}
)

// encryptedPrivateKeyInfo is the EncryptedPrivateKeyInfo of RFC 5958.
type encryptedPrivateKeyInfo struct {
	Algo          pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// pbes2Params is PBES2-params of RFC 8018 appendix A.4.
type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

// pbkdf2Params is PBKDF2-params of RFC 8018 appendix A.2. Only the
// "specified" (OCTET STRING) salt is supported. An absent keyLength reads
// as 0 and an absent prf as the zero AlgorithmIdentifier (hmacWithSHA1).
type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

// pkcs8Outer is the outer shape of a PKCS#8 PrivateKeyInfo, enough to tell
// a correctly decrypted key of an unsupported algorithm from garbage.
type pkcs8Outer struct {
	Version    int
	Algo       pkix.AlgorithmIdentifier
	PrivateKey []byte
	// Optional attributes and public key may follow; encoding/asn1 ignores
	// unparsed trailing elements of a SEQUENCE.
}

// MarshalEncryptedPrivateKey encodes key as a PEM "ENCRYPTED PRIVATE KEY"
// block: a PKCS#8 EncryptedPrivateKeyInfo with PBES2 (RFC 8018), using
// PBKDF2 with HMAC-SHA256, a 16-byte random salt and pbkdf2Iterations
// iterations, and AES-256-CBC with a random IV. OpenSSL reads it with
// `openssl pkey -in FILE`.
//
// An empty passphrase is refused with ErrEmptyPassphrase. key may be any key
// x509.MarshalPKCS8PrivateKey accepts (*rsa.PrivateKey, *ecdsa.PrivateKey,
// ed25519.PrivateKey).
func MarshalEncryptedPrivateKey(key crypto.Signer, passphrase []byte) ([]byte, error) {
	return marshalEncryptedPrivateKey(key, passphrase, pbkdf2Iterations, rand.Reader)
}

// marshalEncryptedPrivateKey is MarshalEncryptedPrivateKey with the
// iteration count and randomness source as parameters, for tests.
func marshalEncryptedPrivateKey(key crypto.Signer, passphrase []byte, iterations int, random io.Reader) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	der, err := marshalPKCS8(key)
	if err != nil {
		return nil, err
	}
	defer clear(der)

	salt := make([]byte, pbkdf2SaltLen)
	iv := make([]byte, aes.BlockSize)
	if _, err := io.ReadFull(random, salt); err != nil {
		return nil, fmt.Errorf("pki: generating salt: %w", err)
	}
	if _, err := io.ReadFull(random, iv); err != nil {
		return nil, fmt.Errorf("pki: generating IV: %w", err)
	}

	const keyLen = 32 // AES-256
	dk, err := pbkdf2.Key(sha256.New, string(passphrase), salt, iterations, keyLen)
	if err != nil {
		return nil, fmt.Errorf("pki: deriving key: %w", err)
	}
	block, err := aes.NewCipher(dk)
	clear(dk)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}

	// PKCS#7 padding: always 1 to 16 bytes.
	padLen := aes.BlockSize - len(der)%aes.BlockSize
	buf := make([]byte, len(der)+padLen)
	defer clear(buf)
	copy(buf, der)
	for i := len(der); i < len(buf); i++ {
		buf[i] = byte(padLen)
	}
	ciphertext := make([]byte, len(buf))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ciphertext, buf)

	kdfParams, err := asn1.Marshal(pbkdf2Params{
		Salt:           salt,
		IterationCount: iterations,
		// keyLength is omitted, as OpenSSL does for AES: it is implied by
		// the cipher.
		PRF: pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256, Parameters: asn1.NullRawValue},
	})
	if err != nil {
		return nil, fmt.Errorf("pki: encoding PBKDF2 parameters: %w", err)
	}
	ivParam, err := asn1.Marshal(iv)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding IV: %w", err)
	}
	schemeParams, err := asn1.Marshal(pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdfParams}},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivParam}},
	})
	if err != nil {
		return nil, fmt.Errorf("pki: encoding PBES2 parameters: %w", err)
	}
	info, err := asn1.Marshal(encryptedPrivateKeyInfo{
		Algo:          pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: schemeParams}},
		EncryptedData: ciphertext,
	})
	if err != nil {
		return nil, fmt.Errorf("pki: encoding encrypted private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemTypeEncryptedPrivateKey, Bytes: info}), nil
}

// MarshalPrivateKey encodes key unencrypted as a PEM "PRIVATE KEY" block
// (PKCS#8). It is for keys deliberately stored without a passphrase.
func MarshalPrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := marshalPKCS8(key)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: pemTypePrivateKey, Bytes: der}), nil
}

// marshalPKCS8 is x509.MarshalPKCS8PrivateKey, guarding against nil keys
// (which would make crypto/x509 panic).
func marshalPKCS8(key crypto.Signer) ([]byte, error) {
	nilKey := false
	switch k := key.(type) {
	case nil:
		nilKey = true
	case *rsa.PrivateKey:
		nilKey = k == nil || k.N == nil
	case *ecdsa.PrivateKey:
		nilKey = k == nil || k.Curve == nil
	case ed25519.PrivateKey:
		nilKey = len(k) != ed25519.PrivateKeySize
	}
	if nilKey {
		return nil, errors.New("pki: nil or empty private key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding private key of type %T: %w", key, err)
	}
	return der, nil
}

// firstKeyBlock returns the first PEM block of data, skipping a leading
// "EC PARAMETERS" block (as written by `openssl ecparam -genkey`).
func firstKeyBlock(data []byte) *pem.Block {
	block, rest := pem.Decode(data)
	if block != nil && block.Type == pemTypeECParameters {
		block, _ = pem.Decode(rest)
	}
	return block
}

// IsEncryptedPrivateKeyPEM reports whether data's first PEM block is an
// "ENCRYPTED PRIVATE KEY" (a leading "EC PARAMETERS" block is skipped).
func IsEncryptedPrivateKeyPEM(data []byte) bool {
	block := firstKeyBlock(data)
	return block != nil && block.Type == pemTypeEncryptedPrivateKey
}

// ParsePrivateKeyPEM parses the private key in the first PEM block of data
// (a leading "EC PARAMETERS" block is skipped). Supported blocks:
//
//   - "PRIVATE KEY": unencrypted PKCS#8; passphrase is ignored.
//   - "ENCRYPTED PRIVATE KEY": PKCS#8 with PBES2, PBKDF2 with HMAC-SHA1,
//     -SHA224, -SHA256, -SHA384 or -SHA512, and AES-128-, AES-192- or
//     AES-256-CBC, as written by MarshalEncryptedPrivateKey,
//     `openssl pkcs8 -topk8 -v2 aes256` and `openssl genpkey -aes256`.
//   - "RSA PRIVATE KEY" (PKCS#1) and "EC PRIVATE KEY" (SEC 1), unencrypted
//     only; the legacy OpenSSL PEM encryption (DEK-Info header) is refused.
//
// For an encrypted key it returns ErrPassphraseRequired if passphrase is
// empty, and ErrIncorrectPassphrase if the ciphertext does not decrypt to a
// valid private key. Encryption parameters are validated before any key
// derivation: the iteration count must be within [1000, 10000000], an
// explicit key length must match the cipher, and the IV must be 16 bytes.
//
// Errors never contain the passphrase or key material.
func ParsePrivateKeyPEM(data, passphrase []byte) (crypto.Signer, error) {
	block := firstKeyBlock(data)
	if block == nil {
		return nil, errors.New("pki: no PEM data found")
	}
	switch block.Type {
	case pemTypePrivateKey:
		defer clear(block.Bytes)
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: parsing PKCS#8 private key: %w", err)
		}
		return asSigner(key)
	case pemTypeEncryptedPrivateKey:
		if len(passphrase) == 0 {
			return nil, ErrPassphraseRequired
		}
		return decryptPKCS8(block.Bytes, passphrase)
	case pemTypeRSAPrivateKey, pemTypeECPrivateKey:
		if _, ok := block.Headers["DEK-Info"]; ok || block.Headers["Proc-Type"] != "" {
			return nil, fmt.Errorf("pki: %s uses legacy OpenSSL PEM encryption, which is not supported; convert it with `openssl pkcs8 -topk8 -v2 aes256`", block.Type)
		}
		defer clear(block.Bytes)
		if block.Type == pemTypeRSAPrivateKey {
			key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("pki: parsing PKCS#1 RSA private key: %w", err)
			}
			return key, nil
		}
		key, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: parsing EC private key: %w", err)
		}
		return key, nil
	default:
		t := block.Type
		if len(t) > 64 {
			t = t[:64] + "..."
		}
		return nil, fmt.Errorf("pki: PEM block of type %q is not a private key", t)
	}
}

// asSigner returns key as a crypto.Signer, or an error for keys that cannot
// sign (such as X25519).
func asSigner(key any) (crypto.Signer, error) {
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: private key of type %T cannot sign", key)
	}
	return s, nil
}

// pbes2Decryption is the validated content of a PBES2 EncryptedPrivateKeyInfo.
type pbes2Decryption struct {
	newHash    func() hash.Hash
	salt       []byte
	iterations int
	keyLen     int
	iv         []byte
	ciphertext []byte
}

// parsePBES2 decodes and validates an EncryptedPrivateKeyInfo without doing
// any key derivation. Its errors describe the structure, never the data.
func parsePBES2(der []byte) (*pbes2Decryption, error) {
	var info encryptedPrivateKeyInfo
	if err := unmarshalExact(der, &info); err != nil {
		return nil, fmt.Errorf("pki: malformed encrypted private key: %w", err)
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("pki: unsupported private key encryption %v (only PBES2 is supported; re-encrypt with `openssl pkcs8 -topk8 -v2 aes256`)", info.Algo.Algorithm)
	}
	var params pbes2Params
	if err := unmarshalExact(info.Algo.Parameters.FullBytes, &params); err != nil {
		return nil, fmt.Errorf("pki: malformed PBES2 parameters: %w", err)
	}

	// Key derivation function.
	kdf := params.KeyDerivationFunc
	if kdf.Algorithm.Equal(oidScrypt) {
		return nil, errors.New("pki: unsupported key derivation function scrypt (only PBKDF2 is supported)")
	}
	if !kdf.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("pki: unsupported key derivation function %v (only PBKDF2 is supported)", kdf.Algorithm)
	}
	var kp pbkdf2Params
	if err := unmarshalExact(kdf.Parameters.FullBytes, &kp); err != nil {
		return nil, fmt.Errorf("pki: malformed or unsupported PBKDF2 parameters: %w", err)
	}
	if kp.IterationCount < minPBKDF2Iterations || kp.IterationCount > maxPBKDF2Iterations {
		return nil, fmt.Errorf("pki: PBKDF2 iteration count %d outside the accepted range [%d, %d]",
			kp.IterationCount, minPBKDF2Iterations, maxPBKDF2Iterations)
	}
	if len(kp.Salt) < minPBKDF2SaltLen || len(kp.Salt) > maxPBKDF2SaltLen {
		return nil, fmt.Errorf("pki: PBKDF2 salt length %d outside the accepted range [%d, %d]",
			len(kp.Salt), minPBKDF2SaltLen, maxPBKDF2SaltLen)
	}
	var newHash func() hash.Hash
	switch prf := kp.PRF.Algorithm; {
	case len(prf) == 0 || prf.Equal(oidHMACWithSHA1): // absent: DEFAULT hmacWithSHA1
		newHash = sha1.New
	case prf.Equal(oidHMACWithSHA224):
		newHash = sha256.New224
	case prf.Equal(oidHMACWithSHA256):
		newHash = sha256.New
	case prf.Equal(oidHMACWithSHA384):
		newHash = sha512.New384
	case prf.Equal(oidHMACWithSHA512):
		newHash = sha512.New
	default:
		return nil, fmt.Errorf("pki: unsupported PBKDF2 pseudorandom function %v", prf)
	}
	if p := kp.PRF.Parameters; len(p.FullBytes) != 0 && !isNull(p) {
		return nil, errors.New("pki: malformed PBKDF2 pseudorandom function parameters")
	}

	// Encryption scheme.
	var keyLen int
	switch enc := params.EncryptionScheme.Algorithm; {
	case enc.Equal(oidAES128CBC):
		keyLen = 16
	case enc.Equal(oidAES192CBC):
		keyLen = 24
	case enc.Equal(oidAES256CBC):
		keyLen = 32
	default:
		return nil, fmt.Errorf("pki: unsupported private key cipher %v (only AES-CBC is supported)", enc)
	}
	if kp.KeyLength != 0 && kp.KeyLength != keyLen {
		return nil, fmt.Errorf("pki: PBKDF2 key length %d does not match the cipher's %d", kp.KeyLength, keyLen)
	}
	var iv []byte
	if err := unmarshalExact(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil {
		return nil, fmt.Errorf("pki: malformed AES-CBC IV: %w", err)
	}
	if len(iv) != aes.BlockSize {
		return nil, fmt.Errorf("pki: AES-CBC IV is %d bytes, want %d", len(iv), aes.BlockSize)
	}

	ct := info.EncryptedData
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("pki: encrypted private key length %d is not a positive multiple of the AES block size", len(ct))
	}
	if len(ct) > maxEncryptedKeyLen {
		return nil, fmt.Errorf("pki: encrypted private key of %d bytes is too large", len(ct))
	}
	return &pbes2Decryption{
		newHash:    newHash,
		salt:       kp.Salt,
		iterations: kp.IterationCount,
		keyLen:     keyLen,
		iv:         iv,
		ciphertext: ct,
	}, nil
}

// decryptPKCS8 decrypts and parses a DER EncryptedPrivateKeyInfo.
func decryptPKCS8(der, passphrase []byte) (crypto.Signer, error) {
	p, err := parsePBES2(der)
	if err != nil {
		return nil, err
	}

	// crypto/pbkdf2 takes the passphrase as a string, so this copy of it
	// cannot be zeroed.
	dk, err := pbkdf2.Key(p.newHash, string(passphrase), p.salt, p.iterations, p.keyLen)
	if err != nil {
		return nil, fmt.Errorf("pki: deriving key: %w", err)
	}
	block, err := aes.NewCipher(dk)
	clear(dk)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	plain := make([]byte, len(p.ciphertext))
	defer clear(plain)
	cipher.NewCBCDecrypter(block, p.iv).CryptBlocks(plain, p.ciphertext)

	// PKCS#7 padding. A wrong passphrase gives invalid padding with
	// probability about 255/256.
	padLen := int(plain[len(plain)-1])
	if padLen == 0 || padLen > aes.BlockSize {
		return nil, ErrIncorrectPassphrase
	}
	for _, b := range plain[len(plain)-padLen:] {
		if int(b) != padLen {
			return nil, ErrIncorrectPassphrase
		}
	}
	pkcs8 := plain[:len(plain)-padLen]

	// Garbage from a wrong passphrase essentially never has the shape of a
	// PKCS#8 PrivateKeyInfo; a correctly decrypted key of an algorithm
	// crypto/x509 does not know does, and gets its own error.
	var outer pkcs8Outer
	if err := unmarshalExact(pkcs8, &outer); err != nil {
		return nil, ErrIncorrectPassphrase
	}
	switch alg := outer.Algo.Algorithm; {
	case alg.Equal(oidKeyRSA), alg.Equal(oidKeyECDSA), alg.Equal(oidKeyEd25519), alg.Equal(oidKeyX25519):
	default:
		return nil, fmt.Errorf("pki: unsupported private key algorithm %v", alg)
	}
	clear(outer.PrivateKey) // a copy made by encoding/asn1

	key, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, ErrIncorrectPassphrase
	}
	return asSigner(key)
}

// unmarshalExact is asn1.Unmarshal refusing trailing data.
func unmarshalExact(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("trailing data")
	}
	return nil
}

// isNull reports whether v is an ASN.1 NULL.
func isNull(v asn1.RawValue) bool {
	return v.Class == asn1.ClassUniversal && v.Tag == asn1.TagNull && !v.IsCompound && len(v.Bytes) == 0
}
