package pki

import (
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
	"time"
)

// Revoke marks a certificate revoked with an RFC 5280 reason.
// ReasonCertificateHold suspends it; Release lifts the hold. The new status
// shows in the next CRL.
func (ca *CA) Revoke(serial *big.Int, reason RevocationReason) (*Record, error) {
	return ca.cfg.DB.Revoke(serial, reason, ca.cfg.Now().UTC().Truncate(time.Second))
}

// Release lifts a certificateHold.
func (ca *CA) Release(serial *big.Int) (*Record, error) { return ca.cfg.DB.Release(serial) }

// CRL makes a full CRL of every revoked and held certificate, with the next
// CRL number (recorded before the CRL is signed, so a number is never
// reused) and nextUpdate after the configured CRL validity.
func (ca *CA) CRL() (*x509.RevocationList, error) {
	revoked, err := ca.cfg.DB.Revoked()
	if err != nil {
		return nil, err
	}
	number, err := ca.cfg.DB.NextCRLNumber()
	if err != nil {
		return nil, err
	}
	now := ca.cfg.Now().UTC().Truncate(time.Second)
	tmpl := &x509.RevocationList{
		Number:     number,
		ThisUpdate: now,
		NextUpdate: now.Add(ca.cfg.CRLValidity),
	}
	if tmpl.NextUpdate.After(ca.cert.NotAfter) {
		tmpl.NextUpdate = ca.cert.NotAfter
	}
	for _, r := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber:   r.Serial,
			RevocationTime: r.RevokedAt,
			ReasonCode:     int(r.Reason),
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.cfg.Signer)
	if err != nil {
		return nil, fmt.Errorf("pki: signing CRL: %w", err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, err
	}
	if err := crl.CheckSignatureFrom(ca.cert); err != nil {
		return nil, fmt.Errorf("pki: the CRL signature does not verify: %w", err)
	}
	return crl, nil
}
