package virtual

import (
	"bytes"
	"crypto/subtle"
	"crypto/x509"
)

// applicationTemplate is the SELECT response: application property
// template with the PIX (version 1.0) and the coexistent tag allocation
// authority.
var applicationTemplate = []byte{
	0x61, 0x11, 0x4F, 0x06, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
	0x79, 0x07, 0x4F, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08,
}

// discoveryObject is object 7E: the PIV AID and a PIN usage policy of
// "PIV Card Application PIN only".
var discoveryObject = []byte{
	0x7E, 0x12, 0x4F, 0x0B, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
	0x5F, 0x2F, 0x02, 0x40, 0x00,
}

func (c *Card) cmdSelect(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0x04 || (cmd.p2 != 0x00 && cmd.p2 != 0x0C) {
		return nil, swWrongP1P2
	}
	aid := cmd.data
	if len(aid) < 5 || !bytes.HasPrefix(pivAID, aid) {
		return nil, swNotFound // and the current selection stays
	}
	// As on a YubiKey, (re)selecting the application resets its security
	// status: yubico-piv-tool relies on it to read the PIN retry counter.
	c.selected = true
	c.pinVerified, c.pinFresh, c.mgmtAuthed = false, false, false
	if cmd.p2 == 0x0C {
		return nil, swOK
	}
	return applicationTemplate, swOK
}

// pinProtected lists the objects SP 800-73-4 lets only a PIN holder read.
func pinProtected(tag Tag) bool {
	switch tag {
	case 0x5FC103, 0x5FC108, 0x5FC109, 0x5FC121:
		return true
	}
	return false
}

// objectTag reads the 5C tag list of GET DATA and PUT DATA.
func objectTag(v []byte) (Tag, bool) {
	if len(v) < 1 || len(v) > 3 {
		return 0, false
	}
	var t Tag
	for _, b := range v {
		t = t<<8 | Tag(b)
	}
	return t, true
}

func (c *Card) cmdGetData(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0x3F || cmd.p2 != 0xFF {
		return nil, swWrongP1P2
	}
	ts, err := parseTLVs(cmd.data)
	if err != nil || len(ts) != 1 || ts[0].tag != 0x5C {
		return nil, swWrongData
	}
	tag, ok := objectTag(ts[0].value)
	if !ok {
		return nil, swWrongData
	}
	if tag == 0x7E {
		return discoveryObject, swOK
	}
	if pinProtected(tag) && !c.pinVerified {
		return nil, swSecurityStatus
	}
	v, ok := c.st.Objects[tag]
	if !ok {
		return nil, swNotFound
	}
	return mkTLV(0x53, v), swOK
}

// writableObject: the PIV containers 5FC1xx and Yubico's 5FFFxx.
func writableObject(t Tag) bool {
	return t>>8 == 0x5FC1 || t>>8 == 0x5FFF
}

func (c *Card) cmdPutData(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0x3F || cmd.p2 != 0xFF {
		return nil, swWrongP1P2
	}
	if !c.mgmtAuthed {
		return nil, swSecurityStatus
	}
	ts, err := parseTLVs(cmd.data)
	if err != nil || len(ts) != 2 || ts[0].tag != 0x5C || ts[1].tag != 0x53 {
		return nil, swWrongData
	}
	tag, ok := objectTag(ts[0].value)
	if !ok || !writableObject(tag) {
		return nil, swWrongData
	}
	if len(ts[1].value) == 0 {
		delete(c.st.Objects, tag)
	} else {
		c.st.Objects[tag] = bytes.Clone(ts[1].value)
	}
	c.dirty = true
	return nil, swOK
}

// padded8 is a PIN or PUK as VERIFY carries it: padded to 8 with 0xFF.
func padded8(secret []byte) []byte {
	b := bytes.Repeat([]byte{0xFF}, 8)
	copy(b, secret)
	return b
}

// unpad8 reverses padded8 and checks the result is a valid PIN or PUK.
func unpad8(b []byte) ([]byte, bool) {
	if len(b) != 8 {
		return nil, false
	}
	v := bytes.TrimRight(b, "\xff")
	if !validSecret(v) {
		return nil, false
	}
	return bytes.Clone(v), true
}

func secretMatches(secret, presented []byte) bool {
	return subtle.ConstantTimeCompare(padded8(secret), presented) == 1
}

func retriesSW(n int) uint16 { return 0x63C0 | uint16(n&0x0F) }

