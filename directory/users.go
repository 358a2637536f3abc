package directory

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"

	bolt "go.etcd.io/bbolt"
)

// The typed API the station uses. Users live at uid=NAME,ou=people and
// groups at cn=NAME,ou=groups under the base DN. Lookups by name go
// through the indexes with values carried as octets, never through filter
// strings, so a name cannot change what is searched for.

// User is a person, as the station sees one.
type User struct {
	DN          string
	Name        string // login name: sAMAccountName and uid (the RDN)
	UPN         string // userPrincipalName, unique, case-insensitive
	Mail        string
	DisplayName string
	GivenName   string
	Surname     string
	SID         string // objectSid, text form; assigned at creation
	GUID        string // objectGUID, Windows text form; assigned at creation
	Created     time.Time
	// Certificates holds the DER of every certificate published to the
	// entry (userCertificate;binary).
	Certificates [][]byte
	// Groups are the DNs of the groups the user is a direct member of.
	Groups []string
	// AltSecurityIdentities are the explicit certificate mappings
	// (X509:<I>issuer<SR>serial, X509:<SKI>hex, ...).
	AltSecurityIdentities []string
	// HasPassword says the entry has a userPassword (the embedded store
	// only; an LDAP client cannot see it).
	HasPassword bool
	// Disabled says userAccountControl has ACCOUNTDISABLE (0x2): the
	// KDC refuses the account (SetUserDisabled).
	Disabled bool
}

// Group is a group of users (and groups).
type Group struct {
	DN          string
	Name        string
	Description string
	SID         string
	GUID        string
	Members     []string // DNs
}

const maxNameLen = 64

// ValidateUser checks the attributes a caller may set.
func ValidateUser(u *User) error {
	if err := validateName("login name", u.Name, false); err != nil {
		return err
	}
	local, domain, ok := strings.Cut(u.UPN, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(u.UPN, " \t\r\n/\\*()\x00") || strings.Count(u.UPN, "@") != 1 || len(u.UPN) > 256 {
		return &Error{Code: ResultInvalidAttributeSyntax, Message: fmt.Sprintf("userPrincipalName %q is not of the form user@domain", u.UPN)}
	}
	if u.Mail != "" {
		a, err := mail.ParseAddress(u.Mail)
		if err != nil || a.Address != u.Mail || len(u.Mail) > 256 {
			return &Error{Code: ResultInvalidAttributeSyntax, Message: fmt.Sprintf("mail %q is not a plain address", u.Mail)}
		}
		for _, c := range []byte(u.Mail) {
			if c >= 0x80 {
				return &Error{Code: ResultInvalidAttributeSyntax, Message: fmt.Sprintf("mail %q is not ASCII", u.Mail)}
			}
		}
	}
	for _, f := range []struct{ name, v string }{{"displayName", u.DisplayName}, {"givenName", u.GivenName}, {"sn", u.Surname}} {
		if strings.ContainsFunc(f.v, unicode.IsControl) || len(f.v) > 256 {
			return &Error{Code: ResultInvalidAttributeSyntax, Message: fmt.Sprintf("%s may not contain control characters or exceed 256 bytes", f.name)}
		}
	}
	return nil
}

func validateName(what, name string, spaces bool) error {
	if name == "" || len(name) > maxNameLen {
		return &Error{Code: ResultInvalidAttributeSyntax, Message: fmt.Sprintf("a %s has 1 to %d characters", what, maxNameLen)}
	}
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-", r) || spaces && r == ' ') {
			extra := ""
			if spaces {
				extra = ", spaces"
			}
			return &Error{Code: ResultInvalidAttributeSyntax, Message: fmt.Sprintf("%s %q may hold only letters, digits%s, '.', '_' and '-'", what, name, extra)}
		}
	}
	if spaces && strings.TrimSpace(name) != name {
		return &Error{Code: ResultInvalidAttributeSyntax, Message: fmt.Sprintf("%s %q starts or ends with a space", what, name)}
	}
	return nil
}

