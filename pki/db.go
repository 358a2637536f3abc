package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Status is the revocation state of an issued certificate.
type Status string

const (
	// StatusValid is a certificate that has not been revoked (it may still
	// have expired; expiry is read from NotAfter, not from the status).
	StatusValid Status = "valid"
	// StatusRevoked is a permanently revoked certificate.
	StatusRevoked Status = "revoked"
	// StatusOnHold is a certificate revoked with reason certificateHold. It
	// is listed on CRLs like a revoked one, but the hold can be released
	// (back to StatusValid) or made permanent by revoking with another reason.
	StatusOnHold Status = "hold"
)

// valid reports whether s is one of the defined statuses.
func (s Status) valid() bool {
	return s == StatusValid || s == StatusRevoked || s == StatusOnHold
}

// RevocationReason is the RFC 5280 CRLReason (section 5.3.1).
type RevocationReason int

// The RFC 5280 CRLReason values. Value 7 is unused.
const (
	ReasonUnspecified          RevocationReason = 0
	ReasonKeyCompromise        RevocationReason = 1
	ReasonCACompromise         RevocationReason = 2
	ReasonAffiliationChanged   RevocationReason = 3
	ReasonSuperseded           RevocationReason = 4
	ReasonCessationOfOperation RevocationReason = 5
	ReasonCertificateHold      RevocationReason = 6
	ReasonRemoveFromCRL        RevocationReason = 8
	ReasonPrivilegeWithdrawn   RevocationReason = 9
	ReasonAACompromise         RevocationReason = 10
)

// revocationReasonNames holds the RFC 5280 ASN.1 names, indexed by value.
var revocationReasonNames = [...]string{
	ReasonUnspecified:          "unspecified",
	ReasonKeyCompromise:        "keyCompromise",
	ReasonCACompromise:         "cACompromise",
	ReasonAffiliationChanged:   "affiliationChanged",
	ReasonSuperseded:           "superseded",
	ReasonCessationOfOperation: "cessationOfOperation",
	ReasonCertificateHold:      "certificateHold",
	ReasonRemoveFromCRL:        "removeFromCRL",
	ReasonPrivilegeWithdrawn:   "privilegeWithdrawn",
	ReasonAACompromise:         "aACompromise",
}

// revocationReasonAliases maps normalised spellings (lower case, without
// '-', '_' and spaces) that are not simply the RFC name to a reason.
var revocationReasonAliases = map[string]RevocationReason{
	"cacompromise":  ReasonCACompromise, // also covers "CA-compromise"
	"aacompromise":  ReasonAACompromise,
	"hold":          ReasonCertificateHold,
	"onhold":        ReasonCertificateHold,
	"removefromcrl": ReasonRemoveFromCRL,
	"unhold":        ReasonRemoveFromCRL,
	"release":       ReasonRemoveFromCRL,
}

// String returns the RFC 5280 name of the reason ("keyCompromise"), or
// "RevocationReason(n)" for a value RFC 5280 does not define.
func (r RevocationReason) String() string {
	if r.defined() {
		return revocationReasonNames[r]
	}
	return "RevocationReason(" + strconv.Itoa(int(r)) + ")"
}

// defined reports whether r is a value RFC 5280 defines.
func (r RevocationReason) defined() bool {
	return r >= 0 && int(r) < len(revocationReasonNames) && revocationReasonNames[r] != ""
}

// ParseRevocationReason accepts an RFC 5280 reason name, case-insensitively
// and ignoring '-', '_' and spaces ("keyCompromise", "key-compromise",
// "KEY_COMPROMISE"), the short forms "hold" (certificateHold) and
// "release"/"unhold" (removeFromCRL), or the decimal CRLReason value ("1").
func ParseRevocationReason(s string) (RevocationReason, error) {
	if v, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		if r := RevocationReason(v); r.defined() {
			return r, nil
		}
		return 0, fmt.Errorf("pki: %q is not an RFC 5280 revocation reason code", s)
	}
	n := strings.ToLower(s)
	n = strings.NewReplacer("-", "", "_", "", " ", "").Replace(n)
	for i, name := range revocationReasonNames {
		if name != "" && n == strings.ToLower(name) {
			return RevocationReason(i), nil
		}
	}
	if r, ok := revocationReasonAliases[n]; ok {
		return r, nil
	}
	return 0, fmt.Errorf("pki: unknown revocation reason %q (want one of unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise, or a number)", s)
}

