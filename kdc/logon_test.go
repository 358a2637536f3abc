package kdc_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
)

// TestExplain checks the plain-words reasons for refusals our client
// gets from the KDC, and that other errors are not refusals.
func TestExplain(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{})
	s.AddUser("alice")
	s.AddUser("bob")
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	revCert, revKey := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	if _, err := s.CA.CA.Revoke(revCert.SerialNumber, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, user string
		c          *kdc.Client
		want       string
	}{
		{"revoked", "alice", s.Client(revCert, revKey), "certificate revoked (KDC_ERR_REVOKED_CERTIFICATE, 72)"},
		{"other user", "bob", s.Client(cert, key), "the certificate does not name this user (KDC_ERR_CLIENT_NAME_MISMATCH, 75)"},
		{"unknown user", "carol", s.Client(cert, key), "the KDC does not know this user"},
	} {
		fresh, err := tc.c.Probe(ctx, tc.user, false)
		if err == nil {
			_, err = tc.c.PKINIT(ctx, tc.user, kdc.PKINITOptions{Freshness: fresh})
		}
		if !kdc.Refused(err) || !strings.HasPrefix(kdc.Explain(err), tc.want) {
			t.Errorf("%s: %v → %q, want %q", tc.name, err, kdc.Explain(err), tc.want)
		}
	}
	if e := errors.New("dial tcp: connection refused"); kdc.Refused(e) || kdc.Explain(e) != e.Error() {
		t.Errorf("a network error: refused %v, %q", kdc.Refused(e), kdc.Explain(e))
	}
}
