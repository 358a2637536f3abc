package directory

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ModOp is a modify operation (RFC 4511 §4.6, RFC 4525).
type ModOp int

// Modify operations.
const (
	ModAdd       ModOp = 0
	ModDelete    ModOp = 1
	ModReplace   ModOp = 2
	ModIncrement ModOp = 3
)

// Modification is one change of a modify request.
type Modification struct {
	Op   ModOp
	Attr Attribute
}

// errMemberMissing marks a member value naming no entry (an import
// retries such groups once the rest is in).
var errMemberMissing = errors.New("directory: member does not exist")

// writer performs changes inside one bbolt write transaction; an error
// anywhere rolls the whole operation back.
type writer struct {
	s  *Store
	tx *bolt.Tx
	// by is the DN of whoever asks ("" for the station itself).
	by string
	// internal writes may set attributes clients cannot (objectSid,
	// memberOf, timestamps).
	internal bool
	now      time.Time
	// renamed says an entry moved or was renamed (DNs changed).
	renamed bool
}

// update runs fn in a write transaction.
func (s *Store) update(by string, internal bool, fn func(w *writer) error) error {
	renamed := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		w := &writer{s: s, tx: tx, by: by, internal: internal, now: s.now().UTC()}
		err := fn(w)
		renamed = w.renamed
		return err
	})
	if renamed {
		// DNs changed: the cached parent DNs are stale (after the
		// commit, so no reader caches a DN from before it under the new
		// generation).
		s.dnGen.Add(1)
	}
	return err
}

func (w *writer) timestamp() []byte { return []byte(formatGeneralizedTime(w.now)) }

// prepareAttr checks one attribute's values from a request. Values to
// delete are only resolved (a userPassword value there is the old
// cleartext, compared with the stored hash).
func (w *writer) prepareAttr(a Attribute, op ModOp) (Attribute, error) {
	allowEmpty := op == ModReplace || op == ModDelete
	d, ok := parseAttrDesc(a.Name)
	if !ok {
		return a, &Error{Code: ResultUndefinedAttributeType, Message: fmt.Sprintf("unknown attribute type %q", a.Name)}
	}
	if d.unknownOpt {
		return a, &Error{Code: ResultUndefinedAttributeType, Message: fmt.Sprintf("attribute option in %q is not supported", a.Name)}
	}
	t := d.typ
	if (t.NoUserModification || t.virtual) && !w.internal {
		return a, &Error{Code: ResultConstraintViolation, Message: fmt.Sprintf("%s is maintained by the directory", t.Name())}
	}
	if len(a.Values) == 0 && !allowEmpty {
		return a, &Error{Code: ResultProtocolError, Message: fmt.Sprintf("no values given for %s", t.Name())}
	}
	out := Attribute{Name: t.Name(), typ: t, Values: make([][]byte, 0, len(a.Values))}
	if op == ModDelete {
		out.Values = append(out.Values, a.Values...)
		return out, nil
	}
	// seen holds the normalized values so far: checking each value
	// against all the others would be quadratic (a group of thousands).
	seen := make(map[string]bool, len(a.Values))
	for _, v := range a.Values {
		if err := t.validate(v); err != nil {
			return a, &Error{Code: ResultInvalidAttributeSyntax, Message: err.Error()}
		}
		if t.Name() == "userPassword" {
			if len(a.Values) > 1 {
				return a, &Error{Code: ResultConstraintViolation, Message: "userPassword takes one value"}
			}
			h, err := preparePassword(v)
			if err != nil {
				return a, err
			}
			out.Values = append(out.Values, h)
			continue
		}
		dup := false
		if n, ok := t.normalize(v); ok {
			dup = seen[string(n)]
			seen[string(n)] = true
		} else {
			nv := Attribute{typ: t, Values: out.Values}
			dup = nv.hasValue(v)
		}
		if dup {
			return a, &Error{Code: ResultAttributeOrValueExists, Message: fmt.Sprintf("%s: value given twice", t.Name())}
		}
		out.Values = append(out.Values, bytes.Clone(v))
	}
	return out, nil
}

