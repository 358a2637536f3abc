package directory

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Passwords are stored as argon2id hashes in the format of OpenLDAP's
// pw-argon2 module: {ARGON2}$argon2id$v=19$m=19456,t=2,p=1$salt$hash
// (unpadded base64). Pre-hashed values given through LDAP may also use
// {SSHA512} or {SSHA256} (salted SHA-2, as slapd's pw-sha2 writes them),
// so that existing directories can be imported; other schemes are refused.

// Argon2 parameters: OWASP's minimum for argon2id (19 MiB, 2 passes).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16

	// MinPasswordLength is the shortest password the directory accepts.
	MinPasswordLength = 8
	// MaxPasswordLength bounds the work a bind can ask for.
	MaxPasswordLength = 256
)

// hashSlots bounds concurrent argon2 computations (each holds 19 MiB).
var hashSlots = make(chan struct{}, max(2, runtime.NumCPU()))

func argonKey(pw, salt []byte, t, m uint32, p uint8) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey(pw, salt, t, m, p, argonKeyLen)
}

// checkPasswordPolicy checks a new cleartext password.
func checkPasswordPolicy(pw []byte) error {
	switch {
	case len(pw) < MinPasswordLength:
		return errorf(ResultConstraintViolation, ErrPasswordPolicy, fmt.Sprintf("a password needs at least %d characters", MinPasswordLength))
	case len(pw) > MaxPasswordLength:
		return errorf(ResultConstraintViolation, ErrPasswordPolicy, fmt.Sprintf("a password may have at most %d bytes", MaxPasswordLength))
	case !utf8.Valid(pw) || bytes.ContainsAny(pw, "\x00\r\n"):
		return errorf(ResultConstraintViolation, ErrPasswordPolicy, "a password must be UTF-8 text on one line")
	}
	return nil
}

// HashPassword hashes a cleartext password for storage.
func HashPassword(pw []byte) ([]byte, error) {
	if err := checkPasswordPolicy(pw); err != nil {
		return nil, err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	key := argonKey(pw, salt, argonTime, argonMemory, argonThreads)
	enc := base64.RawStdEncoding
	return fmt.Appendf(nil, "{ARGON2}$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argonMemory, argonTime, argonThreads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// storedScheme returns the scheme of a userPassword value given over LDAP:
// "" for cleartext (to be hashed), the upper-case scheme name otherwise.
func storedScheme(v []byte) string {
	if len(v) < 3 || v[0] != '{' {
		return ""
	}
	end := bytes.IndexByte(v, '}')
	if end < 2 || end > 16 {
		return ""
	}
	return strings.ToUpper(string(v[1:end]))
}

// preparePassword turns a userPassword value from an add or modify into the
// stored form: cleartext is hashed; a pre-hashed value is checked.
func preparePassword(v []byte) ([]byte, error) {
	switch storedScheme(v) {
	case "":
		return HashPassword(v)
	case "ARGON2":
		if _, _, _, _, _, err := parseArgon2(v); err != nil {
			return nil, errorf(ResultInvalidAttributeSyntax, nil, "userPassword: "+err.Error())
		}
		return bytes.Clone(v), nil
	case "SSHA512", "SSHA256":
		if _, _, err := parseSSHA(v); err != nil {
			return nil, errorf(ResultInvalidAttributeSyntax, nil, "userPassword: "+err.Error())
		}
		return bytes.Clone(v), nil
	default:
		return nil, errorf(ResultUnwillingToPerform, nil, "userPassword: hash scheme {"+storedScheme(v)+"} is not accepted (use cleartext over TLS, {ARGON2}, {SSHA512} or {SSHA256})")
	}
}

func parseArgon2(v []byte) (salt, key []byte, t, m uint32, p uint8, err error) {
	s := strings.TrimPrefix(string(v), "{ARGON2}")
	if len(s) == len(v) {
		s = string(v[len("{argon2}"):])
	}
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v=19" {
		return nil, nil, 0, 0, 0, fmt.Errorf("not an argon2id hash")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return nil, nil, 0, 0, 0, fmt.Errorf("bad argon2 parameters")
	}
	// Bound the work a stored (possibly imported) hash can demand.
	if m < 8*1024 || m > 256*1024 || t < 1 || t > 10 || p < 1 || p > 8 {
		return nil, nil, 0, 0, 0, fmt.Errorf("argon2 parameters out of range")
	}
	enc := base64.RawStdEncoding
	if salt, err = enc.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return nil, nil, 0, 0, 0, fmt.Errorf("bad argon2 salt")
	}
	if key, err = enc.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return nil, nil, 0, 0, 0, fmt.Errorf("bad argon2 hash")
	}
	return salt, key, t, m, p, nil
}

func parseSSHA(v []byte) (digest, salt []byte, err error) {
	scheme := storedScheme(v)
	raw, err := base64.StdEncoding.DecodeString(string(v[len(scheme)+2:]))
	size := map[string]int{"SSHA512": sha512.Size, "SSHA256": sha256.Size}[scheme]
	if err != nil || len(raw) <= size {
		return nil, nil, fmt.Errorf("not a {%s} hash", scheme)
	}
	return raw[:size], raw[size:], nil
}

// verifyPassword checks a cleartext password against a stored value in
// constant time.
func verifyPassword(stored, pw []byte) bool {
	if len(pw) == 0 || len(pw) > MaxPasswordLength {
		return false
	}
	switch storedScheme(stored) {
	case "ARGON2":
		salt, key, t, m, p, err := parseArgon2(stored)
		if err != nil {
			return false
		}
		hashSlots <- struct{}{}
		got := argon2.IDKey(pw, salt, t, m, p, uint32(len(key)))
		<-hashSlots
		return subtle.ConstantTimeCompare(got, key) == 1
	case "SSHA512":
		d, salt, err := parseSSHA(stored)
		if err != nil {
			return false
		}
		h := sha512.Sum512(append(bytes.Clone(pw), salt...))
		return subtle.ConstantTimeCompare(h[:], d) == 1
	case "SSHA256":
		d, salt, err := parseSSHA(stored)
		if err != nil {
			return false
		}
		h := sha256.Sum256(append(bytes.Clone(pw), salt...))
		return subtle.ConstantTimeCompare(h[:], d) == 1
	}
	return false
}

// dummyHash is verified against when a bind names no user, so that a
// missing entry takes as long as a wrong password.
var dummyHash = []byte("{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$c2NzdGF0aW9uZHVtbXk$2X7cSKKVj8y3Ua0MdmLDm9r7Yy3AAgoLr0R1LnCMk9o")

// GeneratePassword makes a random password (RFC 3062 genPasswd).
func GeneratePassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	for i := range b {
		b[i] = alphabet[randIntn(len(alphabet))]
	}
	return string(b)
}

func randIntn(n int) int {
	var b [1]byte
	limit := 256 - 256%n
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err)
		}
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}
