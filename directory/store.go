package directory

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The store follows OpenLDAP's back-mdb layout in bbolt buckets:
//
//	id2entry  entry ID (8 bytes, big-endian) → encoded entry (entry.go)
//	dn2id     parent ID ‖ normalized RDN → entry ID; the suffix entry is
//	          keyed by parent 0 ‖ the normalized suffix. A one-level search
//	          is a prefix scan of its parent's ID, a subtree search a walk
//	          down from the base: neither scans the database.
//	idx/ATTR  one bucket per indexed attribute holding a key per (value,
//	          entry): index value ‖ 0x00 ‖ entry ID, with an empty value.
//	          Keys of one value sort by ID, so an equality lookup is a
//	          prefix scan that yields sorted IDs; adding an entry touches
//	          one leaf page per value rather than rewriting an ID list.
//	          Index values are the normalized value (hex for binary
//	          syntaxes) cut to 200 bytes, so one index also answers
//	          presence and initial-substring assertions. Candidates are
//	          always re-tested against the whole filter.
//	meta      domain SID, next RID, base DN, format version.

var (
	bucketID2Entry = []byte("id2entry")
	bucketDN2ID    = []byte("dn2id")
	bucketIndex    = []byte("idx")
	bucketMeta     = []byte("meta")
	keyDomain      = []byte("domain-sid")
	keyNextRID     = []byte("next-rid")
	keyBaseDN      = []byte("base-dn")
	keyFormat      = []byte("format")

	// The layout before this one: JSON users keyed by login name.
	bucketOldUsers = []byte("users")
	bucketOldUPN   = []byte("upn-index")
)

const (
	formatVersion = 2
	// firstRID is where RIDs of new principals start, as in Active
	// Directory; the admins group takes Domain Admins' RID 512.
	firstRID  = 1100
	adminsRID = 512
	// indexValueMax is where index values are cut.
	indexValueMax = 200
)

// The containers under the base DN. Users are uid=NAME,ou=people and
// groups cn=NAME,ou=groups, as in OpenLDAP deployments: an RDN from the
// login name never changes when a display name does (AD's cn=Full Name
// does), and one-level searches separate people from groups.
const (
	PeopleRDN = "ou=people"
	GroupsRDN = "ou=groups"
	// AdminGroup is the group whose members may write over LDAP.
	AdminGroup = "admins"
)

// Options say how to open a store.
type Options struct {
	// Domain is the DNS domain; the base DN follows it
	// (example.test → dc=example,dc=test).
	Domain string
	// BaseDN, when set, is used instead of the one derived from Domain.
	BaseDN string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Store is the directory database.
type Store struct {
	db        *bolt.DB
	base      DN
	baseNorm  string
	baseID    uint64
	domainSID []byte
	people    DN
	groups    DN
	admins    DN
	now       func() time.Time
	baseNorms []string // the base DN's RDNs, normalized

	// Parent DNs by entry ID, for building entries' DNs without reading
	// their ancestors each time. dnGen moves on with every rename (after
	// it commits); the cache holds the DNs of one generation (pdnGen).
	dnGen  atomic.Uint64
	pdnMu  sync.RWMutex
	pdnGen uint64
	pdn    map[uint64]string
}

// BaseDNForDomain derives the base DN from a DNS domain.
func BaseDNForDomain(domain string) (string, error) {
	domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	if domain == "" {
		return "", errors.New("directory: no domain")
	}
	labels := strings.Split(domain, ".")
	for i, l := range labels {
		if l == "" || len(l) > 63 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("directory: %q is not a DNS domain", domain)
		}
		labels[i] = "dc=" + l
	}
	return strings.Join(labels, ","), nil
}

