// Package smime signs, encrypts, decrypts and verifies mail per S/MIME 4.0
// (RFC 8551) with its own small CMS layer (RFC 5652 SignedData and
// EnvelopedData, RFC 5083/5084 AES-GCM AuthEnvelopedData, RFC 5753 ECDH
// key agreement with RFC 3394 AES key wrap, RFC 4055 RSA-OAEP).
//
// The CMS is written here rather than taken from github.com/smallstep/pkcs7
// because that module writes AES-GCM in a layout nobody else reads, has no
// ECDH key agreement, writes RSA-OAEP parameters OpenSSL misreads and
// panics on crafted padding. What this package writes, OpenSSL reads
// (openssl cms -verify / -decrypt), and it reads what openssl cms writes.
//
// Messages:
//   - Sign: multipart/signed with a detached signature (SHA-256,
//     micalg=sha-256), or opaque application/pkcs7-mime signed-data.
//     The inner MIME entity is signed in canonical form (CRLF line ends),
//     with 8-bit bodies first encoded as quoted-printable or base64.
//   - Encrypt: enveloped-data with AES-256-CBC (default) or AES-128-CBC, or
//     authEnveloped-data with AES-GCM; RSA recipients by PKCS#1 v1.5 (default)
//     or RSA-OAEP (SHA-256, MGF1-SHA-256), EC recipients by ECDH
//     (dhSinglePass-stdDH-sha256kdf-scheme with AES key wrap).
//   - CertsOnly: a certs-only message to hand certificates to someone.
//
// Keys: signing takes any crypto.Signer (RSA or ECDSA, for example a card
// key); decryption takes a crypto.Decrypter (RSA) or a key with an
// ECDH(*ecdh.PublicKey) ([]byte, error) method (an *ecdh.PrivateKey or an EC
// card key).
//
// Errors: a message that is malformed, tampered with, not for the given
// recipient, or whose signature or signer does not check out is invalid
// (IsInvalid reports true: *FormatError, *VerifyError, ErrNotForRecipient,
// ErrDecrypt); anything else (a key that cannot be used, a card error) is
// an error of the environment.
package smime
