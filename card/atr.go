package card

// historicalBytes extracts the historical bytes of an ATR (ISO/IEC 7816-3 §8.2).
func historicalBytes(atr []byte) []byte {
	if len(atr) < 2 {
		return nil
	}
	k := int(atr[1] & 0x0F)
	y := atr[1] >> 4
	i := 2
	for {
		for bit := byte(1); bit <= 4; bit <<= 1 { // TA, TB, TC
			if y&bit != 0 {
				i++
			}
		}
		if y&8 == 0 {
			break
		}
		if i >= len(atr) {
			return nil
		}
		y = atr[i] >> 4 // TD
		i++
	}
	if i+k > len(atr) {
		return nil
	}
	return atr[i : i+k]
}

// atrExtendedLength reports whether the card capabilities in the ATR's
// historical bytes (compact-TLV tag 7, third byte, bit 0x40; ISO/IEC 7816-4
// §12.1.1.9) announce extended Lc and Le fields.
func atrExtendedLength(atr []byte) bool {
	h := historicalBytes(atr)
	if len(h) == 0 {
		return false
	}
	var objs []byte
	switch h[0] {
	case 0x80:
		objs = h[1:]
	case 0x00:
		if len(h) < 4 {
			return false
		}
		objs = h[1 : len(h)-3]
	default:
		return false
	}
	for len(objs) > 0 {
		tag, l := objs[0]>>4, int(objs[0]&0x0F)
		if 1+l > len(objs) {
			return false
		}
		v := objs[1 : 1+l]
		if tag == 7 && l >= 3 {
			return v[2]&0x40 != 0
		}
		objs = objs[1+l:]
	}
	return false
}