// Open opens or creates the store. It does not wait on another process's
// lock: it fails with ErrInUse. A new store gets the base entry, ou=people,
// ou=groups and the admins group.
func Open(path string, opts Options) (*Store, error) {
	baseStr := opts.BaseDN
	if baseStr == "" {
		var err error
		if baseStr, err = BaseDNForDomain(opts.Domain); err != nil {
			return nil, err
		}
	}
	base, err := ParseDN(baseStr)
	if err != nil || len(base) == 0 {
		return nil, fmt.Errorf("directory: base DN %q: %v", baseStr, err)
	}
	s := &Store{base: base, baseNorm: base.Norm(), now: opts.Now, baseNorms: rdnNorms(base), pdn: map[uint64]string{}}
	if s.now == nil {
		s.now = time.Now
	}
	s.people = append(DN{MustParseDN(PeopleRDN)[0]}, base...)
	s.groups = append(DN{MustParseDN(GroupsRDN)[0]}, base...)
	s.admins = append(DN{MustParseDN("cn=" + AdminGroup)[0]}, s.groups...)

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 200 * time.Millisecond})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w (%s)", ErrInUse, path)
	}
	if err != nil {
		return nil, err
	}
	s.db = db
	if err := db.Update(s.setup); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) setup(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketID2Entry, bucketDN2ID, bucketIndex, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	idx := tx.Bucket(bucketIndex)
	for _, a := range attributeTypes {
		if a.Indexed {
			if _, err := idx.CreateBucketIfNotExists([]byte(a.Name())); err != nil {
				return err
			}
		}
	}
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyDomain) == nil {
		// S-1-5-21-a-b-c: three random sub-authorities, as a Windows
		// domain has.
		var r [12]byte
		if _, err := rand.Read(r[:]); err != nil {
			return err
		}
		sid := fmt.Sprintf("S-1-5-21-%d-%d-%d", binary.BigEndian.Uint32(r[0:])&0x7fffffff, binary.BigEndian.Uint32(r[4:])&0x7fffffff, binary.BigEndian.Uint32(r[8:])&0x7fffffff)
		if err := meta.Put(keyDomain, []byte(sid)); err != nil {
			return err
		}
		if err := meta.Put(keyNextRID, binary.BigEndian.AppendUint32(nil, firstRID)); err != nil {
			return err
		}
	}
	sid, err := ParseSID(string(meta.Get(keyDomain)))
	if err != nil {
		return fmt.Errorf("directory: the stored domain SID is damaged: %v", err)
	}
	s.domainSID = sid
	if b := meta.Get(keyBaseDN); b != nil {
		if string(b) != s.baseNorm {
			return fmt.Errorf("directory: this directory's base DN is %s, not %s", b, s.baseNorm)
		}
		id, err := s.resolveID(tx, s.base)
		if err != nil {
			return fmt.Errorf("directory: the base entry is missing: %v", err)
		}
		s.baseID = id
		return nil
	}
	// A new directory: the base entry and the containers.
	if err := meta.Put(keyBaseDN, []byte(s.baseNorm)); err != nil {
		return err
	}
	if err := meta.Put(keyFormat, []byte{formatVersion}); err != nil {
		return err
	}
	w := &writer{s: s, tx: tx, internal: true, now: s.now().UTC()}
	dcAttr := s.base[0][0]
	rootAttrs := []Attribute{
		{Name: "objectClass", Values: [][]byte{[]byte("top"), []byte("domain")}},
		{Name: "objectSid", Values: [][]byte{s.domainSID}},
	}
	if dcAttr.Type.Name() != "dc" {
		// A base DN like o=Example: an organization instead.
		rootAttrs[0].Values[1] = []byte("organization")
		rootAttrs = rootAttrs[:1]
	}
	if _, err := w.add(&Entry{DN: s.base.String(), Attrs: rootAttrs}); err != nil {
		return err
	}
	s.baseID, _ = s.resolveID(tx, s.base)
	for _, c := range []DN{s.people, s.groups} {
		if _, err := w.add(&Entry{DN: c.String(), Attrs: []Attribute{{Name: "objectClass", Values: [][]byte{[]byte("organizationalUnit")}}}}); err != nil {
			return err
		}
	}
	adminSID := binary.LittleEndian.AppendUint32(bytes.Clone(s.domainSID), adminsRID)
	adminSID[1]++
	if _, err := w.add(&Entry{DN: s.admins.String(), Attrs: []Attribute{
		{Name: "objectClass", Values: [][]byte{[]byte("group")}},
		{Name: "description", Values: [][]byte{[]byte("Members may change the directory over LDAP")}},
		{Name: "objectSid", Values: [][]byte{adminSID}},
	}}); err != nil {
		return err
	}
	return s.migrate(tx, w)
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// BaseDN is the directory's suffix.
func (s *Store) BaseDN() string { return s.base.String() }

// PeopleDN is the container of users.
func (s *Store) PeopleDN() string { return s.people.String() }

// GroupsDN is the container of groups.
func (s *Store) GroupsDN() string { return s.groups.String() }

// AdminGroupDN is the group whose members may write over LDAP.
func (s *Store) AdminGroupDN() string { return s.admins.String() }

// DomainSID is the domain's SID; principals' objectSids extend it with
// their RID.
func (s *Store) DomainSID() (string, error) { return SIDString(s.domainSID) }

