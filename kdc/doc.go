// Package kdc is the station's Kerberos KDC (AS and TGS exchanges, PKINIT
// smart-card logon, encrypted timestamp) and a PKINIT client.
//
// gokrb5 v8 supplies the message types and the enctypes; the KDC, PKINIT
// (RFC 4556, 8070, 8636), the CMS SignedData it needs, the listeners and
// the key store are here. MIT Kerberos 1.20 (kinit, kvno, klist) is the
// peer it is tested against.
//
// # Exchanges
//
// An AS-REQ without pre-authentication gets KDC_ERR_PREAUTH_REQUIRED with
// METHOD-DATA: PA-PK-AS-REQ when PKINIT is configured, PA-ENC-TIMESTAMP and
// PA-ETYPE-INFO2 when the client has long-term keys (administrators, in the
// KDC's Store), and an RFC 8070 freshness token (PA-AS-FRESHNESS), an
// encrypted timestamp under the krbtgt key (key usage 514). FAST (pa-type
// 136) is never offered: MIT kvno would wrap its TGS-REQs in it.
//
// PKINIT runs in Diffie-Hellman mode with MODP groups 14 and 16; other
// groups get KDC_ERR_DH_KEY_PARAMETERS_NOT_ACCEPTED (65) with
// TD-DH-PARAMETERS as METHOD-DATA (as MIT sends it). The reply key comes
// from the first RFC 8636 KDF the client offers among sha256, sha1, sha512
// (OtherInfo with the AS-REQ exactly as received and the PA-PK-AS-REP),
// else from octetstring2key. The KDC's DH exponents are 256 bits (group
// 14) and 320 bits (group 16), twice the groups' security strength.
//
// Public-key encryption mode (RFC 4556 §3.2.3.2, MIT's
// flag_RSA_PROTOCOL, the Windows 2000 flow) is used when the AuthPack has
// no clientPublicValue: a random reply key and a keyed checksum of the
// AS-REQ as received (key usage 6) in a ReplyKeyPack, signed by the KDC
// (id-pkinit-rkeyData), the SignedData encrypted to the client's RSA
// certificate (PKCS#1 v1.5 key transport; AES-256-CBC when the client's
// supportedCMSTypes name AES-CBC, else DES-EDE3-CBC as MIT's KDC uses).
// EC certificates get KDC_ERR_PUBLIC_KEY_ENCRYPTION_NOT_SUPPORTED (81).
//
// TGS-REQs carry the TGT and an authenticator whose checksum covers the
// KDC-REQ-BODY as received; service tickets are issued for the services
// the PrincipalStore knows (and the krbtgt, for renewal). The client's
// account is looked up again on every TGS-REQ, as AD does: a disabled
// account gets KDC_ERR_CLIENT_REVOKED (18), a deleted one
// KDC_ERR_C_PRINCIPAL_UNKNOWN (6). Disabled accounts are refused the same
// way in the AS exchange, before any pre-authentication.
//
// # Service keys
//
// The station keeps services on directory accounts (servicePrincipalName,
// as AD does), their keys sealed with Store.SealKeys under the store's
// master key (AES-256-GCM, bound to realm and account) and opened with
// OpenKeys; services registered in the store itself, as older versions
// did, keep working.
//
// # Checks of a PKINIT request and their errors
//
//	CMS signature (SHA-256/384/512; SHA-1 refused)   64 INVALID_SIG, 80
//	certificate validity period                        71 INVALID_CERTIFICATE
//	chain to a trust anchor                            70 CANT_VERIFY_CERTIFICATE
//	EKU id-pkinit-KPClientAuth or smart card logon     77 INCONSISTENT_KEY_PURPOSE
//	revocation (the RevocationChecker)                 72 REVOKED, 73 STATUS_UNKNOWN
//	paChecksum = SHA-1(KDC-REQ-BODY as received)       79 PA_CHECKSUM_MUST_BE_INCLUDED
//	PKAuthenticator nonce = request nonce              41 MODIFIED
//	ctime within the clock skew (5 minutes)            37 SKEW
//	freshness token, when sent                         24 PREAUTH_FAILED, 90 PREAUTH_EXPIRED
//	UPN / id-pkinit-san names the account              75 CLIENT_NAME_MISMATCH
//	SID extension = the account's objectSid            75 CLIENT_NAME_MISMATCH
//	strong mapping, with MappingFull                   66 CERTIFICATE_MISMATCH
//	the signed AuthPack not used before                34 REPEAT
//
// The requested name is resolved through the PrincipalStore (login name,
// or UPN for enterprise names), and the certificate must name that same
// account: its UPN equal to the account's userPrincipalName
// (case-insensitively), or an id-pkinit-san that is the account's
// principal. So a Windows-form certificate with only the UPN
// alice@example.test logs on as alice@EXAMPLE.TEST, as with a Windows KDC
// (MIT's KDC cannot map it). A SID extension that names another account is
// a name mismatch (75); a certificate without strong mapping under full
// enforcement is a certificate mismatch (66), the code Windows uses for it.
//
// MIT 1.20 labels ECDSA signatures sha256WithRSAEncryption; the KDC
// verifies a signature under the certificate's actual key type with the
// digest the SignerInfo names, and logs the mislabel at debug level.
//
// # Replays and retransmissions
//
// A request identical to one answered within twice the clock skew gets the
// same reply again (UDP retransmissions, client retries). A different
// request reusing a signed AuthPack, an encrypted timestamp or a TGS
// authenticator is refused with KRB_AP_ERR_REPEAT.
//
// # Transport
//
// UDP and TCP (4-byte length prefix) on the configured addresses.
// Requests are bounded by MaxMessageSize (64 KiB): a longer TCP length is
// answered with KRB_ERR_FIELD_TOOLONG without reading it; the RFC 5021
// extension bit gets four zero bytes. UDP replies longer than 4 KiB become
// KRB_ERR_RESPONSE_TOO_BIG. Connections and requests in flight are
// bounded, reads time out, and a panic while handling a request becomes
// KRB_ERR_GENERIC.
//
// # gokrb5 v8.4.4 traps handled here
//
// Besides those in REFERENCE.md §2: aes256-cts-hmac-sha384-192 reports a
// 24-byte key size (its keys are 32 bytes; GenerateEncryptionKey makes
// unusable keys), and DecryptMessage panics on ciphertext shorter than a
// confounder and a MAC. Ticket.Decrypt is not used on network input.
package kdc
