package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Service accounts, as Active Directory keeps them: a service is found by
// a servicePrincipalName value on an account entry (a user-class entry
// under ou=people), and the account holds the service's Kerberos
// long-term keys. The keys come sealed by the KDC (scstationKerberosKeys;
// this package never sees them in the clear) and never leave the store
// over LDAP, as userPassword does not.
//
// SPNs are matched case-insensitively, as AD does (servicePrincipalName
// has caseIgnoreMatch there and here); MIT compares principal names
// exactly. An SPN names at most one account.

// userAccountControl flags (MS-ADTS 2.2.16).
const (
	// UACAccountDisable is ACCOUNTDISABLE: the KDC refuses the account.
	UACAccountDisable = 0x0002
	// UACNormalAccount is NORMAL_ACCOUNT, the flag every user has.
	UACNormalAccount = 0x0200
)

// ErrNoSuchService: no account has the servicePrincipalName.
var ErrNoSuchService = errors.New("directory: no account has this servicePrincipalName")

// ServiceAccount is an account with servicePrincipalNames.
type ServiceAccount struct {
	DN   string
	Name string // login name (sAMAccountName, uid)
	SPNs []string
	// Disabled says userAccountControl has ACCOUNTDISABLE.
	Disabled bool
	// Keys are the sealed Kerberos keys (nil: none).
	Keys []byte
}

func accountDisabled(uac string) bool {
	v, err := strconv.ParseInt(uac, 10, 64)
	return err == nil && v&UACAccountDisable != 0
}

func entryService(e *Entry) *ServiceAccount {
	a := &ServiceAccount{DN: e.DN, Name: e.Value("sAMAccountName"), SPNs: e.Strings("servicePrincipalName"),
		Disabled: accountDisabled(e.Value("userAccountControl"))}
	if a.Name == "" {
		a.Name = e.Value("uid")
	}
	if k := e.Get("scstationKerberosKeys"); k != nil && len(k.Values) > 0 {
		a.Keys = slices.Clone(k.Values[0])
	}
	return a
}

// ValidateSPN checks a service principal name without realm:
// service/host[/more], no '@', no empty component, printable ASCII.
func ValidateSPN(spn string) error {
	parts := strings.Split(spn, "/")
	if len(spn) > 256 || len(parts) < 2 || strings.ContainsAny(spn, "@\\ ") {
		return &Error{Code: ResultInvalidAttributeSyntax, Message: fmt.Sprintf("service principal name %q is not of the form service/host", spn)}
	}
	for _, p := range parts {
		if p == "" {
			return &Error{Code: ResultInvalidAttributeSyntax, Message: fmt.Sprintf("service principal name %q has an empty component", spn)}
		}
	}
	for _, c := range []byte(spn) {
		if c <= 0x20 || c >= 0x7f {
			return &Error{Code: ResultInvalidAttributeSyntax, Message: fmt.Sprintf("service principal name %q is not printable ASCII", spn)}
		}
	}
	if strings.EqualFold(parts[0], "krbtgt") {
		return &Error{Code: ResultUnwillingToPerform, Message: "krbtgt principals are the KDC's own"}
	}
	return nil
}

// spnEntries returns the entries whose servicePrincipalName equals spn.
func (s *Store) spnEntries(tx *bolt.Tx, spn string) ([]*Entry, error) {
	t := attrByCanonical["servicePrincipalName"]
	n, ok := t.normalize([]byte(spn))
	if !ok {
		return nil, nil
	}
	var out []*Entry
	for _, id := range lookupEq(tx, t, n) {
		e, err := s.loadEntry(tx, id, nil)
		if err != nil {
			return nil, err
		}
		if a := e.get(t); a != nil && a.hasValue([]byte(spn)) {
			out = append(out, e)
		}
	}
	return out, nil
}

// ServiceBySPN finds the account with servicePrincipalName spn
// (case-insensitive). None is ErrNoSuchService, more than one
// ErrAmbiguous.
func (s *Store) ServiceBySPN(ctx context.Context, spn string) (*ServiceAccount, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if ValidateSPN(spn) != nil {
		return nil, &Error{Code: ResultNoSuchObject, Message: "no service " + spn, Err: ErrNoSuchService}
	}
	var out *ServiceAccount
	err := s.db.View(func(tx *bolt.Tx) error {
		es, err := s.spnEntries(tx, spn)
		switch {
		case err != nil:
			return err
		case len(es) == 0:
			return &Error{Code: ResultNoSuchObject, Message: "no service " + spn, Err: ErrNoSuchService}
		case len(es) > 1:
			return &Error{Code: ResultConstraintViolation, Message: "servicePrincipalName " + spn + " is on more than one account", Err: ErrAmbiguous}
		}
		out = entryService(es[0])
		return nil
	})
	return out, err
}