func (c *Card) cmdVerify(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0x00 && cmd.p1 != 0xFF {
		return nil, swWrongP1P2
	}
	if cmd.p2 != 0x80 {
		return nil, swRefNotFound
	}
	if cmd.p1 == 0xFF { // reset the security status
		if len(cmd.data) != 0 {
			return nil, swWrongData
		}
		c.pinVerified, c.pinFresh = false, false
		return nil, swOK
	}
	st := c.st
	if len(cmd.data) == 0 { // status query
		switch {
		case c.pinVerified:
			return nil, swOK
		case st.PINRetries == 0:
			return nil, swAuthBlocked
		}
		return nil, retriesSW(st.PINRetries)
	}
	if len(cmd.data) != 8 {
		return nil, swWrongData
	}
	if st.PINRetries == 0 {
		return nil, swAuthBlocked
	}
	if !secretMatches(st.PIN, cmd.data) {
		st.PINRetries--
		c.dirty = true
		c.pinVerified, c.pinFresh = false, false
		return nil, retriesSW(st.PINRetries)
	}
	if st.PINRetries != st.PINMaxRetries {
		st.PINRetries = st.PINMaxRetries
		c.dirty = true
	}
	c.pinVerified, c.pinFresh = true, true
	return nil, swOK
}

func (c *Card) cmdChangeReference(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0x00 {
		return nil, swWrongP1P2
	}
	st := c.st
	var secret *[]byte
	var retries *int
	var max int
	switch cmd.p2 {
	case 0x80:
		secret, retries, max = &st.PIN, &st.PINRetries, st.PINMaxRetries
	case 0x81:
		secret, retries, max = &st.PUK, &st.PUKRetries, st.PUKMaxRetries
	default:
		return nil, swRefNotFound
	}
	if len(cmd.data) != 16 {
		return nil, swWrongData
	}
	newValue, ok := unpad8(cmd.data[8:])
	if !ok {
		return nil, swWrongData
	}
	if *retries == 0 {
		return nil, swAuthBlocked
	}
	if !secretMatches(*secret, cmd.data[:8]) {
		*retries--
		c.dirty = true
		if cmd.p2 == 0x80 {
			c.pinVerified, c.pinFresh = false, false
		}
		return nil, retriesSW(*retries)
	}
	*secret = newValue
	*retries = max
	c.dirty = true
	if cmd.p2 == 0x80 {
		c.pinVerified, c.pinFresh = true, true
	}
	return nil, swOK
}

func (c *Card) cmdResetRetryCounter(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0x00 {
		return nil, swWrongP1P2
	}
	if cmd.p2 != 0x80 {
		return nil, swRefNotFound
	}
	if len(cmd.data) != 16 {
		return nil, swWrongData
	}
	newPIN, ok := unpad8(cmd.data[8:])
	if !ok {
		return nil, swWrongData
	}
	st := c.st
	if st.PUKRetries == 0 {
		return nil, swAuthBlocked
	}
	if !secretMatches(st.PUK, cmd.data[:8]) {
		st.PUKRetries--
		c.dirty = true
		return nil, retriesSW(st.PUKRetries)
	}
	st.PIN = newPIN
	st.PINRetries, st.PUKRetries = st.PINMaxRetries, st.PUKMaxRetries
	c.pinVerified, c.pinFresh = false, false
	c.dirty = true
	return nil, swOK
}

// policies reads the optional AA (PIN policy) and AB (touch policy)
// elements of GENERATE and IMPORT KEY.
func policies(ts []tlv, slot Slot) (pin, touch byte, ok bool) {
	pin, touch = defaultPINPolicy(slot), TouchPolicyNever
	if v, found := findTLV(ts, 0xAA); found {
		if len(v) != 1 || v[0] > PINPolicyAlways {
			return 0, 0, false
		}
		if v[0] != PINPolicyDefault {
			pin = v[0]
		}
	}
	if v, found := findTLV(ts, 0xAB); found {
		if len(v) != 1 || v[0] > TouchPolicyCached {
			return 0, 0, false
		}
		if v[0] != TouchPolicyDefault {
			touch = v[0]
		}
	}
	if slot == SlotAttestation {
		pin, touch = PINPolicyNever, TouchPolicyNever
	}
	return pin, touch, true
}

func (c *Card) cmdGenerate(cmd command) ([]byte, uint16) {
	slot := Slot(cmd.p2)
	if cmd.p1 != 0x00 || !isKeySlot(slot) || slot == SlotAttestation {
		return nil, swWrongP1P2
	}
	if !c.mgmtAuthed {
		return nil, swSecurityStatus
	}
	outer, err := parseTLVs(cmd.data)
	if err != nil || len(outer) != 1 || outer[0].tag != 0xAC {
		return nil, swWrongData
	}
	ts, err := parseTLVs(outer[0].value)
	if err != nil {
		return nil, swWrongData
	}
	a, ok := findTLV(ts, 0x80)
	if !ok || len(a) != 1 {
		return nil, swWrongData
	}
	pin, touch, ok := policies(ts, slot)
	if !ok {
		return nil, swWrongData
	}
	priv, err := generateKeyFunc(a[0])
	if err != nil {
		return nil, swWrongData
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, swNoPreciseDiagnosis
	}
	c.st.Keys[slot] = &Key{
		Algorithm:   a[0],
		PKCS8:       p8,
		PINPolicy:   pin,
		TouchPolicy: touch,
		Origin:      OriginGenerated,
	}
	c.keys[slot] = cachedKey{bytes.Clone(p8), priv}
	c.dirty = true
	return mkTLV(0x7F49, publicKeyTLVs(priv.Public())), swOK
}