// ---- reading ---------------------------------------------------------------

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), id) }

func dn2idKey(parent uint64, normRDN string) []byte {
	return append(idKey(parent), normRDN...)
}

// resolveID finds an entry's ID. On failure the error is a noSuchObject
// *Error whose Matched names the deepest existing ancestor.
func (s *Store) resolveID(tx *bolt.Tx, dn DN) (uint64, error) {
	return s.resolveNorms(tx, dn, rdnNorms(dn))
}

// rdnNorms returns the normalized RDNs of a DN.
func rdnNorms(dn DN) []string {
	out := make([]string, len(dn))
	for i, r := range dn {
		out[i] = r.Norm()
	}
	return out
}

// resolveNorms is resolveID with the DN's RDNs already normalized.
func (s *Store) resolveNorms(tx *bolt.Tx, dn DN, norms []string) (uint64, error) {
	notFound := func(matched DN) error {
		return &Error{Code: ResultNoSuchObject, Message: "no such entry: " + dn.String(), Matched: matched.String(), Err: ErrNoSuchObject}
	}
	if len(norms) < len(s.baseNorms) || !slices.Equal(norms[len(norms)-len(s.baseNorms):], s.baseNorms) {
		return 0, notFound(nil)
	}
	d2i := tx.Bucket(bucketDN2ID)
	v := d2i.Get(dn2idKey(0, s.baseNorm))
	if v == nil {
		return 0, notFound(nil)
	}
	id := binary.BigEndian.Uint64(v)
	for i := len(norms) - len(s.baseNorms) - 1; i >= 0; i-- {
		v := d2i.Get(dn2idKey(id, norms[i]))
		if v == nil {
			return 0, notFound(dn[i+1:])
		}
		id = binary.BigEndian.Uint64(v)
	}
	return id, nil
}

// parsedDN is a parsed DN with its normalized RDNs.
type parsedDN struct {
	dn    DN
	norms []string
	norm  string
}

// dnParseCache remembers parsed DNs (search bases come back again and
// again). Parsing depends only on the built-in schema, so one cache
// serves every store.
var dnParseCache struct {
	sync.RWMutex
	m map[string]*parsedDN
}

const dnParseCacheMax = 1024

// parseDNCached is ParseDN through the cache. The result is shared:
// callers must not modify it.
func parseDNCached(s string) (*parsedDN, error) {
	dnParseCache.RLock()
	p := dnParseCache.m[s]
	dnParseCache.RUnlock()
	if p != nil {
		return p, nil
	}
	dn, err := ParseDN(s)
	if err != nil {
		return nil, err
	}
	dn = dn[:len(dn):len(dn)]
	norms := rdnNorms(dn)
	p = &parsedDN{dn: dn, norms: norms, norm: strings.Join(norms, ",")}
	dnParseCache.Lock()
	if dnParseCache.m == nil || len(dnParseCache.m) >= dnParseCacheMax {
		dnParseCache.m = map[string]*parsedDN{}
	}
	dnParseCache.m[s] = p
	dnParseCache.Unlock()
	return p, nil
}

// cachedParentDN returns the DN of a parent entry as of generation gen.
func (s *Store) cachedParentDN(id, gen uint64) (string, bool) {
	s.pdnMu.RLock()
	defer s.pdnMu.RUnlock()
	if s.pdnGen != gen {
		return "", false
	}
	dn, ok := s.pdn[id]
	return dn, ok
}

func (s *Store) cacheParentDN(id, gen uint64, dn string) {
	s.pdnMu.Lock()
	defer s.pdnMu.Unlock()
	switch {
	case gen < s.pdnGen:
		return // computed before a rename
	case gen > s.pdnGen || len(s.pdn) >= 4096:
		s.pdn = map[uint64]string{}
		s.pdnGen = gen
	}
	s.pdn[id] = dn
}

// dnCache remembers entries' DNs while a transaction computes many.
type dnCache map[uint64]string

// dnOf builds an entry's DN from the RDNs of it and its ancestors.
func (s *Store) dnOf(tx *bolt.Tx, id uint64, cache dnCache) (string, error) {
	if dn, ok := cache[id]; ok {
		return dn, nil
	}
	buf := tx.Bucket(bucketID2Entry).Get(idKey(id))
	if len(buf) < 9 {
		return "", fmt.Errorf("%w %d: dangling reference", errCorrupt, id)
	}
	parent := binary.BigEndian.Uint64(buf)
	r := reader{b: buf[9:]}
	rdn := string(r.bytes())
	if r.err {
		return "", fmt.Errorf("%w %d", errCorrupt, id)
	}
	dn := rdn
	if parent != 0 {
		if len(cache) > 4096 {
			clear(cache)
		}
		pdn, err := s.dnOf(tx, parent, cache)
		if err != nil {
			return "", err
		}
		dn = rdn + "," + pdn
	}
	if cache != nil {
		cache[id] = dn
	}
	return dn, nil
}

