package directory

import (
	"context"

	"github.com/go-ldap/ldap/v3"
)

// Withdrawing a certificate is the reverse of publishing it: the CA's
// revocation makes it invalid, and taking it off the user's entry keeps
// relying parties (mail clients looking up recipients, certificate
// mapping) from finding it at all.

// RemoveCertificate takes one certificate (DER) off the user's entry
// (Directory); one that is not there is not an error.
func (s *Store) RemoveCertificate(ctx context.Context, user string, der []byte) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if !isCertificateDER(der) {
		return &Error{Code: ResultInvalidAttributeSyntax, Message: "not a DER certificate"}
	}
	return s.update("", true, func(w *writer) error {
		e, err := s.userEntryByName(w.tx, user)
		if err != nil {
			return err
		}
		if a := e.Get("userCertificate"); a == nil || !a.hasValue(der) {
			return nil
		}
		_, err = w.modify(e.DN, []Modification{{Op: ModDelete, Attr: Attribute{Name: "userCertificate", Values: [][]byte{der}}}})
		return err
	})
}

// RemoveCertificate takes one certificate off the user's entry with a
// modify that deletes that one value; one that is not there
// (noSuchAttribute) is not an error.
func (c *Client) RemoveCertificate(ctx context.Context, user string, der []byte) error {
	if !isCertificateDER(der) {
		return &Error{Code: ResultInvalidAttributeSyntax, Message: "not a DER certificate"}
	}
	e, err := c.userEntry(ctx, user, []string{"1.1"})
	if err != nil {
		return err
	}
	req := ldap.NewModifyRequest(e.DN, nil)
	req.Delete(c.attrs.Certificate, []string{string(der)})
	err = c.do(ctx, func(conn *ldap.Conn) error { return conn.Modify(req) })
	if CodeOf(err) == ResultNoSuchAttribute {
		return nil
	}
	return err
}