// Record is one issued certificate as the database keeps it.
type Record struct {
	// Serial is the certificate serial number; it must be positive.
	Serial *big.Int
	// DER is the certificate itself.
	DER []byte
	// Template names the template the certificate was issued from.
	Template string
	// User is the directory user the certificate was issued to.
	User string
	// Agent is the enrollment agent that requested the certificate on the
	// user's behalf, "" when none.
	Agent string
	// Subject is the subject distinguished name, for display.
	Subject string
	// NotBefore and NotAfter are the certificate's validity period.
	NotBefore, NotAfter time.Time
	// IssuedAt is when the CA issued the certificate.
	IssuedAt time.Time
	// Status is the revocation state.
	Status Status
	// Reason is the revocation reason; meaningful only when Status is not
	// StatusValid.
	Reason RevocationReason
	// RevokedAt is the revocation date; zero when Status is StatusValid.
	RevokedAt time.Time
}

// Certificate parses the record's DER.
func (r *Record) Certificate() (*x509.Certificate, error) {
	return x509.ParseCertificate(r.DER)
}

// Errors returned by DB.
var (
	// ErrNotFound is returned for a serial that is not in the database.
	ErrNotFound = errors.New("pki: certificate not found")
	// ErrSerialExists is returned by Record for a serial that is already
	// recorded with a different certificate.
	ErrSerialExists = errors.New("pki: certificate serial number already recorded")
	// ErrAlreadyRevoked is returned by Revoke for a certificate that is
	// already revoked (or already on hold, when asked to hold it again).
	ErrAlreadyRevoked = errors.New("pki: certificate is already revoked")
	// ErrNotOnHold is returned by Release for a certificate whose status is
	// not StatusOnHold.
	ErrNotOnHold = errors.New("pki: certificate is not on hold")
	// ErrDatabaseInUse is returned (wrapped, with the path) by OpenDB when
	// another process, or another DB in this process, holds the file lock.
	ErrDatabaseInUse = errors.New("pki: certificate database is in use by another process")
	// ErrCorruptDatabase is returned (wrapped, with details) when a stored
	// record or index entry cannot be decoded or is inconsistent.
	ErrCorruptDatabase = errors.New("pki: certificate database is corrupt")
)

// dbInUseError names the database file; it unwraps to ErrDatabaseInUse.
type dbInUseError struct{ path string }

func (e *dbInUseError) Error() string {
	return fmt.Sprintf("pki: certificate database %s is in use by another process", e.path)
}

func (e *dbInUseError) Unwrap() error { return ErrDatabaseInUse }

// dbCorrupt returns an error wrapping ErrCorruptDatabase.
func dbCorrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptDatabase, fmt.Sprintf(format, args...))
}

// Bucket and meta key names.
var (
	dbBucketCerts    = []byte("certs")
	dbBucketByUser   = []byte("by-user")
	dbBucketByStatus = []byte("by-status")
	dbBucketByExpiry = []byte("by-expiry")
	dbBucketRevoked  = []byte("revoked")
	dbBucketMeta     = []byte("meta")

	dbMetaSchema    = []byte("schema-version")
	dbMetaCRLNumber = []byte("crl-number")
)

// dbSchemaVersion is the layout of buckets and indexes; dbRecordVersion is
// the encoding of a value in the certs bucket that this program writes.
// Records of version 1 (JSON) are still read.
const (
	dbSchemaVersion     = 1
	dbRecordVersion     = 2
	dbRecordVersionJSON = 1
)

// Group commit: Record calls queue for one committer goroutine, which
// commits whatever has queued in one fsynced transaction. A lone call is
// committed at once; under load, the calls that arrive during one commit's
// fsync share the next. No fixed delay: the batch size follows the load.
const (
	dbMaxBatchSize = 1024
	dbGatherWindow = time.Millisecond
	dbLockTimeout  = 200 * time.Millisecond
)