func (s *Store) loadEntry(tx *bolt.Tx, id uint64, cache dnCache) (*Entry, error) {
	buf := tx.Bucket(bucketID2Entry).Get(idKey(id))
	if buf == nil {
		return nil, fmt.Errorf("%w %d: missing", errCorrupt, id)
	}
	return s.loadEntryBuf(tx, id, buf, cache, 0, false)
}

// loadEntryBuf decodes an entry read from id2entry. With useGen, parent
// DNs come from (and go to) the store's cache for generation gen, which
// the caller read before beginning tx.
func (s *Store) loadEntryBuf(tx *bolt.Tx, id uint64, buf []byte, cache dnCache, gen uint64, useGen bool) (*Entry, error) {
	e, err := decodeEntry(id, buf)
	if err != nil {
		return nil, err
	}
	if e.parent == 0 {
		e.DN = e.rdn
		return e, nil
	}
	if useGen {
		if pdn, ok := s.cachedParentDN(e.parent, gen); ok {
			e.DN = e.rdn + "," + pdn
			return e, nil
		}
	}
	pdn, err := s.dnOf(tx, e.parent, cache)
	if err != nil {
		return nil, err
	}
	if useGen {
		s.cacheParentDN(e.parent, gen, pdn)
	}
	e.DN = e.rdn + "," + pdn
	return e, nil
}

func (s *Store) hasChildren(tx *bolt.Tx, id uint64) bool {
	prefix := idKey(id)
	k, _ := tx.Bucket(bucketDN2ID).Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

func (s *Store) children(tx *bolt.Tx, id uint64) []uint64 {
	var out []uint64
	prefix := idKey(id)
	c := tx.Bucket(bucketDN2ID).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		out = append(out, binary.BigEndian.Uint64(v))
	}
	return out
}

// Get reads one entry by DN.
func (s *Store) Get(dn string) (*Entry, error) {
	d, err := ParseDN(dn)
	if err != nil {
		return nil, &Error{Code: ResultInvalidDNSyntax, Message: err.Error()}
	}
	var e *Entry
	err = s.db.View(func(tx *bolt.Tx) error {
		id, err := s.resolveID(tx, d)
		if err != nil {
			return err
		}
		e, err = s.loadEntry(tx, id, nil)
		return err
	})
	return e, err
}

// virtualValues computes entryDN, hasSubordinates, structuralObjectClass
// and subschemaSubentry for a stored entry.
func (s *Store) virtualValues(tx *bolt.Tx, e *Entry, t *AttributeType) [][]byte {
	switch t.Name() {
	case "entryDN":
		return [][]byte{[]byte(e.DN)}
	case "subschemaSubentry":
		return [][]byte{[]byte(SubschemaDN)}
	case "hasSubordinates":
		if tx != nil && e.id != 0 && s.hasChildren(tx, e.id) {
			return [][]byte{[]byte("TRUE")}
		}
		return [][]byte{[]byte("FALSE")}
	case "structuralObjectClass":
		if oc := e.get(attrByCanonical["objectClass"]); oc != nil {
			if _, st, err := expandClasses(oc.Values); err == nil {
				return [][]byte{[]byte(st.Name())}
			}
		}
	}
	return nil
}

// ---- indexes ---------------------------------------------------------------

func isBinarySyntax(t *AttributeType) bool {
	switch t.syntax {
	case synOctetString, synSID, synGUID, synCertificate:
		return true
	}
	return false
}

// indexValue is the index form of a normalized value.
func indexValue(t *AttributeType, norm []byte) []byte {
	if isBinarySyntax(t) {
		return []byte(hex.EncodeToString(norm))
	}
	if len(norm) > indexValueMax {
		return norm[:indexValueMax]
	}
	return norm
}