func str(v string) [][]byte {
	if v == "" {
		return nil
	}
	return [][]byte{[]byte(v)}
}

func userEntry(base DN, u *User) *Entry {
	cn := u.DisplayName
	if cn == "" {
		cn = u.Name
	}
	attrs := []Attribute{
		{Name: "objectClass", Values: [][]byte{[]byte("top"), []byte("person"), []byte("organizationalPerson"), []byte("user"), []byte("inetOrgPerson")}},
		{Name: "cn", Values: str(cn)},
		{Name: "uid", Values: str(u.Name)},
		{Name: "sAMAccountName", Values: str(u.Name)},
		{Name: "userPrincipalName", Values: str(u.UPN)},
	}
	for _, a := range []Attribute{{Name: "mail", Values: str(u.Mail)}, {Name: "displayName", Values: str(u.DisplayName)}, {Name: "givenName", Values: str(u.GivenName)}, {Name: "sn", Values: str(u.Surname)}} {
		if a.Values != nil {
			attrs = append(attrs, a)
		}
	}
	return &Entry{DN: "uid=" + escapeDNValue(u.Name) + "," + base.String(), Attrs: attrs}
}

func entryUser(e *Entry) *User {
	u := &User{
		DN: e.DN, Name: e.Value("sAMAccountName"), UPN: e.Value("userPrincipalName"), Mail: e.Value("mail"),
		DisplayName: e.Value("displayName"), GivenName: e.Value("givenName"), Surname: e.Value("sn"),
		Groups: e.Strings("memberOf"), HasPassword: e.Get("userPassword") != nil,
		AltSecurityIdentities: e.Strings("altSecurityIdentities"),
	}
	if u.Name == "" {
		u.Name = e.Value("uid")
	}
	u.Disabled = accountDisabled(e.Value("userAccountControl"))
	if sid := e.Get("objectSid"); sid != nil && len(sid.Values) > 0 {
		u.SID, _ = SIDString(sid.Values[0])
	}
	if g := e.Get("objectGUID"); g != nil && len(g.Values) > 0 {
		u.GUID = GUIDString(g.Values[0])
	}
	if t, err := parseGeneralizedTime(e.Value("createTimestamp")); err == nil {
		u.Created = t
	}
	if c := e.Get("userCertificate"); c != nil {
		u.Certificates = c.Values
	}
	return u
}

// AddUser creates a user, assigning objectSid and objectGUID. The login name
// and the UPN must both be unused.
func (s *Store) AddUser(u User) (*User, error) { return s.CreateUser(u, nil) }