// DB is the issued-certificate database, a bbolt file. Every update is
// fsynced before the method returns. It is safe for concurrent use; Record
// calls from many goroutines share commits (group commit).
//
// Layout: bucket "certs" maps the serial (big-endian bytes) to the encoded
// record; "by-user" (user 0x00 serial), "by-status" (status 0x00 serial),
// "by-expiry" (8-byte big-endian NotAfter unix seconds, serial) and
// "revoked" (serial) are indexes with empty values; "meta" holds the schema
// version and the CRL number. A record and its index entries always change
// in one transaction.
type DB struct {
	bolt *bolt.DB
	path string

	mu      sync.RWMutex // guards closed against queue sends
	closed  bool
	queue   chan *dbPending
	stopped chan struct{}
}

// dbPending is one Record call waiting for the committer.
type dbPending struct {
	key, value, userKey, statusKey, expiryKey, der []byte
	done                                           chan error
}

// OpenDB opens or creates the certificate database at path (mode 0600). It
// does not wait for the file lock beyond a short timeout: if another
// process (or another open DB in this process) holds the file, it returns
// an error wrapping ErrDatabaseInUse.
func OpenDB(path string) (*DB, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      dbLockTimeout,
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, &dbInUseError{path: path}
	}
	if err != nil {
		return nil, fmt.Errorf("pki: opening certificate database %s: %w", path, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(dbBucketMeta)
		if meta == nil {
			// A new database. A file with some of the buckets but no meta
			// bucket is not one, and is left alone.
			if tx.Bucket(dbBucketCerts) != nil {
				return dbCorrupt("bucket %q is missing", dbBucketMeta)
			}
			for _, name := range [][]byte{dbBucketCerts, dbBucketByUser, dbBucketByStatus, dbBucketByExpiry, dbBucketRevoked, dbBucketMeta} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			return tx.Bucket(dbBucketMeta).Put(dbMetaSchema, []byte(strconv.Itoa(dbSchemaVersion)))
		}
		v := meta.Get(dbMetaSchema)
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return dbCorrupt("schema version %q", v)
		}
		if n != dbSchemaVersion {
			return fmt.Errorf("pki: certificate database schema version %d is not supported (this program supports %d)", n, dbSchemaVersion)
		}
		// An existing database must have every bucket: recreating a lost
		// index empty would silently hide certificates.
		_, err = dbTxBuckets(tx)
		return err
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("pki: initialising certificate database %s: %w", path, err)
	}
	db := &DB{bolt: b, path: path, queue: make(chan *dbPending, dbMaxBatchSize), stopped: make(chan struct{})}
	go db.committer()
	return db, nil
}

// Close closes the database after the queued records are committed.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.queue)
	db.mu.Unlock()
	<-db.stopped
	return db.bolt.Close()
}

// errDBClosed is returned by Record after Close.
var errDBClosed = errors.New("pki: certificate database is closed")

// committer commits queued records: it takes one, then everything else
// already queued, and writes them in one transaction.
func (db *DB) committer() {
	defer close(db.stopped)
	last := 1
	for first := range db.queue {
		batch := []*dbPending{first}
		// Under load (the last commit carried several records), gather a
		// little longer: a commit costs about the same for one record as
		// for hundreds. An idle CA commits a lone record at once.
		var window <-chan time.Time
		if last > 1 {
			window = time.After(dbGatherWindow)
		}
	gather:
		for len(batch) < dbMaxBatchSize {
			select {
			case p, ok := <-db.queue:
				if !ok {
					break gather
				}
				batch = append(batch, p)
			default:
				if window == nil {
					break gather
				}
				select {
				case p, ok := <-db.queue:
					if !ok {
						break gather
					}
					batch = append(batch, p)
				case <-window:
					break gather
				}
			}
		}
		last = len(batch)
		db.commit(batch)
	}
}

