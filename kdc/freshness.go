package kdc

import (
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Freshness tokens (RFC 8070): the KDC hands one out with every
// PREAUTH_REQUIRED, and a PKINIT client signs it into its PKAuthenticator,
// proving the signature was made after the token was issued (a card
// cannot pre-compute logons). The token is opaque to the client; ours is
// an EncryptedData of a PA-ENC-TS-ENC under the krbtgt key, key usage 514.

// freshnessLifetime is how long a token is accepted after it was issued
// (plus the clock skew): time for the user to enter a PIN.
const freshnessLifetime = 10 * time.Minute

func (k *KDC) freshnessToken(now time.Time) ([]byte, error) {
	key, ok := ticketKey(k.cfg.Store.krbtgt())
	if !ok {
		return nil, errNoKrbtgtKey
	}
	ts, err := asn1.Marshal(types.PAEncTSEnc{PATimestamp: kerberosTime(now), PAUSec: now.Nanosecond() / 1000})
	if err != nil {
		return nil, err
	}
	ed, err := krbcrypto.GetEncryptedData(ts, types.EncryptionKey{KeyType: key.EType, KeyValue: key.Value}, keyUsageFreshness, key.KVNO)
	if err != nil {
		return nil, err
	}
	return ed.Marshal()
}

// checkFreshness verifies a token the client echoed.
func (k *KDC) checkFreshness(tok []byte, now time.Time) *Error {
	var ed types.EncryptedData
	if err := ed.Unmarshal(tok); err != nil {
		return refuseQuiet(ErrPreauthFailed, "invalid freshness token", "freshness token does not decode: %v", err)
	}
	key, ok := k.cfg.Store.krbtgt().keyVersion(ed.EType, ed.KVNO)
	if !ok {
		return refuseQuiet(ErrPreauthExpired, "freshness token expired", "freshness token key %d/%d unknown", ed.EType, ed.KVNO)
	}
	plain, err := decrypt(ed, types.EncryptionKey{KeyType: key.EType, KeyValue: key.Value}, keyUsageFreshness)
	if err != nil {
		return refuseQuiet(ErrPreauthFailed, "invalid freshness token", "freshness token does not decrypt: %v", err)
	}
	var ts types.PAEncTSEnc
	if _, err := asn1.Unmarshal(plain, &ts); err != nil {
		return refuseQuiet(ErrPreauthFailed, "invalid freshness token", "freshness token content: %v", err)
	}
	issued := ts.PATimestamp
	if issued.After(now.Add(k.cfg.ClockSkew)) || now.Sub(issued) > freshnessLifetime+k.cfg.ClockSkew {
		return refuse(ErrPreauthExpired, "freshness token issued %s is too old", issued.Format(time.RFC3339))
	}
	return nil
}
