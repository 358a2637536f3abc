package directory

import (
	"context"
	"errors"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Directory is the one directory API the CA, the KDC and the station use.
// Two implementations: *Store, the embedded directory in-process, and
// *Client, which speaks LDAP to the embedded server, OpenLDAP or Active
// Directory (client.go). Both return the same sentinel errors
// (ErrNoSuchUser, ErrNoSuchGroup, ErrAmbiguous, ...; errors.Is works) and
// the same result codes (CodeOf).
//
// Names: a user is named by login name (sAMAccountName or uid), by UPN
// (anything with an '@'), or by DN (anything that parses as one with an
// '='); a group by name (cn) or DN. Names are always carried as values:
// never pasted into filter syntax.
type Directory interface {
	// LookupUser finds a user by login name, UPN or DN.
	LookupUser(ctx context.Context, name string) (*User, error)
	// UserByMail finds the user with this mail address; more than one is
	// ErrAmbiguous.
	UserByMail(ctx context.Context, mail string) (*User, error)
	// FindUsers returns up to limit users whose login name, UPN, mail or
	// names start with prefix (search as you type).
	FindUsers(ctx context.Context, prefix string, limit int) ([]*User, error)
	// ListUsers returns every user (paged on the wire), sorted by login
	// name.
	ListUsers(ctx context.Context) ([]*User, error)

	// PublishCertificate adds a certificate (DER) to the user's entry
	// (userCertificate;binary); publishing one twice is not an error.
	PublishCertificate(ctx context.Context, user string, der []byte) error
	// UserCertificates returns the certificates published to a user.
	UserCertificates(ctx context.Context, user string) ([][]byte, error)
	// RemoveCertificate takes one certificate (DER) off the user's entry,
	// as when it is revoked for good; removing one that is not there is
	// not an error.
	RemoveCertificate(ctx context.Context, user string, der []byte) error

	// LookupGroup finds a group by name or DN.
	LookupGroup(ctx context.Context, name string) (*Group, error)
	// ListGroups returns every group, sorted by name.
	ListGroups(ctx context.Context) ([]*Group, error)
	// AddGroupMember makes a user (or group) a member of a group; being
	// one already is not an error.
	AddGroupMember(ctx context.Context, group, member string) error
	// RemoveGroupMember takes a member out of a group; ErrNotMember when
	// it was not one.
	RemoveGroupMember(ctx context.Context, group, member string) error
	// IsMember reports whether member (a user or group name or DN) belongs
	// to group, directly or through nested groups.
	IsMember(ctx context.Context, group, member string) (bool, error)
}

// More sentinel errors of the Directory API.
var (
	// ErrAmbiguous: a name or mail address matches more than one entry.
	ErrAmbiguous = errors.New("directory: the name matches more than one entry")
	// ErrNotMember: RemoveGroupMember for someone who is not a member.
	ErrNotMember = errors.New("directory: not a member of the group")
	// ErrReferral: an external directory referred the client elsewhere;
	// referrals are reported, never followed (see ReferralError).
	ErrReferral = errors.New("directory: referral")
)

var _ Directory = (*Store)(nil)

// ---- *Store as a Directory ------------------------------------------------------

func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return ctxError(err)
	}
	return nil
}

// LookupUser is User with a context (Directory).
func (s *Store) LookupUser(ctx context.Context, name string) (*User, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	return s.User(name)
}

// UserByMail finds the user whose mail is mail (Directory).
func (s *Store) UserByMail(ctx context.Context, mail string) (*User, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	var out []*User
	_, err := s.Search(ctx, SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub, Filter: And(Eq("objectClass", "user"), Eq("mail", mail)), Limit: 2}, func(e *Entry) error {
		out = append(out, entryUser(e))
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch len(out) {
	case 0:
		return nil, &Error{Code: ResultNoSuchObject, Message: "no user with mail " + mail, Err: ErrNoSuchUser}
	case 1:
		return out[0], nil
	}
	return nil, &Error{Code: ResultConstraintViolation, Message: "more than one user has mail " + mail, Err: ErrAmbiguous}
}

// ListUsers is Users with a context (Directory).
func (s *Store) ListUsers(ctx context.Context) ([]*User, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	return s.Users()
}

// PublishCertificate is AddCertificate with a context (Directory).
func (s *Store) PublishCertificate(ctx context.Context, user string, der []byte) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	return s.AddCertificate(user, der)
}

// UserCertificates returns the certificates published to a user.
func (s *Store) UserCertificates(ctx context.Context, user string) ([][]byte, error) {
	u, err := s.LookupUser(ctx, user)
	if err != nil {
		return nil, err
	}
	return u.Certificates, nil
}

// LookupGroup is Group with a context (Directory).
func (s *Store) LookupGroup(ctx context.Context, name string) (*Group, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	return s.Group(name)
}

// ListGroups is Groups with a context, sorted by name (Directory).
func (s *Store) ListGroups(ctx context.Context) ([]*Group, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	gs, err := s.Groups()
	sortGroups(gs)
	return gs, err
}

// AddGroupMember is AddMember with a context (Directory).
func (s *Store) AddGroupMember(ctx context.Context, group, member string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	return s.AddMember(group, member)
}

// RemoveGroupMember is RemoveMember with a context (Directory).
func (s *Store) RemoveGroupMember(ctx context.Context, group, member string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	return s.RemoveMember(group, member)
}

// IsMember reports whether member belongs to group, directly or through
// nested groups (Directory).
func (s *Store) IsMember(ctx context.Context, group, member string) (bool, error) {
	if err := ctxErr(ctx); err != nil {
		return false, err
	}
	ok := false
	err := s.db.View(func(tx *bolt.Tx) error {
		g, err := s.groupEntryByName(tx, group)
		if err != nil {
			return err
		}
		mdn, err := s.memberDN(tx, member)
		if err != nil {
			return err
		}
		md, _ := ParseDN(mdn)
		id, err := s.resolveID(tx, md)
		if err != nil {
			return err
		}
		e, err := s.loadEntry(tx, id, nil)
		if err != nil {
			return err
		}
		env := &evalEnv{lookup: func(norm string) *Entry { return s.entryByNormDN(tx, norm, nil) }}
		ok = inChain(e, attrByCanonical["memberOf"], MustNorm(g.DN), env) == triTrue
		return nil
	})
	return ok, err
}

func sortUsers(us []*User) {
	slices.SortFunc(us, func(a, b *User) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
}

func sortGroups(gs []*Group) {
	slices.SortFunc(gs, func(a, b *Group) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
}