// commit writes a batch in one transaction. A serial collision fails only
// its own call; an error of the transaction fails them all.
func (db *DB) commit(batch []*dbPending) {
	results := make([]error, len(batch))
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b, err := dbTxBuckets(tx)
		if err != nil {
			return err
		}
		empty := []byte{}
		for i, p := range batch {
			if old := b.certs.Get(p.key); old != nil {
				prev, err := dbDecode(p.key, old)
				switch {
				case err != nil:
					results[i] = err
				case !bytes.Equal(prev.DER, p.der):
					results[i] = ErrSerialExists
				}
				continue
			}
			for _, put := range []struct {
				b      *bolt.Bucket
				k, val []byte
			}{{b.certs, p.key, p.value}, {b.byUser, p.userKey, empty}, {b.byStatus, p.statusKey, empty}, {b.byExpiry, p.expiryKey, empty}} {
				if err := put.b.Put(put.k, put.val); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for i, p := range batch {
		if err != nil {
			p.done <- err
		} else {
			p.done <- results[i]
		}
	}
}

// dbBuckets holds the buckets of one transaction.
type dbBuckets struct {
	certs, byUser, byStatus, byExpiry, revoked, meta *bolt.Bucket
}

// dbTxBuckets looks up all buckets, failing rather than returning nil buckets
// if the file lacks one.
func dbTxBuckets(tx *bolt.Tx) (*dbBuckets, error) {
	var b dbBuckets
	for _, x := range []struct {
		name []byte
		dst  **bolt.Bucket
	}{
		{dbBucketCerts, &b.certs}, {dbBucketByUser, &b.byUser}, {dbBucketByStatus, &b.byStatus},
		{dbBucketByExpiry, &b.byExpiry}, {dbBucketRevoked, &b.revoked}, {dbBucketMeta, &b.meta},
	} {
		*x.dst = tx.Bucket(x.name)
		if *x.dst == nil {
			return nil, dbCorrupt("bucket %q is missing", x.name)
		}
	}
	return &b, nil
}

// dbSerialKey returns the certs key for a serial, which must be positive.
func dbSerialKey(serial *big.Int) ([]byte, error) {
	if serial == nil || serial.Sign() <= 0 {
		return nil, fmt.Errorf("pki: certificate serial number %v is not positive", serial)
	}
	return serial.Bytes(), nil
}

// dbJoin concatenates its arguments into a new slice.
func dbJoin(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

var dbSep = []byte{0}

func dbUserKey(user string, serial []byte) []byte {
	return dbJoin([]byte(user), dbSep, serial)
}

func dbStatusKey(s Status, serial []byte) []byte {
	return dbJoin([]byte(s), dbSep, serial)
}

// dbExpirySeconds is the index position of a NotAfter: unix seconds, with
// times before 1970 (never seen in practice) clamped to 0 so that the
// big-endian encoding sorts like the time.
func dbExpirySeconds(t time.Time) uint64 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return uint64(s)
}

func dbExpiryKey(notAfter time.Time, serial []byte) []byte {
	var sec [8]byte
	binary.BigEndian.PutUint64(sec[:], dbExpirySeconds(notAfter))
	return dbJoin(sec[:], serial)
}

// dbRecordV1 is version 1 of the value stored in the certs bucket, JSON.
// The serial is the key and is not repeated. It is only read now.
type dbRecordV1 struct {
	V         int              `json:"v"`
	DER       []byte           `json:"der"`
	Template  string           `json:"template,omitempty"`
	User      string           `json:"user"`
	Agent     string           `json:"agent,omitempty"`
	Subject   string           `json:"subject,omitempty"`
	NotBefore time.Time        `json:"notBefore"`
	NotAfter  time.Time        `json:"notAfter"`
	IssuedAt  time.Time        `json:"issuedAt"`
	Status    Status           `json:"status"`
	Reason    RevocationReason `json:"reason,omitempty"`
	RevokedAt time.Time        `json:"revokedAt,omitzero"`
}

// Version 2 of the value is binary, because encoding JSON (the DER in
// base64 above all) was a measurable part of durable issuance:
//
//	version   byte 2
//	status    byte (dbStatusCodes)
//	reason    uvarint
//	DER, template, user, agent, subject: uvarint length, then the bytes
//	notBefore, notAfter, issuedAt, revokedAt: uvarint length, then
//	          time.Time's binary form (length 0: the zero time)
var dbStatusCodes = [...]Status{1: StatusValid, 2: StatusRevoked, 3: StatusOnHold}

// dbMaxField bounds one length-prefixed field of a record, so that a
// corrupt length cannot ask for more than a bbolt value can hold.
const dbMaxField = 1 << 24

// dbEncode encodes a record for the certs bucket (version 2).
func dbEncode(r *Record) ([]byte, error) {
	var code byte
	for i, s := range dbStatusCodes {
		if s != "" && s == r.Status {
			code = byte(i)
		}
	}
	if code == 0 {
		return nil, fmt.Errorf("pki: unknown certificate status %q", r.Status)
	}
	if r.Reason < 0 || r.Reason > 255 {
		return nil, fmt.Errorf("pki: %v is not a revocation reason", r.Reason)
	}
	n := len(r.DER) + len(r.Template) + len(r.User) + len(r.Agent) + len(r.Subject)
	b := make([]byte, 0, n+2+binary.MaxVarintLen64+5*3+4*17)
	b = append(b, dbRecordVersion, code)
	b = binary.AppendUvarint(b, uint64(r.Reason))
	for _, f := range [...]string{string(r.DER), r.Template, r.User, r.Agent, r.Subject} {
		if len(f) > dbMaxField {
			return nil, fmt.Errorf("pki: certificate record field of %d bytes is too large", len(f))
		}
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	for _, t := range [...]time.Time{r.NotBefore, r.NotAfter, r.IssuedAt, r.RevokedAt} {
		if t.IsZero() {
			b = append(b, 0)
			continue
		}
		lenAt := len(b)
		b = append(b, 0)
		var err error
		if b, err = t.AppendBinary(b); err != nil {
			return nil, fmt.Errorf("pki: encoding certificate record: %w", err)
		}
		if len(b)-lenAt-1 >= 0x80 {
			return nil, errors.New("pki: encoding certificate record: time too long")
		}
		b[lenAt] = byte(len(b) - lenAt - 1)
	}
	return b, nil
}

// dbDecode decodes a certs value of either version. The result shares no
// memory with key or value, so it outlives the transaction.
func dbDecode(key, value []byte) (*Record, error) {
	if len(key) == 0 || key[0] == 0 {
		return nil, dbCorrupt("certificate key %x is not a serial number", key)
	}
	var r *Record
	var err error
	switch {
	case len(value) > 0 && value[0] == dbRecordVersion:
		r, err = dbDecodeV2(value)
	case len(value) > 0 && value[0] == '{':
		r, err = dbDecodeV1(value)
	case len(value) == 0:
		err = errors.New("empty record")
	default:
		err = fmt.Errorf("record version %d is not supported", value[0])
	}
	if err != nil {
		return nil, dbCorrupt("certificate %x: %v", key, err)
	}
	if len(r.DER) == 0 || !r.Status.valid() || (r.Status != StatusValid && !r.Reason.defined()) {
		return nil, dbCorrupt("certificate %x: invalid record", key)
	}
	r.Serial = new(big.Int).SetBytes(key)
	return r, nil
}

func dbDecodeV1(value []byte) (*Record, error) {
	var v dbRecordV1
	if err := json.Unmarshal(value, &v); err != nil {
		return nil, err
	}
	if v.V != dbRecordVersionJSON {
		return nil, fmt.Errorf("record version %d is not supported", v.V)
	}
	return &Record{
		DER:       v.DER,
		Template:  v.Template,
		User:      v.User,
		Agent:     v.Agent,
		Subject:   v.Subject,
		NotBefore: v.NotBefore,
		NotAfter:  v.NotAfter,
		IssuedAt:  v.IssuedAt,
		Status:    v.Status,
		Reason:    v.Reason,
		RevokedAt: v.RevokedAt,
	}, nil
}

var errRecordTruncated = errors.New("truncated record")

func dbDecodeV2(value []byte) (*Record, error) {
	if len(value) < 2 {
		return nil, errRecordTruncated
	}
	code := value[1]
	if code == 0 || int(code) >= len(dbStatusCodes) {
		return nil, fmt.Errorf("status code %d", code)
	}
	rest := value[2:]
	reason, n := binary.Uvarint(rest)
	if n <= 0 || reason > 255 {
		return nil, errors.New("bad revocation reason")
	}
	rest = rest[n:]
	field := func() ([]byte, error) {
		l, n := binary.Uvarint(rest)
		if n <= 0 || l > dbMaxField || l > uint64(len(rest)-n) {
			return nil, errRecordTruncated
		}
		f := rest[n : n+int(l)]
		rest = rest[n+int(l):]
		return f, nil
	}
	r := &Record{Status: dbStatusCodes[code], Reason: RevocationReason(reason)}
	der, err := field()
	if err != nil {
		return nil, err
	}
	r.DER = bytes.Clone(der)
	for _, dst := range [...]*string{&r.Template, &r.User, &r.Agent, &r.Subject} {
		f, err := field()
		if err != nil {
			return nil, err
		}
		*dst = string(f)
	}
	for _, dst := range [...]*time.Time{&r.NotBefore, &r.NotAfter, &r.IssuedAt, &r.RevokedAt} {
		f, err := field()
		if err != nil {
			return nil, err
		}
		if len(f) == 0 {
			continue
		}
		if err := dst.UnmarshalBinary(f); err != nil {
			return nil, err
		}
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing bytes")
	}
	return r, nil
}

// get reads and decodes the record for key, or returns ErrNotFound.
func (b *dbBuckets) get(key []byte) (*Record, error) {
	v := b.certs.Get(key)
	if v == nil {
		return nil, ErrNotFound
	}
	return dbDecode(key, v)
}

// Record durably stores a newly issued certificate: when it returns nil the
// record and its index entries are on disk. The stored status is always
// StatusValid (the Status, Reason and RevokedAt of r are ignored) and a
// zero IssuedAt is stored as the current time; r itself is not modified.
//
// It returns ErrSerialExists if the serial is already recorded with a
// different DER, and nil without changing anything if it is recorded with
// the same DER.
//
// Concurrent calls share commits (see committer): a call waits for at
// most the commit in progress and its own.
func (db *DB) Record(r *Record) error {
	done, err := db.recordStart(r)
	if err != nil {
		return err
	}
	return <-done
}

// recordStart checks r and queues it for the committer, as Record does,
// and returns the channel that carries the result of its commit, so that
// the caller can work while the commit is in flight.
func (db *DB) recordStart(r *Record) (<-chan error, error) {
	key, err := dbSerialKey(r.Serial)
	if err != nil {
		return nil, err
	}
	if len(r.DER) == 0 {
		return nil, errors.New("pki: recording a certificate without DER")
	}
	if strings.IndexByte(r.User, 0) >= 0 {
		return nil, fmt.Errorf("pki: user name %q contains a NUL byte", r.User)
	}
	rec := *r
	rec.Status, rec.Reason, rec.RevokedAt = StatusValid, ReasonUnspecified, time.Time{}
	if rec.IssuedAt.IsZero() {
		rec.IssuedAt = time.Now()
	}
	value, err := dbEncode(&rec)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding certificate record: %w", err)
	}
	// The three index keys share one allocation.
	keys := make([]byte, 0, len(rec.User)+len(StatusValid)+8+2+3*len(key))
	keys = append(append(append(keys, rec.User...), 0), key...)
	u := len(keys)
	keys = append(append(append(keys, StatusValid...), 0), key...)
	st := len(keys)
	keys = append(binary.BigEndian.AppendUint64(keys, dbExpirySeconds(rec.NotAfter)), key...)
	p := &dbPending{
		key: key, value: value, der: rec.DER,
		userKey:   keys[:u:u],
		statusKey: keys[u:st:st],
		expiryKey: keys[st:],
		done:      make(chan error, 1),
	}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return nil, errDBClosed
	}
	db.queue <- p
	db.mu.RUnlock()
	return p.done, nil
}

// SerialExists reports whether a serial is recorded.
func (db *DB) SerialExists(serial *big.Int) (bool, error) {
	key, err := dbSerialKey(serial)
	if err != nil {
		return false, err
	}
	var found bool
	err = db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(dbBucketCerts)
		if c == nil {
			return dbCorrupt("bucket %q is missing", dbBucketCerts)
		}
		found = c.Get(key) != nil
		return nil
	})
	return found, err
}

