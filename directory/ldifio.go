package directory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/scstation/scstation/directory/ldif"
)

// LDIF import and export (RFC 2849), for backups, migrations, and loading
// users in bulk.

// ImportOptions say how ImportLDIF treats its input.
type ImportOptions struct {
	// BatchSize is how many records go into one transaction (default
	// 1000). bbolt splits pages only at commit, so one huge transaction
	// is slower than many; each commit is an fsync.
	BatchSize int
	// SkipExisting skips content records whose entry exists; otherwise
	// they are an error. The entries the store makes itself (the base,
	// ou=people, ou=groups, cn=admins) are always merged instead: their
	// members are added.
	SkipExisting bool
	// SkipUnknown drops attributes, options and object classes the schema
	// does not know (an LDIF from slapcat has entryUUID, entryCSN, ...),
	// and entries of which it knows no class; otherwise they are an error.
	SkipUnknown bool
}

// ImportResult counts what ImportLDIF did.
type ImportResult struct {
	Added, Modified, Deleted, Renamed, Merged, Skipped int
	// Dropped counts the values left out, by attribute (memberOf, which
	// the directory derives from member, and with SkipUnknown, what the
	// schema does not know).
	Dropped map[string]int
}

// Records is the number of records applied.
func (r ImportResult) Records() int {
	return r.Added + r.Modified + r.Deleted + r.Renamed + r.Merged + r.Skipped
}

// ImportError is a record that could not be applied. Every record before
// it is in the directory, none after it.
type ImportError struct {
	Line int
	DN   string
	Err  error
}

func (e *ImportError) Error() string {
	return fmt.Sprintf("LDIF line %d (%s): %v", e.Line, e.DN, e.Err)
}

func (e *ImportError) Unwrap() error { return e.Err }

// ImportLDIF applies LDIF records: content records and changetype add
// create entries (keeping objectSid, objectGUID and createTimestamp when
// given, so an export restores identically), delete, modify and modrdn
// change them. Content records of groups (with member values) are applied
// after everything else, so members may come later in the file. On an
// error the records before the failing one are committed.
func (s *Store) ImportLDIF(ctx context.Context, r io.Reader, opts ImportOptions) (ImportResult, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	res := ImportResult{Dropped: map[string]int{}}
	lr := ldif.NewReader(r)
	var batch, deferred []*ldif.Record
	for {
		rec, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		if rec.ChangeType == "" && rec.Values("member") != nil {
			deferred = append(deferred, rec)
			continue
		}
		batch = append(batch, rec)
		if len(batch) >= opts.BatchSize {
			if err := s.importBatch(ctx, batch, opts, &res); err != nil {
				return res, err
			}
			batch = batch[:0]
		}
	}
	if err := s.importBatch(ctx, batch, opts, &res); err != nil {
		return res, err
	}
	// Groups, in rounds: one whose members are groups still to come
	// waits for the next round.
	for len(deferred) > 0 {
		var next []*ldif.Record
		for start := 0; start < len(deferred); start += opts.BatchSize {
			chunk := deferred[start:min(len(deferred), start+opts.BatchSize)]
			var waiting []*ldif.Record
			err := s.importRecords(ctx, chunk, opts, &res, &waiting)
			if err != nil {
				return res, err
			}
			next = append(next, waiting...)
		}
		if len(next) == len(deferred) {
			// No progress: report the first.
			return res, s.importBatch(ctx, next[:1], opts, &res)
		}
		deferred = next
	}
	return res, nil
}

// importBatch applies records in one transaction. On an error it commits
// the records before the failing one and returns the error.
func (s *Store) importBatch(ctx context.Context, recs []*ldif.Record, opts ImportOptions, res *ImportResult) error {
	if len(recs) == 0 {
		return nil
	}
	return s.importRecords(ctx, recs, opts, res, nil)
}

