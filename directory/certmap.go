package directory

import (
	"crypto/x509"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/scstation/scstation/pki"
)

// CertificateUser finds the user a client certificate belongs to, the way
// the KDC maps logon certificates to accounts:
//
//   - its UPN (the MS otherName SAN) is a user's userPrincipalName;
//   - an id-pkinit-san principal NAME@realm is the user with that login
//     name, or one whose userPrincipalName spells the principal;
//   - a user's altSecurityIdentities names it in a strong form
//     (X509:<I>…<SR>…, X509:<SKI>…, X509:<SHA1-PUKEY>…;
//     pki.MatchAltSecurityIdentity).
//
// Every way that matches must lead to the same user, and a SID extension,
// when the certificate has one, must be that user's objectSid. The
// certificate itself (chain, validity, revocation) is the caller's to
// check. realm is the Kerberos realm of pkinit SANs (empty: the base DN's
// domain in upper case). A certificate that maps to no one is
// ErrNoSuchUser; the returned errors say why, and are *Error with
// invalidCredentials.
func (s *Store) CertificateUser(cert *x509.Certificate, realm string) (*User, error) {
	refuse := func(format string, args ...any) error {
		return &Error{Code: ResultInvalidCredentials, Message: fmt.Sprintf(format, args...)}
	}
	if realm == "" {
		realm = s.realm()
	}
	san, _, err := pki.SubjectAltNamesOf(cert)
	if err != nil {
		return nil, refuse("the certificate's subjectAltName is invalid: %v", err)
	}
	sid, hasSID, err := pki.SIDOf(cert)
	if err != nil {
		return nil, refuse("the certificate's SID extension is invalid: %v", err)
	}
	found := map[uint64]*Entry{}
	err = s.db.View(func(tx *bolt.Tx) error {
		add := func(es []*Entry) {
			for _, e := range es {
				found[e.id] = e
			}
		}
		byAttr := func(attr, value string) ([]*Entry, error) {
			t := attrByCanonical[attr]
			n, ok := t.normalize([]byte(value))
			if !ok {
				return nil, nil
			}
			var out []*Entry
			for _, id := range lookupEq(tx, t, n) {
				e, err := s.loadEntry(tx, id, nil)
				if err != nil {
					return nil, err
				}
				if at := e.get(t); at != nil && isUserEntry(e) && at.hasValue([]byte(value)) {
					out = append(out, e)
				}
			}
			return out, nil
		}
		if san.UPN != "" {
			es, err := byAttr("userPrincipalName", san.UPN)
			if err != nil {
				return err
			}
			add(es)
		}
		for _, p := range san.Principals {
			if strings.EqualFold(p.Realm, realm) && len(p.Components) == 1 {
				for _, a := range []string{"sAMAccountName", "uid"} {
					es, err := byAttr(a, p.Components[0])
					if err != nil {
						return err
					}
					add(es)
				}
			}
			es, err := byAttr("userPrincipalName", strings.Join(p.Components, "/")+"@"+p.Realm)
			if err != nil {
				return err
			}
			add(es)
		}
		// Explicit mappings: every entry that has one is a candidate (the
		// presence index lists them); few accounts do.
		t := attrByCanonical["altSecurityIdentities"]
		ids, _ := scanIndex(tx, t, nil, nil, 0)
		for _, id := range ids {
			e, err := s.loadEntry(tx, id, nil)
			if err != nil {
				return err
			}
			if isUserEntry(e) && pki.MatchAltSecurityIdentity(cert, e.Strings("altSecurityIdentities")) != "" {
				add([]*Entry{e})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch len(found) {
	case 0:
		return nil, &Error{Code: ResultInvalidCredentials, Message: "the certificate maps to no user", Err: ErrNoSuchUser}
	case 1:
	default:
		return nil, &Error{Code: ResultInvalidCredentials, Message: "the certificate maps to more than one user", Err: ErrAmbiguous}
	}
	var u *User
	for _, e := range found {
		u = entryUser(e)
	}
	if hasSID && !strings.EqualFold(sid, u.SID) {
		return nil, refuse("the certificate's SID %s is not the objectSid of %s", sid, u.DN)
	}
	return u, nil
}

func isUserEntry(e *Entry) bool {
	oc := e.get(attrByCanonical["objectClass"])
	return oc != nil && oc.hasValue([]byte("user"))
}

// realm is the base DN's domain in upper case (dc=example,dc=test →
// EXAMPLE.TEST).
func (s *Store) realm() string {
	var labels []string
	for _, r := range s.base {
		for _, a := range r {
			if strings.EqualFold(a.Type.Name(), "dc") {
				labels = append(labels, a.Value)
			}
		}
	}
	return strings.ToUpper(strings.Join(labels, "."))
}