// prepareAttrs checks an add request's attributes, merging repeats of one
// type (cn and commonName, userCertificate and userCertificate;binary).
func (w *writer) prepareAttrs(in []Attribute) ([]Attribute, error) {
	var out []Attribute
	for _, a := range in {
		p, err := w.prepareAttr(a, ModAdd)
		if err != nil {
			return nil, err
		}
		merged := false
		for i := range out {
			if out[i].typ == p.typ {
				for _, v := range p.Values {
					if out[i].hasValue(v) {
						return nil, &Error{Code: ResultAttributeOrValueExists, Message: fmt.Sprintf("%s: value given twice", p.typ.Name())}
					}
					out[i].Values = append(out[i].Values, v)
				}
				merged = true
			}
		}
		if !merged {
			out = append(out, p)
		}
	}
	return out, nil
}

// checkEntry runs the checks that follow any change: RDN values present,
// object classes, single values.
func (w *writer) checkEntry(e *Entry, rdn RDN) error {
	for _, ava := range rdn {
		a := e.get(ava.Type)
		if a == nil || !a.hasValue([]byte(ava.Value)) {
			return &Error{Code: ResultNotAllowedOnRDN, Message: fmt.Sprintf("the RDN value %s=%s must stay in the entry", ava.Type.Name(), ava.Value)}
		}
	}
	classes, err := checkClasses(e)
	if err != nil {
		return err
	}
	e.set(attrByCanonical["objectClass"], classes...)
	for _, a := range e.Attrs {
		if a.typ.SingleValue && len(a.Values) > 1 {
			return &Error{Code: ResultConstraintViolation, Message: fmt.Sprintf("%s takes a single value", a.typ.Name())}
		}
		if a.typ.Name() == "userPassword" && len(a.Values) > 1 {
			return &Error{Code: ResultConstraintViolation, Message: "userPassword takes one value"}
		}
	}
	return nil
}

// checkUnique refuses values of unique attributes that another entry has.
func (w *writer) checkUnique(e *Entry) error {
	for _, a := range e.Attrs {
		if !a.typ.Unique {
			continue
		}
		for _, v := range a.Values {
			n, ok := a.typ.normalize(v)
			if !ok {
				continue
			}
			for _, id := range lookupEq(w.tx, a.typ, n) {
				if id == e.id {
					continue
				}
				other, err := w.s.loadEntry(w.tx, id, nil)
				if err != nil {
					return err
				}
				if oa := other.get(a.typ); oa != nil && oa.hasValue(v) {
					var sentinel error
					switch a.typ.Name() {
					case "userPrincipalName":
						sentinel = ErrUPNInUse
					case "sAMAccountName":
						sentinel = ErrUserExists
					}
					return &Error{Code: ResultConstraintViolation, Message: fmt.Sprintf("%s %q is already in use", a.typ.Name(), v), Err: sentinel}
				}
			}
		}
	}
	return nil
}

func (w *writer) nextSID() ([]byte, error) {
	meta := w.tx.Bucket(bucketMeta)
	rid := binary.BigEndian.Uint32(meta.Get(keyNextRID))
	if err := meta.Put(keyNextRID, binary.BigEndian.AppendUint32(nil, rid+1)); err != nil {
		return nil, err
	}
	return sidWithRID(w.s.domainSID, rid), nil
}

func sidWithRID(domain []byte, rid uint32) []byte {
	sid := binary.LittleEndian.AppendUint32(bytes.Clone(domain), rid)
	sid[1]++
	return sid
}

func newGUID() ([]byte, error) {
	g := make([]byte, 16)
	if _, err := rand.Read(g); err != nil {
		return nil, err
	}
	// Version 4, variant 1 in the Windows (mixed-endian) layout.
	g[7] = g[7]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g, nil
}

// isPrincipal says whether an entry gets an objectSid: users and groups.
func isPrincipal(e *Entry) bool {
	oc := e.get(attrByCanonical["objectClass"])
	if oc == nil {
		return false
	}
	return oc.hasValue([]byte("user")) || oc.hasValue([]byte("group"))
}

// put stores an entry and moves its index keys.
func (w *writer) put(old, e *Entry) error {
	if err := w.tx.Bucket(bucketID2Entry).Put(idKey(e.id), encodeEntry(e)); err != nil {
		return err
	}
	return updateIndexes(w.tx, e.id, old, e)
}

