// Package pki is the station's certificate authority.
//
// It holds the CA key behind a crypto.Signer (a key file, a token or a card),
// issues certificates from data-driven templates for PKCS#10 requests and
// enroll-on-behalf-of requests (a CMS SignedData from an enrollment agent),
// takes every subject name from the directory rather than from the request,
// records each certificate durably in a bbolt database before returning it,
// and revokes and publishes CRLs.
//
// The package knows nothing about the user interface; it reaches the
// directory only through the small interfaces it defines (UserStore,
// Publisher).
package pki