// indexKeys returns the index values of an entry, per indexed attribute.
func indexKeys(e *Entry) map[*AttributeType][][]byte {
	out := map[*AttributeType][][]byte{}
	for _, a := range e.Attrs {
		if !a.typ.Indexed {
			continue
		}
		for _, v := range a.Values {
			n, ok := a.typ.normalize(v)
			if !ok {
				continue
			}
			if a.typ.Name() == "objectClass" && string(n) == "top" {
				continue // every entry has it
			}
			iv := indexValue(a.typ, n)
			if !slices.ContainsFunc(out[a.typ], func(x []byte) bool { return bytes.Equal(x, iv) }) {
				out[a.typ] = append(out[a.typ], iv)
			}
		}
	}
	return out
}

func indexKey(v []byte, id uint64) []byte {
	k := make([]byte, 0, len(v)+9)
	k = append(k, v...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, id)
}

// updateIndexes moves an entry's index keys from old to new (either may be
// nil).
func updateIndexes(tx *bolt.Tx, id uint64, old, new *Entry) error {
	var ok, nk map[*AttributeType][][]byte
	if old != nil {
		ok = indexKeys(old)
	}
	if new != nil {
		nk = indexKeys(new)
	}
	idx := tx.Bucket(bucketIndex)
	has := func(list [][]byte, v []byte) bool {
		return slices.ContainsFunc(list, func(x []byte) bool { return bytes.Equal(x, v) })
	}
	for t, vals := range ok {
		b := idx.Bucket([]byte(t.Name()))
		for _, v := range vals {
			if !has(nk[t], v) {
				if err := b.Delete(indexKey(v, id)); err != nil {
					return err
				}
			}
		}
	}
	for t, vals := range nk {
		b := idx.Bucket([]byte(t.Name()))
		if b == nil {
			return fmt.Errorf("directory: index bucket %s missing", t.Name())
		}
		for _, v := range vals {
			if !has(ok[t], v) {
				if err := b.Put(indexKey(v, id), nil); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// lookupEq returns the sorted IDs whose attribute may equal norm.
func lookupEq(tx *bolt.Tx, t *AttributeType, norm []byte) []uint64 {
	ids, _ := lookupEqMax(tx, t, norm, 0)
	return ids
}

// lookupEqMax is lookupEq that gives up (over) past max IDs (0: no max).
func lookupEqMax(tx *bolt.Tx, t *AttributeType, norm []byte, max int) (ids []uint64, over bool) {
	b := tx.Bucket(bucketIndex).Bucket([]byte(t.Name()))
	if b == nil {
		return nil, false
	}
	iv := indexValue(t, norm)
	prefix := append(make([]byte, 0, len(iv)+1), iv...)
	prefix = append(prefix, 0)
	var out []uint64
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) == len(prefix)+8 {
			if max > 0 && len(out) == max {
				return nil, true
			}
			out = append(out, binary.BigEndian.Uint64(k[len(prefix):]))
		}
	}
	return out, false
}

// scanIndex returns the IDs with an index value for which keep is true
// (nil keep: all), sorted and without duplicates; past max IDs (0: no
// max) it gives up (over).
func scanIndex(tx *bolt.Tx, t *AttributeType, prefix []byte, keep func(v []byte) bool, max int) (ids []uint64, over bool) {
	b := tx.Bucket(bucketIndex).Bucket([]byte(t.Name()))
	if b == nil {
		return nil, false
	}
	var out []uint64
	c := b.Cursor()
	var k []byte
	if len(prefix) > 0 {
		k, _ = c.Seek(prefix)
	} else {
		k, _ = c.First()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) < 9 {
			continue
		}
		v := k[:len(k)-9]
		if keep == nil || keep(v) {
			if max > 0 && len(out) == max {
				return nil, true
			}
			out = append(out, binary.BigEndian.Uint64(k[len(k)-8:]))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), false
}

// prefixIDs yields the IDs of the entries with a value of one of types
// starting with initial (an initial substring, as in (attr=initial*)), in
// the order of the matching index values, merged over the types: a range
// scan of each index, read only as far as the caller goes, so a search
// that stops at a limit costs the limit, not the number of matches. An ID
// comes once per matching value; values cut in the index (indexValueMax)
// may be false matches, so callers test the entries. ok is false when an
// attribute has no such index (the caller must search another way).
func prefixIDs(tx *bolt.Tx, types []*AttributeType, initial []byte) (ids iter.Seq[uint64], ok bool) {
	type rng struct {
		c      *bolt.Cursor
		prefix []byte
		k      []byte
	}
	var rs []*rng
	for _, t := range types {
		if !t.Indexed || !t.substr || isBinarySyntax(t) {
			return nil, false
		}
		ini, ok := t.substrNormalize(initial)
		if !ok {
			continue // no value of t can match
		}
		b := tx.Bucket(bucketIndex).Bucket([]byte(t.Name()))
		if b == nil {
			continue
		}
		prefix := []byte(ini)
		if len(prefix) > indexValueMax {
			prefix = prefix[:indexValueMax]
		}
		rs = append(rs, &rng{c: b.Cursor(), prefix: prefix})
	}
	// valid skips malformed keys and ends the range past its prefix.
	valid := func(r *rng, k []byte) []byte {
		for ; k != nil && bytes.HasPrefix(k, r.prefix); k, _ = r.c.Next() {
			if len(k) >= 9 {
				return k
			}
		}
		return nil
	}
	return func(yield func(uint64) bool) {
		for _, r := range rs {
			k, _ := r.c.Seek(r.prefix)
			r.k = valid(r, k)
		}
		for {
			var min *rng
			for _, r := range rs {
				if r.k != nil && (min == nil || bytes.Compare(r.k, min.k) < 0) {
					min = r
				}
			}
			if min == nil {
				return
			}
			if !yield(binary.BigEndian.Uint64(min.k[len(min.k)-8:])) {
				return
			}
			k, _ := min.c.Next()
			min.k = valid(min, k)
		}
	}, true
}

// planCap is how many IDs the planner takes from one part of an AND
// before it sets that part aside: an AND is as narrow as its narrowest
// part, and the parts set aside are still tested on every entry, so
// (&(objectClass=user)(uid=x)) reads one index key of uid and about
// planCap of objectClass, not every user. A variable for tests.
var planCap = 1024

// candidates plans a filter: the sorted IDs that may match, or all=true
// when the indexes cannot narrow the search.
func candidates(tx *bolt.Tx, f *Filter, canRead func(*AttributeType) bool) (ids []uint64, all bool) {
	ids, all, _ = plan(tx, f, canRead, 0)
	return ids, all
}

// plan is candidates that gives up (all and over both true) once a set
// passes max IDs (0: no max). all=true is always a correct answer: the
// search then tests the filter on every entry in scope.
func plan(tx *bolt.Tx, f *Filter, canRead func(*AttributeType) bool, max int) (ids []uint64, all, over bool) {
	switch f.Op {
	case FilterAnd:
		// First every part with a small max: the parts that fit narrow
		// the search, the others are left to the filter's test.
		m := planCap
		if max > 0 && max < m {
			m = max
		}
		all = true
		var big []*Filter
		for _, sub := range f.Sub {
			c, a, o := plan(tx, sub, canRead, m)
			if o {
				big = append(big, sub)
				continue
			}
			if a {
				continue
			}
			if all {
				ids, all = c, false
			} else {
				ids = intersect(ids, c)
			}
			if len(ids) == 0 {
				return nil, false, false
			}
		}
		if !all || len(big) == 0 {
			return ids, all, false
		}
		if max > 0 {
			return nil, true, true // every part is larger than max
		}
		// Every indexed part is large: take them whole.
		for _, sub := range big {
			c, a, _ := plan(tx, sub, canRead, 0)
			if a {
				continue
			}
			if all {
				ids, all = c, false
			} else {
				ids = intersect(ids, c)
			}
			if len(ids) == 0 {
				return nil, false, false
			}
		}
		return ids, all, false
	case FilterOr:
		for _, sub := range f.Sub {
			c, a, o := plan(tx, sub, canRead, max)
			if a {
				return nil, true, o
			}
			ids = union(ids, c)
			if max > 0 && len(ids) > max {
				return nil, true, true
			}
		}
		return ids, false, false
	case FilterNot, FilterExtensible, FilterGreaterOrEqual, FilterLessOrEqual:
		return nil, true, false
	}
	if !f.known {
		if f.Op == FilterPresent {
			return nil, false, false // never true
		}
		return nil, false, false // Undefined: never true
	}
	t := f.desc.typ
	if t.Secret || canRead != nil && !canRead(t) {
		return nil, false, false // never true for this requester
	}
	if !t.Indexed {
		return nil, true, false
	}
	switch f.Op {
	case FilterEqual, FilterApprox:
		n, ok := t.normalize(f.Value)
		if !ok {
			return nil, false, false
		}
		if t.Name() == "objectClass" && string(n) == "top" {
			return nil, true, false
		}
		ids, over = lookupEqMax(tx, t, n, max)
		return ids, over, over
	case FilterPresent:
		if t.Name() == "objectClass" {
			return nil, true, false
		}
		ids, over = scanIndex(tx, t, nil, nil, max)
		return ids, over, over
	case FilterSubstrings:
		if !t.substr || isBinarySyntax(t) {
			return nil, true, false
		}
		ini, ok := t.substrNormalize(f.Initial)
		if !ok {
			return nil, false, false
		}
		var parts []string
		for _, a := range append(append([][]byte{}, f.Any...), f.Final) {
			if s, ok := t.substrNormalize(a); ok && s != "" {
				parts = append(parts, s)
			}
		}
		prefix := []byte(ini)
		if len(prefix) > indexValueMax {
			prefix = prefix[:indexValueMax]
		}
		ids, over = scanIndex(tx, t, prefix, func(v []byte) bool {
			if len(v) >= indexValueMax {
				return true // cut: the rest may hold the parts
			}
			for _, p := range parts {
				if !bytes.Contains(v, []byte(p)) {
					return false
				}
			}
			return true
		}, max)
		return ids, over, over
	}
	return nil, true, false
}

func intersect(a, b []uint64) []uint64 {
	var out []uint64
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

func union(a, b []uint64) []uint64 {
	out := make([]uint64, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// ---- search ------------------------------------------------------------------

// Scope is a search scope.
type Scope int

// Search scopes (RFC 4511 §4.5.1.2).
const (
	ScopeBase Scope = 0
	ScopeOne  Scope = 1
	ScopeSub  Scope = 2
	// ScopeChildren is the subordinate subtree: the base's descendants
	// without the base (draft-sermersheim-ldap-subordinate-scope).
	ScopeChildren Scope = 3
)

// SearchRequest is a search of the store.
type SearchRequest struct {
	BaseDN string
	Scope  Scope
	Filter *Filter // nil: (objectClass=*)
	// Limit is the most entries to deliver (0: no limit). When more match,
	// the result says so.
	Limit int
	// After resumes a search after the entry with this ID (paging):
	// entries come in ID order.
	After uint64
	// CanRead says which attributes the requester may read; filters treat
	// the others as absent. Nil: everything but secrets.
	CanRead func(*AttributeType) bool
}

// SearchResult tells how a search ended.
type SearchResult struct {
	// LastID is the ID of the last entry delivered.
	LastID uint64
	// More says at least one more entry matched beyond Limit.
	More bool
}

// errStop ends a search early without an error.
var errStop = errors.New("stop")

// searchChunk is how many candidates one read transaction tests: results
// go to the caller (and the network) outside any transaction, so a slow
// client never holds a read transaction open (which would stall bbolt's
// writers when the file grows).
const searchChunk = 256

// Search delivers the matching entries in ID order to fn. The entries are
// the caller's. fn may return an error to stop; ctx's deadline or
// cancellation ends the search with timeLimitExceeded or canceled.
func (s *Store) Search(ctx context.Context, req SearchRequest, fn func(*Entry) error) (SearchResult, error) {
	var res SearchResult
	pb, err := parseDNCached(req.BaseDN)
	if err != nil {
		return res, &Error{Code: ResultInvalidDNSyntax, Message: err.Error()}
	}
	f := req.Filter
	if f == nil {
		f = Present("objectClass")
	}
	var ids []uint64
	var baseID uint64
	var matched []*Entry
	gen := s.dnGen.Load() // before the transaction: see cacheParentDN
	err = s.db.View(func(tx *bolt.Tx) error {
		id, err := s.resolveNorms(tx, pb.dn, pb.norms)
		if err != nil {
			return err
		}
		baseID = id
		if req.Scope == ScopeBase {
			ids = []uint64{id}
		} else {
			cand, all := candidates(tx, f, req.CanRead)
			scope := req.Scope
			if scope == ScopeChildren {
				scope = ScopeSub
			}
			switch {
			case all && scope == ScopeOne:
				ids = s.children(tx, id)
				slices.Sort(ids)
			case all && id == s.baseID:
				// The whole directory: id2entry in order.
				c := tx.Bucket(bucketID2Entry).Cursor()
				for k, _ := c.Seek(idKey(req.After + 1)); k != nil; k, _ = c.Next() {
					ids = append(ids, binary.BigEndian.Uint64(k))
				}
			case all:
				ids = s.subtree(tx, id)
				slices.Sort(ids)
			default:
				ids = s.inScope(tx, cand, id, scope)
			}
		}
		if req.After > 0 {
			i, _ := slices.BinarySearch(ids, req.After+1)
			ids = ids[i:]
		}
		// A small search (the usual lookup) is done in this transaction.
		if len(ids) <= searchChunk {
			matched, err = s.evalChunk(tx, ids, baseID, req, f, gen)
			ids = nil
			return err
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	delivered := 0
	// deliver hands entries to fn; false: the search is over.
	deliver := func(matched []*Entry) (bool, error) {
		for _, e := range matched {
			if req.Limit > 0 && delivered >= req.Limit {
				res.More = true
				return false, nil
			}
			if err := ctx.Err(); err != nil {
				return false, ctxError(err)
			}
			if err := fn(e); err != nil {
				if errors.Is(err, errStop) {
					return false, nil
				}
				return false, err
			}
			delivered++
			res.LastID = e.id
		}
		return true, nil
	}
	if more, err := deliver(matched); !more || err != nil {
		return res, err
	}
	for len(ids) > 0 {
		if err := ctx.Err(); err != nil {
			return res, ctxError(err)
		}
		chunk := ids[:min(len(ids), searchChunk)]
		ids = ids[len(chunk):]
		gen := s.dnGen.Load()
		err := s.db.View(func(tx *bolt.Tx) error {
			var err error
			matched, err = s.evalChunk(tx, chunk, baseID, req, f, gen)
			return err
		})
		if err != nil {
			return res, err
		}
		if more, err := deliver(matched); !more || err != nil {
			return res, err
		}
	}
	return res, nil
}

// entryByNormDN loads the entry a normalized DN names, or nil: the lookup
// filters use to follow DN-valued attributes (memberOf chains).
func (s *Store) entryByNormDN(tx *bolt.Tx, norm string, cache dnCache) *Entry {
	d, err := ParseDN(norm)
	if err != nil {
		return nil
	}
	id, err := s.resolveID(tx, d)
	if err != nil {
		return nil
	}
	e, _ := s.loadEntry(tx, id, cache)
	return e
}

// evalChunk loads candidates and keeps those that match the filter.
func (s *Store) evalChunk(tx *bolt.Tx, chunk []uint64, baseID uint64, req SearchRequest, f *Filter, gen uint64) ([]*Entry, error) {
	var matched []*Entry
	var cache dnCache
	env := &evalEnv{
		canRead: req.CanRead,
		virtual: func(e *Entry, t *AttributeType) [][]byte { return s.virtualValues(tx, e, t) },
		lookup: func(norm string) *Entry {
			if cache == nil {
				cache = dnCache{}
			}
			return s.entryByNormDN(tx, norm, cache)
		},
	}
	id2e := tx.Bucket(bucketID2Entry)
	for _, id := range chunk {
		if id == baseID && (req.Scope == ScopeOne || req.Scope == ScopeChildren) {
			continue
		}
		buf := id2e.Get(idKey(id))
		if buf == nil {
			continue // deleted since the candidates were taken
		}
		e, err := s.loadEntryBuf(tx, id, buf, cache, gen, true)
		if err != nil {
			return nil, err
		}
		if f.eval(e, env) == triTrue {
			matched = append(matched, e)
		}
	}
	return matched, nil
}

func ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: ResultTimeLimitExceeded, Message: "time limit exceeded"}
	}
	return &Error{Code: ResultCanceled, Message: "the operation was abandoned"}
}

// subtree returns id and every entry below it.
func (s *Store) subtree(tx *bolt.Tx, id uint64) []uint64 {
	out := []uint64{id}
	for i := 0; i < len(out); i++ {
		out = append(out, s.children(tx, out[i])...)
	}
	return out
}

// inScope keeps the candidates within the scope of base.
func (s *Store) inScope(tx *bolt.Tx, cand []uint64, base uint64, scope Scope) []uint64 {
	if scope == ScopeSub && base == s.baseID {
		return cand
	}
	id2e := tx.Bucket(bucketID2Entry)
	parentOf := func(id uint64) uint64 {
		v := id2e.Get(idKey(id))
		if len(v) < 8 {
			return 0
		}
		return binary.BigEndian.Uint64(v)
	}
	memo := map[uint64]bool{base: true}
	var under func(id uint64, depth int) bool
	under = func(id uint64, depth int) bool {
		if v, ok := memo[id]; ok {
			return v
		}
		p := parentOf(id)
		r := p != 0 && depth < maxRDNs+4 && under(p, depth+1)
		memo[id] = r
		return r
	}
	var out []uint64
	for _, id := range cand {
		switch scope {
		case ScopeOne:
			if parentOf(id) == base {
				out = append(out, id)
			}
		default:
			if under(id, 0) {
				out = append(out, id)
			}
		}
	}
	return out
}
