package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
)

var selfCheckCurves = []struct {
	name  string
	curve elliptic.Curve
	hash  crypto.Hash
}{
	{"P-256", elliptic.P256(), crypto.SHA256},
	{"P-384", elliptic.P384(), crypto.SHA384},
	{"P-521", elliptic.P521(), crypto.SHA512},
}

func digestOf(h crypto.Hash, msg []byte) []byte {
	d := h.New()
	d.Write(msg)
	return d.Sum(nil)
}

// TestECDSASelfCheckAgreesWithVerify: on good signatures, signatures with
// one bit changed, other digests and made-up (r, s), the self-check gives
// ecdsa.VerifyASN1's answer.
func TestECDSASelfCheckAgreesWithVerify(t *testing.T) {
	seed := uint64(mrand.Int64())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 1))
	for _, tc := range selfCheckCurves {
		t.Run(tc.name, func(t *testing.T) {
			key, err := ecdsa.GenerateKey(tc.curve, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			c, err := newECDSASelfCheck(key)
			if err != nil {
				t.Fatal(err)
			}
			n := tc.curve.Params().N
			agree := func(what string, digest, sig []byte) bool {
				t.Helper()
				want := ecdsa.VerifyASN1(&key.PublicKey, digest, sig)
				if got := c.check(digest, sig); got != want {
					t.Fatalf("%s: self-check %v, VerifyASN1 %v (sig %x, digest %x)", what, got, want, sig, digest)
				}
				return want
			}
			for i := 0; i < 50; i++ {
				msg := make([]byte, 1+rng.IntN(64))
				for j := range msg {
					msg[j] = byte(rng.Uint32())
				}
				digest := digestOf(tc.hash, msg)
				sig, err := ecdsa.SignASN1(rand.Reader, key, digest)
				if err != nil {
					t.Fatal(err)
				}
				if !agree("good signature", digest, sig) {
					t.Fatal("a good signature does not verify")
				}
				bad := append([]byte(nil), sig...)
				bad[rng.IntN(len(bad))] ^= 1 << rng.IntN(8)
				agree("one bit changed", digest, bad)
				other := digestOf(tc.hash, append(msg, 0))
				if agree("another digest", other, sig) {
					t.Fatal("a signature verifies for another digest")
				}
				var rs struct{ R, S *big.Int }
				if _, err := asn1.Unmarshal(sig, &rs); err != nil {
					t.Fatal(err)
				}
				for _, v := range []struct {
					what string
					r, s *big.Int
				}{
					{"r+1", new(big.Int).Add(rs.R, big.NewInt(1)), rs.S},
					{"n-s", rs.R, new(big.Int).Sub(n, rs.S)}, // (r, n-s) also verifies
					{"r+n", new(big.Int).Add(rs.R, n), rs.S},
					{"s+n", rs.R, new(big.Int).Add(rs.S, n)},
					{"r=0", big.NewInt(0), rs.S},
					{"s=0", rs.R, big.NewInt(0)},
					{"r<0", new(big.Int).Neg(rs.R), rs.S},
					{"random r", randBelow(rng, n), rs.S},
				} {
					der, err := asn1.Marshal(struct{ R, S *big.Int }{v.r, v.s})
					if err != nil {
						t.Fatal(err)
					}
					agree(v.what, digest, der)
				}
				agree("trailing data", digest, append(append([]byte(nil), sig...), 0))
				agree("truncated", digest, sig[:len(sig)-1])
			}
		})
	}
}

// TestECDSASelfCheckCatchesAnotherKey: a signature made with another
// scalar (a fault in the signer's copy of the key) fails the check, and a
// check whose own copy differs from the public key is not made.
func TestECDSASelfCheckCatchesAnotherKey(t *testing.T) {
	for _, tc := range selfCheckCurves {
		key, _ := ecdsa.GenerateKey(tc.curve, rand.Reader)
		other, _ := ecdsa.GenerateKey(tc.curve, rand.Reader)
		c, err := newECDSASelfCheck(key)
		if err != nil {
			t.Fatal(err)
		}
		digest := digestOf(tc.hash, []byte("tbs"))
		sig, _ := ecdsa.SignASN1(rand.Reader, other, digest)
		if c.check(digest, sig) {
			t.Errorf("%s: a signature by another key passes", tc.name)
		}
		mismatched := &ecdsa.PrivateKey{PublicKey: key.PublicKey, D: other.D}
		if _, err := newECDSASelfCheck(mismatched); err == nil {
			t.Errorf("%s: a private key that does not match its public key was accepted", tc.name)
		}
	}
}