// ServiceAccounts lists every account with a servicePrincipalName, by
// login name.
func (s *Store) ServiceAccounts(ctx context.Context) ([]*ServiceAccount, error) {
	var out []*ServiceAccount
	_, err := s.Search(ctx, SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub, Filter: Present("servicePrincipalName")}, func(e *Entry) error {
		out = append(out, entryService(e))
		return nil
	})
	slices.SortFunc(out, func(a, b *ServiceAccount) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return out, err
}

// SetServiceKeys gives the account named account (a login name) the
// servicePrincipalName spn and new sealed keys, in one transaction.
// seal gets the account's login name as stored (the name the keys are
// bound to) and its current sealed keys (nil: none), and returns the new
// ones. A missing account is created as a service account (a
// user-class entry uid=account under ou=people, userAccountControl
// NORMAL_ACCOUNT, no UPN). An SPN already on another account is refused
// (ErrAmbiguous), and so is an account that is a group.
func (s *Store) SetServiceKeys(account, spn string, seal func(name string, old []byte) ([]byte, error)) (*ServiceAccount, error) {
	if err := ValidateSPN(spn); err != nil {
		return nil, err
	}
	if err := validateName("account name", account, false); err != nil {
		return nil, err
	}
	var out *ServiceAccount
	err := s.update("", true, func(w *writer) error {
		e, err := s.findPrincipal(w.tx, account, "user")
		if err != nil {
			return err
		}
		if e == nil {
			if g, err := s.findPrincipal(w.tx, account, "group"); err != nil || g != nil {
				if err == nil {
					err = &Error{Code: ResultEntryAlreadyExists, Message: account + " is a group", Err: ErrGroupExists}
				}
				return err
			}
		}
		others, err := s.spnEntries(w.tx, spn)
		if err != nil {
			return err
		}
		for _, o := range others {
			if e == nil || o.DN != e.DN {
				return &Error{Code: ResultConstraintViolation, Message: fmt.Sprintf("servicePrincipalName %s is already on %s", spn, o.DN), Err: ErrAmbiguous}
			}
		}
		var old []byte
		name := account
		if e != nil {
			cur := entryService(e)
			old, name = cur.Keys, cur.Name
		}
		sealed, err := seal(name, old)
		if err != nil {
			return err
		}
		keys := Attribute{Name: "scstationKerberosKeys", Values: [][]byte{sealed}}
		if e == nil {
			e, err = w.add(&Entry{DN: "uid=" + escapeDNValue(account) + "," + s.people.String(), Attrs: []Attribute{
				{Name: "objectClass", Values: [][]byte{[]byte("top"), []byte("person"), []byte("organizationalPerson"), []byte("user")}},
				{Name: "cn", Values: str(account)},
				{Name: "sAMAccountName", Values: str(account)},
				{Name: "servicePrincipalName", Values: str(spn)},
				{Name: "userAccountControl", Values: str(strconv.Itoa(UACNormalAccount))},
				{Name: "description", Values: str("Service account")},
				keys,
			}})
			if err != nil {
				return err
			}
			out = entryService(e)
			return nil
		}
		mods := []Modification{{Op: ModReplace, Attr: keys}}
		if a := e.Get("servicePrincipalName"); a == nil || !a.hasValue([]byte(spn)) {
			mods = append(mods, Modification{Op: ModAdd, Attr: Attribute{Name: "servicePrincipalName", Values: str(spn)}})
		}
		if e, err = w.modify(e.DN, mods); err != nil {
			return err
		}
		out = entryService(e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetUserDisabled sets or clears ACCOUNTDISABLE in a user's (or service
// account's) userAccountControl, keeping its other flags.
func (s *Store) SetUserDisabled(name string, disabled bool) error {
	return s.update("", true, func(w *writer) error {
		e, err := s.userEntryByName(w.tx, name)
		if err != nil {
			return err
		}
		uac := int64(UACNormalAccount)
		if v := e.Value("userAccountControl"); v != "" {
			if uac, err = strconv.ParseInt(v, 10, 64); err != nil {
				return &Error{Code: ResultInvalidAttributeSyntax, Message: fmt.Sprintf("userAccountControl of %s is not a number", e.DN)}
			}
		}
		if disabled {
			uac |= UACAccountDisable
		} else {
			uac &^= UACAccountDisable
		}
		_, err = w.modify(e.DN, []Modification{{Op: ModReplace, Attr: Attribute{Name: "userAccountControl", Values: str(strconv.FormatInt(uac, 10))}}})
		return err
	})
}
