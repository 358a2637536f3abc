package kdc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

// FuzzPKINITStructures feeds arbitrary bytes to every PKINIT and CMS
// parser: none may panic, and what parses must re-encode.
func FuzzPKINITStructures(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "f"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	cert, _ := x509.ParseCertificate(der)
	dh, _ := newDHKey(modp14)
	spki, _ := marshalDHSubjectPublicKeyInfo(modp14.dhDomain, dh.Public)
	ap := &authPack{CUsec: 5, CTime: time.Now().UTC().Truncate(time.Second), Nonce: 42, PAChecksum: make([]byte, 20),
		FreshnessToken: []byte{1, 2}, ClientPublicValue: spki, SupportedKDFs: []asn1.ObjectIdentifier{oidKDFSHA256}, ClientDHNonce: []byte{9}}
	apDER, _ := ap.marshal()
	signed, _ := signCMS(oidAuthData, apDER, key, []*x509.Certificate{cert})
	req, _ := marshalPAPKASReq(signed)
	info, _ := (&kdcDHKeyInfo{PublicKey: dh.Public, Nonce: 42, Expiration: time.Now().UTC().Truncate(time.Second)}).marshal()
	rep, _ := (&paPKASRep{DHSignedData: signed, KDF: oidKDFSHA256, ServerDHNonce: []byte{1}}).marshal()
	td, _ := marshalTDDHParameters([]dhDomain{modp14.dhDomain, modp16.dhDomain})
	for _, seed := range [][]byte{apDER, signed, req, info, rep, td, spki} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := parseAuthPack(b); err == nil {
			if _, err := a.marshal(); err != nil {
				t.Fatalf("parsed AuthPack does not re-encode: %v", err)
			}
		}
		parsePAPKASReq(b)
		if sd, err := parseSignedData(b); err == nil {
			sd.verify()
		}
		parseDHSubjectPublicKeyInfo(b)
		parseKDCDHKeyInfo(b)
		if r, err := parsePAPKASRep(b); err == nil {
			r.marshal()
		}
		parseTDDHParameters(b)
		parseSignedAttrs(b)
		signedDataOf(b)
	})
}