// importRecords applies records in one transaction. With waiting, a group
// whose members do not exist yet is put there instead of failing.
func (s *Store) importRecords(ctx context.Context, recs []*ldif.Record, opts ImportOptions, res *ImportResult, waiting *[]*ldif.Record) error {
	if err := ctx.Err(); err != nil {
		return ctxError(err)
	}
	trial := *res
	trial.Dropped = map[string]int{}
	failed := -1
	var failErr error
	var held []*ldif.Record
	err := s.update("", true, func(w *writer) error {
		for i, rec := range recs {
			err := s.importRecord(w, rec, opts, &trial)
			if err != nil && waiting != nil && errors.Is(err, errMemberMissing) {
				held = append(held, rec)
				continue
			}
			if err != nil {
				failed, failErr = i, err
				return err
			}
		}
		return nil
	})
	if err == nil {
		addDropped(res, trial)
		if waiting != nil {
			*waiting = held
		}
		return nil
	}
	if failed < 0 {
		return err // the commit failed
	}
	// Commit what came before the failing record, then report it.
	if failed > 0 {
		prefix := *res
		prefix.Dropped = map[string]int{}
		err := s.update("", true, func(w *writer) error {
			for _, rec := range recs[:failed] {
				if err := s.importRecord(w, rec, opts, &prefix); err != nil && !(waiting != nil && errors.Is(err, errMemberMissing)) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		addDropped(res, prefix)
	}
	return &ImportError{Line: recs[failed].Line, DN: recs[failed].DN, Err: failErr}
}

func addDropped(res *ImportResult, trial ImportResult) {
	dropped := res.Dropped
	*res = trial
	res.Dropped = dropped
	for k, v := range trial.Dropped {
		res.Dropped[k] += v
	}
}

// errUnknownClass: with SkipUnknown, an entry none of whose classes the
// schema knows is left out.
var errUnknownClass = errors.New("directory: no known object class")

// importAttrs converts LDIF attributes for the store.
func (s *Store) importAttrs(in []ldif.Attr, opts ImportOptions, res *ImportResult) ([]Attribute, error) {
	out := make([]Attribute, 0, len(in))
	for _, a := range in {
		d, ok := parseAttrDesc(a.Name)
		switch {
		case !ok || d.unknownOpt:
			if !opts.SkipUnknown {
				return nil, &Error{Code: ResultUndefinedAttributeType, Message: fmt.Sprintf("attribute %q is not in the schema (SkipUnknown drops such attributes)", a.Name)}
			}
			res.Dropped[a.Name] += len(a.Values)
			continue
		case d.typ.virtual || d.typ.Name() == "memberOf":
			// Computed, or derived from member.
			res.Dropped[d.typ.Name()] += len(a.Values)
			continue
		case d.typ.Name() == "objectClass" && opts.SkipUnknown:
			var kept [][]byte
			for _, v := range a.Values {
				if c := LookupObjectClass(strings.TrimSpace(string(v))); c == nil || c.virtual {
					res.Dropped["objectClass: "+string(v)]++
					continue
				}
				kept = append(kept, v)
			}
			if len(kept) == 0 {
				return nil, errUnknownClass
			}
			a.Values = kept
		}
		out = append(out, Attribute{Name: a.Name, Values: a.Values})
	}
	return out, nil
}

func (s *Store) isStructural(dn DN) bool {
	return dn.Equal(s.base) || dn.Equal(s.people) || dn.Equal(s.groups) || dn.Equal(s.admins)
}

func (s *Store) importRecord(w *writer, rec *ldif.Record, opts ImportOptions, res *ImportResult) error {
	switch rec.ChangeType {
	case "", "add":
		attrs, err := s.importAttrs(rec.Attrs, opts, res)
		if err == errUnknownClass {
			res.Skipped++ // no class the schema knows: the whole entry
			return nil
		}
		if err != nil {
			return err
		}
		dn, err := ParseDN(rec.DN)
		if err != nil {
			return &Error{Code: ResultInvalidDNSyntax, Message: err.Error()}
		}
		if id, err := s.resolveID(w.tx, dn); err == nil {
			if s.isStructural(dn) {
				return s.mergeMembers(w, id, attrs, res)
			}
			if opts.SkipExisting {
				res.Skipped++
				return nil
			}
			return &Error{Code: ResultEntryAlreadyExists, Message: "entry already exists: " + rec.DN, Err: ErrEntryExists}
		}
		if _, err := w.add(&Entry{DN: rec.DN, Attrs: attrs}); err != nil {
			return err
		}
		res.Added++
	case "delete":
		if err := w.delete(rec.DN); err != nil {
			return err
		}
		res.Deleted++
	case "modify":
		var mods []Modification
		for _, m := range rec.Mods {
			op := map[string]ModOp{"add": ModAdd, "delete": ModDelete, "replace": ModReplace, "increment": ModIncrement}[m.Op]
			mods = append(mods, Modification{Op: op, Attr: Attribute{Name: m.Attr, Values: m.Values}})
		}
		if _, err := w.modify(rec.DN, mods); err != nil {
			return err
		}
		res.Modified++
	case "modrdn", "moddn":
		if _, err := w.modifyDN(rec.DN, rec.NewRDN, rec.DeleteOldRDN, rec.NewSuperior); err != nil {
			return err
		}
		res.Renamed++
	default:
		return fmt.Errorf("changetype %q is not supported", rec.ChangeType)
	}
	return nil
}

// mergeMembers adds an imported structural entry's member values that the
// existing entry lacks.
func (s *Store) mergeMembers(w *writer, id uint64, attrs []Attribute, res *ImportResult) error {
	e, err := s.loadEntry(w.tx, id, nil)
	if err != nil {
		return err
	}
	var add [][]byte
	for _, a := range attrs {
		if t := LookupAttribute(strings.SplitN(a.Name, ";", 2)[0]); t != nil && t.Name() == "member" {
			have := e.get(t)
			for _, v := range a.Values {
				if have == nil || !have.hasValue(v) {
					add = append(add, v)
				}
			}
		}
	}
	if len(add) > 0 {
		if _, err := w.modify(e.DN, []Modification{{Op: ModAdd, Attr: Attribute{Name: "member", Values: add}}}); err != nil {
			return err
		}
	}
	res.Merged++
	return nil
}

// ---- export -----------------------------------------------------------------------

// ExportOptions say what ExportLDIF writes.
type ExportOptions struct {
	// Passwords includes userPassword hashes ({ARGON2}, {SSHA512}, ...).
	Passwords bool
	// Profile "openldap" writes entries an OpenLDAP slapd with core,
	// cosine, inetorgperson and OpenLDAPSchema accepts: users become
	// inetOrgPerson + upnPrincipal (sn from cn when missing), groups
	// groupOfNames (empty ones are left out, as groupOfNames needs a
	// member), and Active Directory's attributes are dropped. "" writes
	// everything the store keeps, for ImportLDIF.
	Profile string
}

// ExportResult counts what ExportLDIF wrote.
type ExportResult struct {
	Entries int
	// Skipped are entries the profile cannot express (DNs).
	Skipped []string
}

// exportSkip are attributes never exported: memberOf is derived from
// member; the timestamps change with every write; sealed Kerberos keys
// are useless without the KDC's master key (re-key services after an
// import with scstation kdc service add).
var exportSkip = map[string]bool{"memberOf": true, "modifyTimestamp": true, "modifiersName": true, "scstationKerberosKeys": true}

// openLDAPSkip are attributes OpenLDAP's standard schema lacks.
var openLDAPSkip = map[string]bool{"sAMAccountName": true, "objectSid": true, "objectGUID": true, "userAccountControl": true,
	"altSecurityIdentities": true, "servicePrincipalName": true, "createTimestamp": true, "creatorsName": true}

// ExportLDIF writes the directory as LDIF content records: parents before
// children, and groups after the entries they contain, so that ImportLDIF
// (or ldapadd, or slapadd) can load it in order.
func (s *Store) ExportLDIF(ctx context.Context, out io.Writer, opts ExportOptions) (ExportResult, error) {
	var res ExportResult
	switch opts.Profile {
	case "", "openldap":
	default:
		return res, fmt.Errorf("directory: unknown export profile %q", opts.Profile)
	}
	// The order: a walk down from the base; then entries with members.
	var order []uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		order = s.subtree(tx, s.baseID)
		return nil
	})
	if err != nil {
		return res, err
	}
	w := ldif.NewWriter(out)
	var groups []*Entry
	const chunk = 1000
	for start := 0; start < len(order); start += chunk {
		if err := ctx.Err(); err != nil {
			return res, ctxError(err)
		}
		var entries []*Entry
		err := s.db.View(func(tx *bolt.Tx) error {
			cache := dnCache{}
			for _, id := range order[start:min(len(order), start+chunk)] {
				if tx.Bucket(bucketID2Entry).Get(idKey(id)) == nil {
					continue // deleted meanwhile
				}
				e, err := s.loadEntry(tx, id, cache)
				if err != nil {
					return err
				}
				entries = append(entries, e)
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		for _, e := range entries {
			if e.get(attrByCanonical["member"]) != nil {
				groups = append(groups, e)
				continue
			}
			if err := s.writeEntry(w, e, opts, &res); err != nil {
				return res, err
			}
		}
	}
	for _, e := range orderGroups(groups) {
		if err := s.writeEntry(w, e, opts, &res); err != nil {
			return res, err
		}
	}
	return res, w.Flush()
}

// orderGroups puts groups after the groups they contain (a cycle, which
// the directory allows, is written as it comes).
func orderGroups(groups []*Entry) []*Entry {
	pending := map[string]*Entry{}
	for _, g := range groups {
		pending[MustNorm(g.DN)] = g
	}
	var out []*Entry
	for len(pending) > 0 {
		progress := false
		for _, g := range groups {
			n := MustNorm(g.DN)
			if pending[n] == nil {
				continue
			}
			ready := true
			for _, m := range g.Strings("member") {
				if mn := MustNorm(m); mn != n && pending[mn] != nil {
					ready = false
					break
				}
			}
			if ready {
				out = append(out, g)
				delete(pending, n)
				progress = true
			}
		}
		if !progress {
			for _, g := range groups {
				if pending[MustNorm(g.DN)] != nil {
					out = append(out, g)
				}
			}
			break
		}
	}
	return out
}

func (s *Store) writeEntry(w *ldif.Writer, e *Entry, opts ExportOptions, res *ExportResult) error {
	var attrs []ldif.Attr
	if opts.Profile == "openldap" {
		var ok bool
		if attrs, ok = openLDAPAttrs(e, opts); !ok {
			res.Skipped = append(res.Skipped, e.DN)
			return nil
		}
	} else {
		for _, a := range e.Attrs {
			name := a.typ.Name()
			if exportSkip[name] || a.typ.virtual || name == "userPassword" && !opts.Passwords || len(a.Values) == 0 {
				continue
			}
			attrs = append(attrs, ldif.Attr{Name: a.typ.wireName(), Values: a.Values})
		}
	}
	res.Entries++
	return w.WriteEntry(e.DN, attrs)
}

// openLDAPAttrs maps an entry to OpenLDAP's standard schema; false: it
// has no counterpart there.
func openLDAPAttrs(e *Entry, opts ExportOptions) ([]ldif.Attr, bool) {
	oc := e.get(attrByCanonical["objectClass"])
	is := func(c string) bool { return oc != nil && oc.hasValue([]byte(c)) }
	var classes []string
	allowed := func(string) bool { return true }
	switch {
	case is("user"):
		classes = []string{"top", "person", "organizationalPerson", "inetOrgPerson"}
		if e.get(attrByCanonical["userPrincipalName"]) != nil {
			classes = append(classes, "upnPrincipal")
		}
	case is("group") || is("groupOfNames"):
		if e.get(attrByCanonical["member"]) == nil {
			return nil, false
		}
		classes = []string{"top", "groupOfNames"}
		groupOK := map[string]bool{"cn": true, "member": true, "description": true, "o": true, "ou": true, "seeAlso": true}
		allowed = func(n string) bool { return groupOK[n] }
	default:
		for _, v := range oc.Values {
			classes = append(classes, string(v))
		}
	}
	out := []ldif.Attr{{Name: "objectClass", Values: stringsToBytes(classes)}}
	for _, a := range e.Attrs {
		name := a.typ.Name()
		if name == "objectClass" || exportSkip[name] || openLDAPSkip[name] || a.typ.virtual || !allowed(name) ||
			name == "userPassword" && !opts.Passwords || len(a.Values) == 0 {
			continue
		}
		out = append(out, ldif.Attr{Name: a.typ.wireName(), Values: a.Values})
	}
	if is("user") && e.get(attrByCanonical["sn"]) == nil {
		// person needs sn in OpenLDAP's schema.
		if cn := e.get(attrByCanonical["cn"]); cn != nil {
			out = append(out, ldif.Attr{Name: "sn", Values: cn.Values[:1]})
		}
	}
	return out, true
}

func stringsToBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}