// Get returns the record for a serial, or ErrNotFound.
func (db *DB) Get(serial *big.Int) (*Record, error) {
	key, err := dbSerialKey(serial)
	if err != nil {
		return nil, err
	}
	var rec *Record
	err = db.bolt.View(func(tx *bolt.Tx) error {
		b, err := dbTxBuckets(tx)
		if err != nil {
			return err
		}
		rec, err = b.get(key)
		return err
	})
	return rec, err
}

// put rewrites a record whose status changed from old, moving its by-status
// entry and its revoked-index entry in the same transaction.
func (b *dbBuckets) put(key []byte, rec *Record, old Status) error {
	value, err := dbEncode(rec)
	if err != nil {
		return err
	}
	if err := b.certs.Put(key, value); err != nil {
		return err
	}
	if old != rec.Status {
		if err := b.byStatus.Delete(dbStatusKey(old, key)); err != nil {
			return err
		}
		if err := b.byStatus.Put(dbStatusKey(rec.Status, key), []byte{}); err != nil {
			return err
		}
	}
	if rec.Status == StatusValid {
		return b.revoked.Delete(key)
	}
	return b.revoked.Put(key, []byte{})
}

// Revoke marks a certificate revoked for reason at time t (the current time
// if t is zero) and returns the updated record. ReasonCertificateHold puts
// it on hold (StatusOnHold); any other reason revokes it permanently.
//
// A revoked certificate cannot be revoked again (ErrAlreadyRevoked), with
// one exception that RFC 5280 allows: a certificate on hold can be revoked
// permanently with another reason, which replaces the reason and the
// revocation date. ReasonRemoveFromCRL is not a revocation and is refused
// (use Release), as are values RFC 5280 does not define.
func (db *DB) Revoke(serial *big.Int, reason RevocationReason, t time.Time) (*Record, error) {
	key, err := dbSerialKey(serial)
	if err != nil {
		return nil, err
	}
	if reason == ReasonRemoveFromCRL {
		return nil, errors.New("pki: removeFromCRL is not a revocation reason; release the hold instead")
	}
	if !reason.defined() {
		return nil, fmt.Errorf("pki: %v is not a revocation reason", reason)
	}
	if t.IsZero() {
		t = time.Now()
	}
	status := StatusRevoked
	if reason == ReasonCertificateHold {
		status = StatusOnHold
	}
	var rec *Record
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		b, err := dbTxBuckets(tx)
		if err != nil {
			return err
		}
		r, err := b.get(key)
		if err != nil {
			return err
		}
		old := r.Status
		if old == StatusRevoked || (old == StatusOnHold && status == StatusOnHold) {
			return ErrAlreadyRevoked
		}
		r.Status, r.Reason, r.RevokedAt = status, reason, t
		if err := b.put(key, r, old); err != nil {
			return err
		}
		rec = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// Release removes a certificateHold, returning the certificate to
// StatusValid, and returns the updated record. It returns ErrNotOnHold if
// the certificate is not on hold.
func (db *DB) Release(serial *big.Int) (*Record, error) {
	key, err := dbSerialKey(serial)
	if err != nil {
		return nil, err
	}
	var rec *Record
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		b, err := dbTxBuckets(tx)
		if err != nil {
			return err
		}
		r, err := b.get(key)
		if err != nil {
			return err
		}
		if r.Status != StatusOnHold {
			return ErrNotOnHold
		}
		r.Status, r.Reason, r.RevokedAt = StatusValid, ReasonUnspecified, time.Time{}
		if err := b.put(key, r, StatusOnHold); err != nil {
			return err
		}
		rec = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// Query selects records for List. Zero fields do not filter; all set
// fields must match.
type Query struct {
	// User selects the certificates issued to this user.
	User string
	// Status selects the certificates with this status.
	Status Status
	// ExpiringBefore selects the certificates whose NotAfter is before it
	// (already expired ones included), and orders the result by NotAfter.
	ExpiringBefore time.Time
	// Template selects the certificates issued from this template.
	Template string
	// Limit, if positive, caps the number of records returned.
	Limit int
}

// matches reports whether r satisfies every filter of q.
func (q *Query) matches(r *Record) bool {
	return (q.User == "" || r.User == q.User) &&
		(q.Status == "" || r.Status == q.Status) &&
		(q.ExpiringBefore.IsZero() || r.NotAfter.Before(q.ExpiringBefore)) &&
		(q.Template == "" || r.Template == q.Template)
}

// List returns the records matching q, ordered by serial number bytes, or,
// when ExpiringBefore is set, by NotAfter (to the second) and then serial
// bytes. It reads one index: by user if User is set, else by status if
// Status is set, else by expiry if ExpiringBefore is set; only a query
// with no filter but Template (or none at all) scans every record. An
// empty query lists everything.
func (db *DB) List(q Query) ([]*Record, error) {
	if q.Status != "" && !q.Status.valid() {
		return nil, fmt.Errorf("pki: unknown certificate status %q", q.Status)
	}
	if q.User != "" && strings.IndexByte(q.User, 0) >= 0 {
		return nil, fmt.Errorf("pki: user name %q contains a NUL byte", q.User)
	}
	byExpiry := !q.ExpiringBefore.IsZero()
	var out []*Record
	// full reports whether the limit is reached; only meaningful when the
	// scan runs in output order.
	full := func() bool { return q.Limit > 0 && len(out) >= q.Limit }

	err := db.bolt.View(func(tx *bolt.Tx) error {
		b, err := dbTxBuckets(tx)
		if err != nil {
			return err
		}
		// add looks up the record an index entry points to.
		add := func(serial []byte) error {
			if len(serial) == 0 {
				return dbCorrupt("index entry without a serial number")
			}
			r, err := b.get(serial)
			if errors.Is(err, ErrNotFound) {
				return dbCorrupt("index entry for missing certificate %x", serial)
			}
			if err != nil {
				return err
			}
			if q.matches(r) {
				out = append(out, r)
			}
			return nil
		}
		// scanPrefix walks the index entries of bucket starting with
		// prefix; they are in serial order.
		scanPrefix := func(bucket *bolt.Bucket, prefix []byte) error {
			c := bucket.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if err := add(k[len(prefix):]); err != nil {
					return err
				}
				if !byExpiry && full() {
					break
				}
			}
			return nil
		}
		switch {
		case q.User != "":
			return scanPrefix(b.byUser, dbJoin([]byte(q.User), dbSep))
		case q.Status != "":
			return scanPrefix(b.byStatus, dbJoin([]byte(q.Status), dbSep))
		case byExpiry:
			last := dbExpirySeconds(q.ExpiringBefore)
			c := b.byExpiry.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if len(k) <= 8 {
					return dbCorrupt("expiry index key %x", k)
				}
				if binary.BigEndian.Uint64(k[:8]) > last {
					break
				}
				if err := add(k[8:]); err != nil {
					return err
				}
				if full() {
					break
				}
			}
			return nil
		default:
			c := b.certs.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if v == nil {
					return dbCorrupt("nested bucket %q in certs", k)
				}
				r, err := dbDecode(k, v)
				if err != nil {
					return err
				}
				if q.matches(r) {
					out = append(out, r)
					if full() {
						break
					}
				}
			}
			return nil
		}
	})
	if err != nil {
		return nil, err
	}
	if byExpiry && (q.User != "" || q.Status != "") {
		// Read from a serial-ordered index; put in expiry order.
		sort.SliceStable(out, func(i, j int) bool {
			si, sj := dbExpirySeconds(out[i].NotAfter), dbExpirySeconds(out[j].NotAfter)
			if si != sj {
				return si < sj
			}
			return bytes.Compare(out[i].Serial.Bytes(), out[j].Serial.Bytes()) < 0
		})
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// Revoked returns every revoked or on-hold record, in serial order, for a
// CRL. It reads the "revoked" index and fails if the index and a record
// disagree, rather than publish an incomplete CRL.
func (db *DB) Revoked() ([]*Record, error) {
	var out []*Record
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b, err := dbTxBuckets(tx)
		if err != nil {
			return err
		}
		c := b.revoked.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			r, err := b.get(k)
			if errors.Is(err, ErrNotFound) {
				return dbCorrupt("revoked index entry for missing certificate %x", k)
			}
			if err != nil {
				return err
			}
			if r.Status == StatusValid {
				return dbCorrupt("revoked index lists valid certificate %x", k)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// NextCRLNumber increments the CRL number, durably, and returns it. The
// first call on a new database returns 1.
func (db *DB) NextCRLNumber() (*big.Int, error) {
	var n *big.Int
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(dbBucketMeta)
		if meta == nil {
			return dbCorrupt("bucket %q is missing", dbBucketMeta)
		}
		n = new(big.Int).SetBytes(meta.Get(dbMetaCRLNumber)) // copies
		n.Add(n, big.NewInt(1))
		return meta.Put(dbMetaCRLNumber, n.Bytes())
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}