func (w *writer) load(dn DN) (*Entry, error) {
	id, err := w.s.resolveID(w.tx, dn)
	if err != nil {
		return nil, err
	}
	return w.s.loadEntry(w.tx, id, nil)
}

// add creates an entry.
func (w *writer) add(in *Entry) (*Entry, error) {
	dn, err := ParseDN(in.DN)
	if err != nil {
		return nil, &Error{Code: ResultInvalidDNSyntax, Message: err.Error()}
	}
	if len(dn) == 0 || !dn.HasSuffix(w.s.base) {
		return nil, &Error{Code: ResultNoSuchObject, Message: fmt.Sprintf("%s is outside this directory (%s)", dn, w.s.base)}
	}
	var parent uint64
	var key []byte
	if dn.Equal(w.s.base) {
		if w.s.baseID != 0 || !w.internal {
			return nil, &Error{Code: ResultEntryAlreadyExists, Message: "the base entry exists", Err: ErrEntryExists}
		}
		key = dn2idKey(0, w.s.baseNorm)
	} else {
		if parent, err = w.s.resolveID(w.tx, dn.Parent()); err != nil {
			return nil, err
		}
		key = dn2idKey(parent, dn[0].Norm())
	}
	d2i := w.tx.Bucket(bucketDN2ID)
	if d2i.Get(key) != nil {
		return nil, &Error{Code: ResultEntryAlreadyExists, Message: "entry already exists: " + dn.String(), Err: ErrEntryExists}
	}
	attrs, err := w.prepareAttrs(in.Attrs)
	if err != nil {
		return nil, err
	}
	e := &Entry{Attrs: attrs, parent: parent, rdn: dn[0].String()}
	if parent == 0 {
		e.rdn = dn.String()
	}
	// The RDN's values belong in the entry.
	for _, ava := range dn[0] {
		a := e.get(ava.Type)
		if a == nil {
			e.set(ava.Type, []byte(ava.Value))
		} else if !a.hasValue([]byte(ava.Value)) {
			a.Values = append(a.Values, []byte(ava.Value))
		}
	}
	if err := w.checkEntry(e, dn[0]); err != nil {
		return nil, err
	}
	ts := w.timestamp()
	if e.Get("createTimestamp") == nil {
		e.set(attrByCanonical["createTimestamp"], ts)
	}
	e.set(attrByCanonical["modifyTimestamp"], ts)
	if w.by != "" {
		e.set(attrByCanonical["creatorsName"], []byte(w.by))
		e.set(attrByCanonical["modifiersName"], []byte(w.by))
	}
	if e.Get("objectGUID") == nil {
		g, err := newGUID()
		if err != nil {
			return nil, err
		}
		e.set(attrByCanonical["objectGUID"], g)
	}
	if e.Get("objectSid") == nil && isPrincipal(e) {
		sid, err := w.nextSID()
		if err != nil {
			return nil, err
		}
		e.set(attrByCanonical["objectSid"], sid)
	}
	if err := w.checkUnique(e); err != nil {
		return nil, err
	}
	members, err := w.memberTargets(e, nil)
	if err != nil {
		return nil, err
	}
	id, err := w.tx.Bucket(bucketID2Entry).NextSequence()
	if err != nil {
		return nil, err
	}
	e.id = id
	e.DN = dn.String()
	if parent != 0 {
		pdn, err := w.s.dnOf(w.tx, parent, nil)
		if err != nil {
			return nil, err
		}
		e.DN = e.rdn + "," + pdn
	}
	if err := d2i.Put(key, idKey(id)); err != nil {
		return nil, err
	}
	if err := w.put(nil, e); err != nil {
		return nil, err
	}
	for _, m := range members {
		if err := w.backLink(m, e.DN, true); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// memberTargets checks the member values an entry gains (those not in old)
// and returns their DNs: each must name an existing entry other than the
// group itself.
func (w *writer) memberTargets(e, old *Entry) ([]DN, error) {
	a := e.get(attrByCanonical["member"])
	if a == nil {
		return nil, nil
	}
	var oa *Attribute
	if old != nil {
		oa = old.get(attrByCanonical["member"])
	}
	var out []DN
	for _, v := range a.Values {
		if oa != nil && oa.hasValue(v) {
			continue
		}
		m, err := ParseDN(string(v))
		if err != nil {
			return nil, &Error{Code: ResultInvalidAttributeSyntax, Message: err.Error()}
		}
		id, err := w.s.resolveID(w.tx, m)
		if err != nil {
			return nil, &Error{Code: ResultConstraintViolation, Message: fmt.Sprintf("member %s does not exist", m), Err: errMemberMissing}
		}
		if id == e.id && e.id != 0 {
			return nil, &Error{Code: ResultConstraintViolation, Message: "a group cannot be a member of itself"}
		}
		out = append(out, m)
	}
	return out, nil
}

// backLink adds or removes memberOf=group on the entry named member.
func (w *writer) backLink(member DN, group string, add bool) error {
	id, err := w.s.resolveID(w.tx, member)
	if err != nil {
		if !add {
			return nil // already gone
		}
		return err
	}
	old, err := w.s.loadEntry(w.tx, id, nil)
	if err != nil {
		return err
	}
	e := old.clone()
	t := attrByCanonical["memberOf"]
	a := e.get(t)
	switch {
	case add && (a == nil || !a.hasValue([]byte(group))):
		if a == nil {
			e.set(t, []byte(group))
		} else {
			a.Values = append(a.Values, []byte(group))
		}
	case !add && a != nil:
		removeValue(e, t, []byte(group))
	default:
		return nil
	}
	return w.put(old, e)
}

// removeValue removes the values of t equal to v; it reports whether one was.
func removeValue(e *Entry, t *AttributeType, v []byte) bool {
	a := e.get(t)
	if a == nil {
		return false
	}
	nv, ok := t.normalize(v)
	found := false
	kept := a.Values[:0:0]
	for _, x := range a.Values {
		nx, ok2 := t.normalize(x)
		if ok && ok2 && bytes.Equal(nx, nv) || (!ok || !ok2) && bytes.Equal(x, v) {
			found = true
			continue
		}
		kept = append(kept, x)
	}
	e.set(t, kept...)
	return found
}

// modify applies modifications to an entry, all or nothing.
func (w *writer) modify(dnStr string, mods []Modification) (*Entry, error) {
	dn, err := ParseDN(dnStr)
	if err != nil {
		return nil, &Error{Code: ResultInvalidDNSyntax, Message: err.Error()}
	}
	old, err := w.load(dn)
	if err != nil {
		return nil, err
	}
	e := old.clone()
	for _, m := range mods {
		if err := w.applyMod(e, m); err != nil {
			return nil, err
		}
	}
	rdn := dn[0]
	if old.parent == 0 {
		rdn = w.s.base[0]
	}
	if oc, noc := old.get(attrByCanonical["objectClass"]), e.get(attrByCanonical["objectClass"]); oc != nil && noc != nil {
		_, s1, _ := expandClasses(oc.Values)
		_, s2, err := expandClasses(noc.Values)
		if err == nil && s1 != s2 {
			return nil, &Error{Code: ResultObjectClassModsProhibited, Message: "the structural object class cannot change"}
		}
	}
	if err := w.checkEntry(e, rdn); err != nil {
		return nil, err
	}
	if err := w.checkUnique(e); err != nil {
		return nil, err
	}
	added, err := w.memberTargets(e, old)
	if err != nil {
		return nil, err
	}
	var removed []DN
	if oa := old.get(attrByCanonical["member"]); oa != nil {
		na := e.get(attrByCanonical["member"])
		for _, v := range oa.Values {
			if na == nil || !na.hasValue(v) {
				if m, err := ParseDN(string(v)); err == nil {
					removed = append(removed, m)
				}
			}
		}
	}
	e.set(attrByCanonical["modifyTimestamp"], w.timestamp())
	if w.by != "" {
		e.set(attrByCanonical["modifiersName"], []byte(w.by))
	}
	if err := w.put(old, e); err != nil {
		return nil, err
	}
	for _, m := range removed {
		if err := w.backLink(m, e.DN, false); err != nil {
			return nil, err
		}
	}
	for _, m := range added {
		if err := w.backLink(m, e.DN, true); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (w *writer) applyMod(e *Entry, m Modification) error {
	p, err := w.prepareAttr(m.Attr, m.Op)
	if err != nil {
		return err
	}
	t := p.typ
	a := e.get(t)
	switch m.Op {
	case ModAdd:
		if a == nil {
			e.set(t, p.Values...)
			return nil
		}
		if t.Name() == "userPassword" {
			return &Error{Code: ResultConstraintViolation, Message: "userPassword takes one value"}
		}
		for _, v := range p.Values {
			if a.hasValue(v) {
				return &Error{Code: ResultAttributeOrValueExists, Message: fmt.Sprintf("%s already has the value %q", t.Name(), printable(v))}
			}
			a.Values = append(a.Values, v)
		}
	case ModDelete:
		if a == nil {
			return &Error{Code: ResultNoSuchAttribute, Message: fmt.Sprintf("the entry has no %s", t.Name())}
		}
		if len(m.Attr.Values) == 0 {
			e.remove(t)
			return nil
		}
		if t.Name() == "userPassword" {
			// The old password in cleartext, as AD's change protocol.
			if !verifyPassword(a.Values[0], m.Attr.Values[0]) {
				return &Error{Code: ResultNoSuchAttribute, Message: "userPassword: the old password does not match"}
			}
			e.remove(t)
			return nil
		}
		for _, v := range p.Values {
			if !removeValue(e, t, v) {
				return &Error{Code: ResultNoSuchAttribute, Message: fmt.Sprintf("%s has no value %q", t.Name(), printable(v))}
			}
		}
	case ModReplace:
		e.set(t, p.Values...)
	case ModIncrement:
		if t.syntax != synInteger {
			return &Error{Code: ResultConstraintViolation, Message: fmt.Sprintf("%s is not an integer attribute", t.Name())}
		}
		if len(p.Values) != 1 {
			return &Error{Code: ResultProtocolError, Message: "increment takes one value"}
		}
		if a == nil {
			return &Error{Code: ResultNoSuchAttribute, Message: fmt.Sprintf("the entry has no %s", t.Name())}
		}
		delta, _ := parseInteger(p.Values[0])
		for i, v := range a.Values {
			n, ok := parseInteger(v)
			if !ok {
				return &Error{Code: ResultConstraintViolation, Message: fmt.Sprintf("%s holds a non-integer", t.Name())}
			}
			a.Values[i] = []byte(new(big.Int).Add(n, delta).String())
		}
	default:
		return &Error{Code: ResultProtocolError, Message: "unknown modify operation"}
	}
	return nil
}

func printable(v []byte) string {
	for _, c := range v {
		if c < 0x20 || c >= 0x7f {
			return fmt.Sprintf("%d bytes", len(v))
		}
	}
	if len(v) > 64 {
		return string(v[:64]) + "…"
	}
	return string(v)
}

// delete removes a leaf entry and every member/memberOf link to it.
func (w *writer) delete(dnStr string) error {
	dn, err := ParseDN(dnStr)
	if err != nil {
		return &Error{Code: ResultInvalidDNSyntax, Message: err.Error()}
	}
	if dn.Equal(w.s.base) || dn.Equal(w.s.admins) || dn.Equal(w.s.people) || dn.Equal(w.s.groups) {
		return &Error{Code: ResultUnwillingToPerform, Message: dn.String() + " is part of the directory's structure and cannot be deleted"}
	}
	id, err := w.s.resolveID(w.tx, dn)
	if err != nil {
		return err
	}
	if w.s.hasChildren(w.tx, id) {
		return &Error{Code: ResultNotAllowedOnNonLeaf, Message: dn.String() + " has entries below it"}
	}
	e, err := w.s.loadEntry(w.tx, id, nil)
	if err != nil {
		return err
	}
	for _, v := range e.Strings("member") {
		if m, err := ParseDN(v); err == nil {
			if err := w.backLink(m, e.DN, false); err != nil {
				return err
			}
		}
	}
	for _, v := range e.Strings("memberOf") {
		if err := w.unlinkMember(v, e.DN); err != nil {
			return err
		}
	}
	if err := w.tx.Bucket(bucketDN2ID).Delete(dn2idKey(e.parent, dn[0].Norm())); err != nil {
		return err
	}
	if err := w.tx.Bucket(bucketID2Entry).Delete(idKey(id)); err != nil {
		return err
	}
	return updateIndexes(w.tx, id, e, nil)
}

// unlinkMember removes member=memberDN from the group named group.
func (w *writer) unlinkMember(group, memberDN string) error {
	g, err := ParseDN(group)
	if err != nil {
		return nil
	}
	id, err := w.s.resolveID(w.tx, g)
	if err != nil {
		return nil
	}
	old, err := w.s.loadEntry(w.tx, id, nil)
	if err != nil {
		return err
	}
	e := old.clone()
	if !removeValue(e, attrByCanonical["member"], []byte(memberDN)) {
		return nil
	}
	return w.put(old, e)
}

// modifyDN renames an entry and, with newSuperior, moves it with its
// subtree. member and memberOf values naming the moved entries follow.
func (w *writer) modifyDN(dnStr, newRDNStr string, deleteOld bool, newSuperior string) (*Entry, error) {
	dn, err := ParseDN(dnStr)
	if err != nil {
		return nil, &Error{Code: ResultInvalidDNSyntax, Message: err.Error()}
	}
	newRDN, err := ParseDN(newRDNStr)
	if err != nil || len(newRDN) != 1 {
		return nil, &Error{Code: ResultInvalidDNSyntax, Message: fmt.Sprintf("new RDN %q is not one RDN", newRDNStr)}
	}
	if dn.Equal(w.s.base) || dn.Equal(w.s.admins) || dn.Equal(w.s.people) || dn.Equal(w.s.groups) {
		return nil, &Error{Code: ResultUnwillingToPerform, Message: dn.String() + " is part of the directory's structure and cannot be renamed"}
	}
	id, err := w.s.resolveID(w.tx, dn)
	if err != nil {
		return nil, err
	}
	old, err := w.s.loadEntry(w.tx, id, nil)
	if err != nil {
		return nil, err
	}
	parent := old.parent
	if newSuperior != "" {
		sup, err := ParseDN(newSuperior)
		if err != nil {
			return nil, &Error{Code: ResultInvalidDNSyntax, Message: err.Error()}
		}
		if parent, err = w.s.resolveID(w.tx, sup); err != nil {
			return nil, err
		}
		// Not below itself.
		for p := parent; p != 0; {
			if p == id {
				return nil, &Error{Code: ResultUnwillingToPerform, Message: "an entry cannot move below itself"}
			}
			v := w.tx.Bucket(bucketID2Entry).Get(idKey(p))
			if len(v) < 8 {
				break
			}
			p = binary.BigEndian.Uint64(v)
		}
	}
	oldKey := dn2idKey(old.parent, dn[0].Norm())
	newKey := dn2idKey(parent, newRDN[0].Norm())
	d2i := w.tx.Bucket(bucketDN2ID)
	if !bytes.Equal(oldKey, newKey) && d2i.Get(newKey) != nil {
		return nil, &Error{Code: ResultEntryAlreadyExists, Message: "an entry with the new name exists", Err: ErrEntryExists}
	}
	// Old DNs of the subtree, before anything moves.
	sub := w.s.subtree(w.tx, id)
	oldDNs := make(map[uint64]string, len(sub))
	cache := dnCache{}
	for _, x := range sub {
		if oldDNs[x], err = w.s.dnOf(w.tx, x, cache); err != nil {
			return nil, err
		}
	}
	// Entries that link to the subtree.
	linked := map[uint64]bool{}
	inSub := map[uint64]bool{}
	for _, x := range sub {
		inSub[x] = true
	}
	for _, x := range sub {
		xe, err := w.s.loadEntry(w.tx, x, cache)
		if err != nil {
			return nil, err
		}
		for _, v := range append(xe.Strings("member"), xe.Strings("memberOf")...) {
			if d, err := ParseDN(v); err == nil {
				if tid, err := w.s.resolveID(w.tx, d); err == nil {
					linked[tid] = true
				}
			}
		}
	}

	e := old.clone()
	if deleteOld {
		for _, ava := range dn[0] {
			keep := false
			for _, n := range newRDN[0] {
				if n.Type == ava.Type {
					if nv1, _ := n.Type.normalize([]byte(n.Value)); bytes.Equal(nv1, mustNorm(ava)) {
						keep = true
					}
				}
			}
			if !keep {
				removeValue(e, ava.Type, []byte(ava.Value))
			}
		}
	}
	for _, ava := range newRDN[0] {
		a := e.get(ava.Type)
		if a != nil && a.hasValue([]byte(ava.Value)) {
			continue
		}
		if ava.Type.NoUserModification && !w.internal {
			return nil, &Error{Code: ResultConstraintViolation, Message: fmt.Sprintf("%s is maintained by the directory", ava.Type.Name())}
		}
		if err := ava.Type.validate([]byte(ava.Value)); err != nil {
			return nil, &Error{Code: ResultInvalidAttributeSyntax, Message: err.Error()}
		}
		if a == nil {
			e.set(ava.Type, []byte(ava.Value))
		} else {
			a.Values = append(a.Values, []byte(ava.Value))
		}
	}
	if err := w.checkEntry(e, newRDN[0]); err != nil {
		return nil, err
	}
	if err := w.checkUnique(e); err != nil {
		return nil, err
	}
	e.parent = parent
	e.rdn = newRDN[0].String()
	e.set(attrByCanonical["modifyTimestamp"], w.timestamp())
	if w.by != "" {
		e.set(attrByCanonical["modifiersName"], []byte(w.by))
	}
	w.renamed = true
	if err := d2i.Delete(oldKey); err != nil {
		return nil, err
	}
	if err := d2i.Put(newKey, idKey(id)); err != nil {
		return nil, err
	}
	if err := w.put(old, e); err != nil {
		return nil, err
	}
	// Rewrite links: old DN → new DN for every moved entry.
	rename := map[string]string{}
	newCache := dnCache{}
	for _, x := range sub {
		nd, err := w.s.dnOf(w.tx, x, newCache)
		if err != nil {
			return nil, err
		}
		od, _ := ParseDN(oldDNs[x])
		rename[od.Norm()] = nd
	}
	for tid := range linked {
		te, err := w.s.loadEntry(w.tx, tid, nil)
		if err != nil {
			return nil, err
		}
		changed := false
		ne := te.clone()
		for _, name := range []string{"member", "memberOf"} {
			a := ne.get(attrByCanonical[name])
			if a == nil {
				continue
			}
			for i, v := range a.Values {
				if d, err := ParseDN(string(v)); err == nil {
					if nd, ok := rename[d.Norm()]; ok {
						a.Values[i] = []byte(nd)
						changed = true
					}
				}
			}
		}
		if changed {
			if err := w.put(te, ne); err != nil {
				return nil, err
			}
		}
	}
	if e.DN, err = w.s.dnOf(w.tx, id, nil); err != nil {
		return nil, err
	}
	return e, nil
}

func mustNorm(a AVA) []byte {
	n, _ := a.Type.normalize([]byte(a.Value))
	return n
}

// ---- the generic write API ---------------------------------------------------

// Add creates an entry on behalf of by (a DN, or "" for the station). The
// directory assigns objectGUID, objectSid (users and groups), timestamps,
// and keeps memberOf in step with member.
func (s *Store) Add(by string, e *Entry) (*Entry, error) {
	var out *Entry
	err := s.update(by, false, func(w *writer) (err error) {
		out, err = w.add(e)
		return err
	})
	return out, err
}

// Modify changes an entry; all modifications apply or none.
func (s *Store) Modify(by, dn string, mods []Modification) (*Entry, error) {
	var out *Entry
	err := s.update(by, false, func(w *writer) (err error) {
		out, err = w.modify(dn, mods)
		return err
	})
	return out, err
}

// Delete removes a leaf entry.
func (s *Store) Delete(by, dn string) error {
	return s.update(by, false, func(w *writer) error { return w.delete(dn) })
}

// ModifyDN renames (and with newSuperior, moves) an entry.
func (s *Store) ModifyDN(by, dn, newRDN string, deleteOldRDN bool, newSuperior string) (*Entry, error) {
	var out *Entry
	err := s.update(by, false, func(w *writer) (err error) {
		out, err = w.modifyDN(dn, newRDN, deleteOldRDN, newSuperior)
		return err
	})
	return out, err
}

// Compare tests an attribute value assertion against an entry (the
// caller checks read access). userPassword never compares.
func (s *Store) Compare(dn, attr string, value []byte, canRead func(*AttributeType) bool) (bool, error) {
	d, ok := parseAttrDesc(attr)
	if !ok || d.unknownOpt {
		return false, &Error{Code: ResultUndefinedAttributeType, Message: fmt.Sprintf("unknown attribute type %q", attr)}
	}
	if d.typ.Secret || canRead != nil && !canRead(d.typ) {
		return false, &Error{Code: ResultInsufficientAccessRights, Message: "no access to " + d.typ.Name()}
	}
	if d.typ.equality == matchNone {
		return false, &Error{Code: ResultInappropriateMatching, Message: d.typ.Name() + " has no equality rule"}
	}
	e, err := s.Get(dn)
	if err != nil {
		return false, err
	}
	var vals [][]byte
	if d.typ.virtual {
		err = s.db.View(func(tx *bolt.Tx) error { vals = s.virtualValues(tx, e, d.typ); return nil })
		if err != nil {
			return false, err
		}
	} else if a := e.get(d.typ); a != nil {
		vals = a.Values
	}
	switch matchEqual(d.typ, vals, value) {
	case triTrue:
		return true, nil
	case triFalse:
		if len(vals) == 0 {
			return false, &Error{Code: ResultNoSuchAttribute, Message: "the entry has no " + d.typ.Name()}
		}
		return false, nil
	}
	return false, &Error{Code: ResultInvalidAttributeSyntax, Message: "the value is not valid for " + d.typ.Name()}
}

// ---- passwords -----------------------------------------------------------------

// resolveBindName finds the entry a bind names: a DN, or a
// userPrincipalName as Active Directory accepts.
func (s *Store) resolveBindName(tx *bolt.Tx, name string) (uint64, bool) {
	if d, err := ParseDN(name); err == nil && len(d) > 0 {
		id, err := s.resolveID(tx, d)
		return id, err == nil
	}
	t := attrByCanonical["userPrincipalName"]
	n, ok := t.normalize([]byte(name))
	if !ok {
		return 0, false
	}
	ids := lookupEq(tx, t, n)
	for _, id := range ids {
		if e, err := s.loadEntry(tx, id, nil); err == nil {
			if a := e.get(t); a != nil && a.hasValue([]byte(name)) {
				return id, true
			}
		}
	}
	return 0, false
}

// Authenticate checks a simple bind: name is a DN or a UPN. It returns the
// entry's DN, or an invalidCredentials error that does not say whether the
// entry exists (a missing entry costs as much time as a wrong password).
func (s *Store) Authenticate(name string, password []byte) (string, error) {
	bad := &Error{Code: ResultInvalidCredentials, Message: "invalid credentials", Err: ErrInvalidPassword}
	var stored []byte
	var dn string
	err := s.db.View(func(tx *bolt.Tx) error {
		id, ok := s.resolveBindName(tx, name)
		if !ok {
			return nil
		}
		e, err := s.loadEntry(tx, id, nil)
		if err != nil {
			return err
		}
		dn = e.DN
		if a := e.Get("userPassword"); a != nil && len(a.Values) > 0 {
			stored = bytes.Clone(a.Values[0])
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if stored == nil {
		verifyPassword(dummyHash, password)
		return "", bad
	}
	if !verifyPassword(stored, password) {
		return "", bad
	}
	return dn, nil
}

// SetPasswordDN sets the password of the entry named dn (cleartext, hashed
// here; it must meet the policy).
func (s *Store) SetPasswordDN(by, dn string, password []byte) error {
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	return s.update(by, true, func(w *writer) error {
		_, err := w.modify(dn, []Modification{{Op: ModReplace, Attr: Attribute{Name: "userPassword", Values: [][]byte{h}}}})
		return err
	})
}
