package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
)

// KeyAlgorithm names a key type and size, as templates and the command line
// spell it.
type KeyAlgorithm string

// The key algorithms the CA accepts, for its own key and for requests.
const (
	RSA2048 KeyAlgorithm = "rsa2048"
	RSA3072 KeyAlgorithm = "rsa3072"
	RSA4096 KeyAlgorithm = "rsa4096"
	P256    KeyAlgorithm = "p256"
	P384    KeyAlgorithm = "p384"
)

// KeyAlgorithms lists every supported algorithm, strongest last within a family.
var KeyAlgorithms = []KeyAlgorithm{RSA2048, RSA3072, RSA4096, P256, P384}

// ParseKeyAlgorithm accepts the names above and common spellings
// ("RSA-2048", "ecdsa-p256", "P-384").
func ParseKeyAlgorithm(s string) (KeyAlgorithm, error) {
	n := strings.ToLower(s)
	n = strings.NewReplacer("-", "", "_", "", "ecdsa", "", "ecc", "", "secp256r1", "p256", "secp384r1", "p384").Replace(n)
	for _, a := range KeyAlgorithms {
		if n == string(a) {
			return a, nil
		}
	}
	return "", fmt.Errorf("pki: unknown key algorithm %q (want one of rsa2048, rsa3072, rsa4096, p256, p384)", s)
}

// GenerateKey makes a new software key. Card keys are generated on the card;
// this is for the CA's own key and for tests.
func GenerateKey(alg KeyAlgorithm) (crypto.Signer, error) {
	switch alg {
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case P256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case P384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	return nil, fmt.Errorf("pki: unknown key algorithm %q", alg)
}

// KeyAlgorithmOf classifies a public key. Keys the CA does not support (other
// sizes and curves, Ed25519) get an error.
func KeyAlgorithmOf(pub crypto.PublicKey) (KeyAlgorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return RSA2048, nil
		case 3072:
			return RSA3072, nil
		case 4096:
			return RSA4096, nil
		}
		return "", fmt.Errorf("pki: unsupported RSA key size %d bits", k.N.BitLen())
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return P256, nil
		case elliptic.P384():
			return P384, nil
		}
		return "", fmt.Errorf("pki: unsupported elliptic curve %s", k.Curve.Params().Name)
	}
	return "", fmt.Errorf("pki: unsupported public key type %T", pub)
}

// isRSA reports whether alg is an RSA algorithm.
func (a KeyAlgorithm) isRSA() bool { return strings.HasPrefix(string(a), "rsa") }