// CreateUser is AddUser with an initial password (nil: none), in one
// transaction: a password the policy refuses leaves no user behind.
func (s *Store) CreateUser(u User, password []byte) (*User, error) {
	var out *User
	err := s.update("", true, func(w *writer) (err error) {
		out, err = w.createUser(u, password)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (w *writer) createUser(u User, password []byte) (*User, error) {
	if err := ValidateUser(&u); err != nil {
		return nil, err
	}
	e := userEntry(w.s.people, &u)
	if password != nil {
		h, err := HashPassword(password)
		if err != nil {
			return nil, err
		}
		e.Attrs = append(e.Attrs, Attribute{Name: "userPassword", Values: [][]byte{h}})
	}
	out, err := w.add(e)
	if errors.Is(err, ErrEntryExists) {
		return nil, &Error{Code: ResultEntryAlreadyExists, Message: "user already exists: " + u.Name, Err: ErrUserExists}
	}
	if err != nil {
		return nil, err
	}
	return entryUser(out), nil
}

// findPrincipal finds a user (or, with group, a group) by login name,
// UPN, or DN.
func (s *Store) findPrincipal(tx *bolt.Tx, name, class string) (*Entry, error) {
	if name == "" || len(name) > maxDNLen {
		return nil, nil
	}
	isClass := func(e *Entry) bool {
		oc := e.get(attrByCanonical["objectClass"])
		return oc != nil && oc.hasValue([]byte(class))
	}
	if strings.Contains(name, "=") {
		if d, err := ParseDN(name); err == nil {
			if id, err := s.resolveID(tx, d); err == nil {
				e, err := s.loadEntry(tx, id, nil)
				if err != nil || !isClass(e) {
					return nil, err
				}
				return e, nil
			}
		}
		return nil, nil
	}
	attrs := []string{"sAMAccountName", "uid", "cn"}
	if strings.Contains(name, "@") {
		attrs = []string{"userPrincipalName"}
	}
	for _, a := range attrs {
		t := attrByCanonical[a]
		n, ok := t.normalize([]byte(name))
		if !ok {
			return nil, nil
		}
		var found *Entry
		for _, id := range lookupEq(tx, t, n) {
			e, err := s.loadEntry(tx, id, nil)
			if err != nil {
				return nil, err
			}
			if at := e.get(t); at != nil && at.hasValue([]byte(name)) && isClass(e) {
				if found != nil {
					return nil, &Error{Code: ResultConstraintViolation, Message: fmt.Sprintf("%s=%s names more than one entry", a, name), Err: ErrAmbiguous}
				}
				found = e
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, nil
}

func (s *Store) userEntryByName(tx *bolt.Tx, name string) (*Entry, error) {
	e, err := s.findPrincipal(tx, name, "user")
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, &Error{Code: ResultNoSuchObject, Message: "no such user: " + name, Err: ErrNoSuchUser}
	}
	return e, nil
}

// User finds a user by login name, UPN or DN, case-insensitively.
func (s *Store) User(name string) (*User, error) {
	var u *User
	err := s.db.View(func(tx *bolt.Tx) error {
		e, err := s.userEntryByName(tx, name)
		if err != nil {
			return err
		}
		u = entryUser(e)
		return nil
	})
	return u, err
}

// Users lists every user, by login name.
func (s *Store) Users() ([]*User, error) {
	var out []*User
	_, err := s.Search(context.Background(), SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub, Filter: Eq("objectClass", "user")}, func(e *Entry) error {
		out = append(out, entryUser(e))
		return nil
	})
	slices.SortFunc(out, func(a, b *User) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out, err
}

// findUsersAttrs are the attributes FindUsers matches the prefix against.
var findUsersAttrs = []string{"uid", "cn", "displayName", "givenName", "sn", "mail", "userPrincipalName", "sAMAccountName"}

// FindUsers returns up to limit users whose login name, UPN, mail or names
// start with prefix (search as you type), in the order of the names that
// matched; limit ≤ 0: all of them.
func (s *Store) FindUsers(ctx context.Context, prefix string, limit int) ([]*User, error) {
	var any []*Filter
	for _, a := range findUsersAttrs {
		any = append(any, Prefix(a, prefix))
	}
	f := And(Eq("objectClass", "user"), Or(any...))
	if limit > 0 {
		if out, ok, err := s.findUsersByPrefix(ctx, prefix, any, f, limit); ok {
			return out, err
		}
	}
	var out []*User
	_, err := s.Search(ctx, SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub, Filter: f, Limit: limit}, func(e *Entry) error {
		out = append(out, entryUser(e))
		return nil
	})
	return out, err
}

// findUsersByPrefix is FindUsers with a limit, kept fast over any number
// of users: it walks the prefix's ranges of the name indexes in name order
// and tests each entry found against f (objectClass=user among others),
// stopping at the limit, rather than intersecting every user with every
// match. ok is false when the indexes cannot answer.
func (s *Store) findUsersByPrefix(ctx context.Context, prefix string, prefixes []*Filter, f *Filter, limit int) (out []*User, ok bool, err error) {
	var types []*AttributeType
	for _, p := range prefixes {
		if !p.known || p.desc.binary {
			return nil, false, nil
		}
		types = append(types, p.desc.typ)
	}
	if err := ctx.Err(); err != nil {
		return nil, true, ctxError(err)
	}
	req := SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub, Filter: f}
	gen := s.dnGen.Load() // before the transaction: see cacheParentDN
	err = s.db.View(func(tx *bolt.Tx) error {
		ids, iok := prefixIDs(tx, types, []byte(prefix))
		if !iok {
			return nil
		}
		ok = true
		// The objectClass index holds every class of an entry (superclasses
		// stored, as in AD), so an ID missing there is not a user: skip it
		// without loading the entry (groups and computers named alike).
		oc := f.Sub[0].desc.typ
		ocNorm, _ := oc.normalize(f.Sub[0].Value)
		ocIdx := tx.Bucket(bucketIndex).Bucket([]byte(oc.Name()))
		ocVal := indexValue(oc, ocNorm)
		isUser := func(id uint64) bool { return ocIdx == nil || ocIdx.Get(indexKey(ocVal, id)) != nil }
		seen := map[uint64]bool{}
		var batch []uint64
		// test evaluates the batch in order, keeping the first matches.
		test := func() error {
			m, err := s.evalChunk(tx, batch, s.baseID, req, f, gen)
			batch = batch[:0]
			for _, e := range m {
				if len(out) < limit {
					out = append(out, entryUser(e))
				}
			}
			return err
		}
		for id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			if !isUser(id) {
				continue
			}
			batch = append(batch, id)
			if len(out)+len(batch) < limit && len(batch) < searchChunk {
				continue
			}
			if err := test(); err != nil {
				return err
			}
			if len(out) >= limit {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return ctxError(err)
			}
		}
		return test()
	})
	if !ok {
		return nil, false, err
	}
	return out, true, err
}

// DeleteUser removes a user entry (and its group memberships).
func (s *Store) DeleteUser(name string) error {
	return s.update("", true, func(w *writer) error {
		e, err := s.userEntryByName(w.tx, name)
		if err != nil {
			return err
		}
		return w.delete(e.DN)
	})
}

// AddCertificate publishes a certificate (DER) to a user's entry; adding the
// same certificate twice is a no-op.
func (s *Store) AddCertificate(name string, der []byte) error {
	return s.update("", true, func(w *writer) error {
		e, err := s.userEntryByName(w.tx, name)
		if err != nil {
			return err
		}
		if a := e.Get("userCertificate"); a != nil && a.hasValue(der) {
			return nil
		}
		_, err = w.modify(e.DN, []Modification{{Op: ModAdd, Attr: Attribute{Name: "userCertificate", Values: [][]byte{der}}}})
		return err
	})
}

// SetPassword sets a user's password; it must meet the policy
// (MinPasswordLength).
func (s *Store) SetPassword(name string, password []byte) error {
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	return s.update("", true, func(w *writer) error {
		e, err := s.userEntryByName(w.tx, name)
		if err != nil {
			return err
		}
		_, err = w.modify(e.DN, []Modification{{Op: ModReplace, Attr: Attribute{Name: "userPassword", Values: [][]byte{h}}}})
		return err
	})
}

// ---- groups --------------------------------------------------------------------

func entryGroup(e *Entry) *Group {
	g := &Group{DN: e.DN, Name: e.Value("cn"), Description: e.Value("description"), Members: e.Strings("member")}
	if sid := e.Get("objectSid"); sid != nil && len(sid.Values) > 0 {
		g.SID, _ = SIDString(sid.Values[0])
	}
	if v := e.Get("objectGUID"); v != nil && len(v.Values) > 0 {
		g.GUID = GUIDString(v.Values[0])
	}
	return g
}

func (s *Store) groupEntryByName(tx *bolt.Tx, name string) (*Entry, error) {
	e, err := s.findPrincipal(tx, name, "group")
	if err == nil && e == nil {
		e, err = s.findPrincipal(tx, name, "groupOfNames")
	}
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, &Error{Code: ResultNoSuchObject, Message: "no such group: " + name, Err: ErrNoSuchGroup}
	}
	return e, nil
}

// AddGroup creates an empty group with an objectSid.
func (s *Store) AddGroup(name, description string) (*Group, error) {
	var out *Group
	err := s.update("", true, func(w *writer) (err error) {
		out, err = w.addGroup(name, description)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// addGroup makes a group with its first members (login names or DNs)
// in the one entry, which is much faster than adding them one by one.
func (w *writer) addGroup(name, description string, members ...string) (*Group, error) {
	if err := validateName("group name", name, true); err != nil {
		return nil, err
	}
	attrs := []Attribute{
		{Name: "objectClass", Values: [][]byte{[]byte("group")}},
		{Name: "sAMAccountName", Values: str(name)},
	}
	if description != "" {
		attrs = append(attrs, Attribute{Name: "description", Values: str(description)})
	}
	if len(members) > 0 {
		dns := make([][]byte, len(members))
		for i, m := range members {
			dn, err := w.s.memberDN(w.tx, m)
			if err != nil {
				return nil, err
			}
			dns[i] = []byte(dn)
		}
		attrs = append(attrs, Attribute{Name: "member", Values: dns})
	}
	out, err := w.add(&Entry{DN: "cn=" + escapeDNValue(name) + "," + w.s.GroupsDN(), Attrs: attrs})
	if errors.Is(err, ErrEntryExists) || errors.Is(err, ErrUserExists) {
		return nil, &Error{Code: ResultEntryAlreadyExists, Message: "group or account already exists: " + name, Err: ErrGroupExists}
	}
	if err != nil {
		return nil, err
	}
	return entryGroup(out), nil
}

// Group finds a group by name or DN.
func (s *Store) Group(name string) (*Group, error) {
	var g *Group
	err := s.db.View(func(tx *bolt.Tx) error {
		e, err := s.groupEntryByName(tx, name)
		if err != nil {
			return err
		}
		g = entryGroup(e)
		return nil
	})
	return g, err
}

// Groups lists every group.
func (s *Store) Groups() ([]*Group, error) {
	var out []*Group
	_, err := s.Search(context.Background(), SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub, Filter: Or(Eq("objectClass", "group"), Eq("objectClass", "groupOfNames"))}, func(e *Entry) error {
		out = append(out, entryGroup(e))
		return nil
	})
	return out, err
}

// DeleteGroup removes a group; its members lose the memberOf value.
func (s *Store) DeleteGroup(name string) error {
	return s.update("", true, func(w *writer) error {
		e, err := s.groupEntryByName(w.tx, name)
		if err != nil {
			return err
		}
		return w.delete(e.DN)
	})
}

// memberDN finds a user, else a group, by name.
func (s *Store) memberDN(tx *bolt.Tx, name string) (string, error) {
	e, err := s.findPrincipal(tx, name, "user")
	if err == nil && e == nil {
		e, err = s.findPrincipal(tx, name, "group")
	}
	if err != nil {
		return "", err
	}
	if e == nil {
		return "", &Error{Code: ResultNoSuchObject, Message: "no such user or group: " + name, Err: ErrNoSuchUser}
	}
	return e.DN, nil
}

// AddMember makes a user (or group) a member of a group; already being one
// is not an error.
func (s *Store) AddMember(group, member string) error {
	return s.update("", true, func(w *writer) error { return w.addMember(group, member) })
}

func (w *writer) addMember(group, member string) error {
	g, err := w.s.groupEntryByName(w.tx, group)
	if err != nil {
		return err
	}
	m, err := w.s.memberDN(w.tx, member)
	if err != nil {
		return err
	}
	if a := g.Get("member"); a != nil && a.hasValue([]byte(m)) {
		return nil
	}
	_, err = w.modify(g.DN, []Modification{{Op: ModAdd, Attr: Attribute{Name: "member", Values: [][]byte{[]byte(m)}}}})
	return err
}

// RemoveMember takes a member out of a group.
func (s *Store) RemoveMember(group, member string) error {
	return s.update("", true, func(w *writer) error {
		g, err := s.groupEntryByName(w.tx, group)
		if err != nil {
			return err
		}
		m, err := s.memberDN(w.tx, member)
		if err != nil {
			return err
		}
		if a := g.Get("member"); a == nil || !a.hasValue([]byte(m)) {
			return &Error{Code: ResultNoSuchAttribute, Message: fmt.Sprintf("%s is not a member of %s", member, group), Err: ErrNotMember}
		}
		_, err = w.modify(g.DN, []Modification{{Op: ModDelete, Attr: Attribute{Name: "member", Values: [][]byte{[]byte(m)}}}})
		return err
	})
}

// IsAdmin reports whether the entry named dn is a member of the admin
// group, directly or through nested groups.
func (s *Store) IsAdmin(dn string) bool {
	d, err := ParseDN(dn)
	if err != nil || len(d) == 0 {
		return false
	}
	admins := s.admins.Norm()
	ok := false
	s.db.View(func(tx *bolt.Tx) error {
		id, err := s.resolveID(tx, d)
		if err != nil {
			return nil
		}
		e, err := s.loadEntry(tx, id, nil)
		if err != nil {
			return nil
		}
		env := &evalEnv{lookup: func(norm string) *Entry { return s.entryByNormDN(tx, norm, nil) }}
		ok = inChain(e, attrByCanonical["memberOf"], admins, env) == triTrue
		return nil
	})
	return ok
}

// ---- migration from the first layout ---------------------------------------------

// migrate moves users from the first store layout (JSON by login name)
// into entries, keeping their SIDs, GUIDs and certificates.
func (s *Store) migrate(tx *bolt.Tx, w *writer) error {
	old := tx.Bucket(bucketOldUsers)
	if old == nil {
		return nil
	}
	type oldUser struct {
		Name         string    `json:"name"`
		UPN          string    `json:"upn"`
		Mail         string    `json:"mail"`
		DisplayName  string    `json:"displayName"`
		SID          string    `json:"objectSid"`
		GUID         string    `json:"objectGUID"`
		Created      time.Time `json:"created"`
		Certificates [][]byte  `json:"userCertificate"`
	}
	err := old.ForEach(func(k, v []byte) error {
		var ou oldUser
		if err := json.Unmarshal(v, &ou); err != nil {
			return fmt.Errorf("directory: migrating user %s: %w", k, err)
		}
		e := userEntry(s.people, &User{Name: ou.Name, UPN: ou.UPN, Mail: ou.Mail, DisplayName: ou.DisplayName})
		if sid, err := ParseSID(ou.SID); err == nil {
			e.Attrs = append(e.Attrs, Attribute{Name: "objectSid", Values: [][]byte{sid}})
		}
		if g, err := hex.DecodeString(strings.ReplaceAll(ou.GUID, "-", "")); err == nil && len(g) == 16 {
			e.Attrs = append(e.Attrs, Attribute{Name: "objectGUID", Values: [][]byte{g}})
		}
		if !ou.Created.IsZero() {
			e.Attrs = append(e.Attrs, Attribute{Name: "createTimestamp", Values: [][]byte{[]byte(formatGeneralizedTime(ou.Created))}})
		}
		if len(ou.Certificates) > 0 {
			e.Attrs = append(e.Attrs, Attribute{Name: "userCertificate", Values: ou.Certificates})
		}
		if _, err := w.add(e); err != nil {
			return fmt.Errorf("directory: migrating user %s: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tx.DeleteBucket(bucketOldUsers); err != nil {
		return err
	}
	if tx.Bucket(bucketOldUPN) != nil {
		return tx.DeleteBucket(bucketOldUPN)
	}
	return nil
}