// TestCAIssueSelfCheckFault: with a software ECDSA CA key, Issue checks
// signatures with the self-check, and a fault between the key that signs
// and the key that checks is caught: nothing is returned, and the
// certificate is recorded revoked.
func TestCAIssueSelfCheckFault(t *testing.T) {
	for _, caAlg := range []KeyAlgorithm{P256, P384} {
		t.Run(string(caAlg), func(t *testing.T) {
			w := newWriterCA(t, caAlg, nil, true)
			if w.ca.writer.ecCheck == nil {
				t.Fatal("a software ECDSA CA key is not checked by the self-check")
			}
			w.users["alice"] = &User{Name: "alice", UPN: "alice@example.test", DisplayName: "Alice", SID: "S-1-5-21-1-2-3-1104"}
			req := IssueRequest{Template: "smartcard-logon", Request: &Request{CSR: &x509.CertificateRequest{PublicKey: writerKey(t, P256).Public()}},
				Requester: RequesterOperator, User: "alice"}
			if _, err := w.ca.Issue(context.Background(), req); err != nil {
				t.Fatalf("Issue: %v", err)
			}
			other, _ := ecdsa.GenerateKey(w.ca.cert.PublicKey.(*ecdsa.PublicKey).Curve, rand.Reader)
			c, err := newECDSASelfCheck(other)
			if err != nil {
				t.Fatal(err)
			}
			w.ca.writer.ecCheck = c // the checking copy no longer matches the signer
			issued, err := w.ca.Issue(context.Background(), req)
			if err == nil || issued != nil || !strings.Contains(err.Error(), "invalid signature") {
				t.Fatalf("Issue with a fault = %v, %v; want an invalid-signature error and nothing", issued, err)
			}
			revoked, err := w.ca.DB().List(Query{User: "alice", Status: StatusRevoked})
			if err != nil {
				t.Fatal(err)
			}
			if len(revoked) != 1 {
				t.Fatalf("%d revoked records, want the faulty certificate", len(revoked))
			}
		})
	}
}

// FuzzECDSASelfCheck: any signature bytes give VerifyASN1's answer, and
// never a panic.
func FuzzECDSASelfCheck(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	c, err := newECDSASelfCheck(key)
	if err != nil {
		f.Fatal(err)
	}
	digest := sha256.Sum256([]byte("tbs"))
	sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
	f.Add(sig, digest[:])
	long := sha512.Sum512([]byte("tbs"))
	f.Add(sig, long[:])
	f.Fuzz(func(t *testing.T, sig, digest []byte) {
		if got, want := c.check(digest, sig), ecdsa.VerifyASN1(&key.PublicKey, digest, sig); got != want {
			t.Fatalf("self-check %v, VerifyASN1 %v", got, want)
		}
	})
}

func randBelow(rng *mrand.Rand, n *big.Int) *big.Int {
	b := make([]byte, (n.BitLen()+7)/8)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return new(big.Int).Mod(new(big.Int).SetBytes(b), n)
}

// BenchmarkSignatureCheck compares the self-check with ecdsa.VerifyASN1
// on the same P-256 signature.
func BenchmarkSignatureCheck(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := newECDSASelfCheck(key)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("tbs"))
	sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
	b.Run("check=self", func(b *testing.B) {
		for b.Loop() {
			if !c.check(digest[:], sig) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("check=verify", func(b *testing.B) {
		for b.Loop() {
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			ecdsa.SignASN1(rand.Reader, key, digest[:])
		}
	})
}
