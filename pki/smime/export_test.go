package smime

// SmimeDERForTest exposes the body decoding of a pkcs7-mime message to
// tests.
func SmimeDERForTest(msg []byte) ([]byte, error) {
	m, err := parseMessage(canonicalCRLF(msg))
	if err != nil {
		return nil, err
	}
	return pkcs7Part("test", m)
}
