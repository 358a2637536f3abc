package kdc

import (
	"context"
	"time"

	gasn1 "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Test hooks for the external tests.

func SetTimeOffset(o *PKINITOptions, d time.Duration) { o.timeOffset = d }
func UseGroup1024(o *PKINITOptions)                   { g := modp2; o.group = &g }
func OmitPAChecksum(o *PKINITOptions)                 { o.omitPAChecksum = true }

// Process is Handle without panic recovery, for the fuzz target.
func (k *KDC) Process(req []byte) []byte { return k.process(context.Background(), req, "fuzz") }

// NewTGSRequest exposes the TGS-REQ builder.
func (c *Client) NewTGSRequest(tgt *Credential, spn string) ([]byte, func([]byte) (*Credential, error), error) {
	req, subkey, body, err := c.newTGSRequest(tgt, spn)
	return req, func(reply []byte) (*Credential, error) { return readTGSReply(reply, subkey, body.Nonce) }, err
}

func TamperSignature(o *PKINITOptions) { o.tamperSig = true }

// TamperTGSBody changes the KDC-REQ-BODY of a TGS-REQ (its till) and
// keeps the PA-TGS-REQ whose checksum covered the original.
func TamperTGSBody(req []byte) ([]byte, error) {
	r, err := decodeKDCReq(req, 12)
	if err != nil {
		return nil, err
	}
	r.body.Till = r.body.Till.Add(-time.Hour)
	body, err := r.body.Marshal()
	if err != nil {
		return nil, err
	}
	return marshalKDCReq(12, 12, r.padata, body)
}

// ParseTDDHParameters reads the group sizes of a
// KDC_ERR_DH_KEY_PARAMETERS_NOT_ACCEPTED's e-data.
func ParseTDDHParameters(edata []byte) ([]int, error) {
	var md types.PADataSequence
	if _, err := gasn1.Unmarshal(edata, &md); err != nil {
		return nil, err
	}
	var bits []int
	for _, pa := range md {
		if pa.PADataType != 109 {
			continue
		}
		groups, err := parseTDDHParameters(pa.PADataValue)
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			bits = append(bits, g.P.BitLen())
		}
	}
	return bits, nil
}

// AddPAData re-encodes an AS-REQ or TGS-REQ with one more padata, keeping
// its body bytes and other padata: the same authenticator in a different
// request.
func AddPAData(req []byte, t int32, v []byte) ([]byte, error) {
	tag := 10
	if len(req) > 0 && req[0] == 0x6c {
		tag = 12
	}
	r, err := decodeKDCReq(req, tag)
	if err != nil {
		return nil, err
	}
	return marshalKDCReq(tag, tag, append(r.padata, types.PAData{PADataType: t, PADataValue: v}), r.rawBody)
}

// ParseMethodData decodes a METHOD-DATA.
func ParseMethodData(b []byte) (types.PADataSequence, error) {
	var md types.PADataSequence
	_, err := gasn1.Unmarshal(b, &md)
	return md, err
}

// SealRaw seals any plaintext as SealKeys seals its JSON, for the fuzz
// target.
func (s *Store) SealRaw(account string, plain []byte) ([]byte, error) {
	return sealWith(s.data.Master[len(s.data.Master)-1], s.data.Realm, account, plain)
}
