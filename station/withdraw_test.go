package station

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
	"github.com/scstation/scstation/station/audit"
)

// published are the certificates on user's entry in the station's
// directory.
func published(t *testing.T, st *Station, user string) [][]byte {
	t.Helper()
	d, err := st.UserDirectory()
	if err != nil {
		t.Fatal(err)
	}
	certs, err := d.UserCertificates(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

// samePublished fails unless exactly want are published for user.
func samePublished(t *testing.T, st *Station, user string, want ...*x509.Certificate) {
	t.Helper()
	got := published(t, st, user)
	if len(got) != len(want) {
		t.Fatalf("%s has %d certificates in the directory, want %d", user, len(got), len(want))
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(der []byte) bool { return bytes.Equal(der, w.Raw) }) {
			t.Fatalf("%s lacks certificate %x in the directory", user, w.SerialNumber)
		}
	}
}

// TestRevokedCertificatesWithdrawn follows alice's certificates in the
// embedded directory through the card's life: a hold keeps them, renewal
// withdraws the superseded ones, ca revoke withdraws one, reset the rest,
// and revoking again withdraws one a failed withdrawal left behind.
func TestRevokedCertificatesWithdrawn(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	vc, res := enrollAlice(t, st, 31, "smartcard-logon", "smime-signing")
	samePublished(t, st, "alice", res.Certificates...)

	// Suspended (on hold), the certificates stay published.
	if _, err := st.SuspendCard(ctx, res.CardID, "on leave"); err != nil {
		t.Fatal(err)
	}
	samePublished(t, st, "alice", res.Certificates...)
	if _, err := st.ReinstateCard(ctx, res.CardID, "back"); err != nil {
		t.Fatal(err)
	}
	samePublished(t, st, "alice", res.Certificates...)

	// Renewed: the superseded certificates leave, the new ones are there.
	c := again(vc)
	renewed, err := st.RenewCard(ctx, RenewRequest{CardRef: CardRef{Card: c}, PIN: alicePIN})
	if err != nil {
		t.Fatal(err)
	}
	samePublished(t, st, "alice", renewed.Certificates...)

	// ca revoke: a hold keeps the certificate, a permanent reason
	// withdraws it.
	logon, mail := renewed.Certificates[0], renewed.Certificates[1]
	if _, err := st.Revoke(mail.SerialNumber, pki.ReasonCertificateHold); err != nil {
		t.Fatal(err)
	}
	samePublished(t, st, "alice", logon, mail)
	if _, err := st.Revoke(mail.SerialNumber, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	samePublished(t, st, "alice", logon)

	// Reset: the card's remaining certificate leaves.
	if _, err := st.ResetCard(ctx, CardRef{Card: again(c)}, "left"); err != nil {
		t.Fatal(err)
	}
	samePublished(t, st, "alice")

	// A revoked certificate still published (its withdrawal failed) is
	// withdrawn when it is revoked again, which itself is refused.
	d, _ := st.Directory()
	if err := d.AddCertificate("alice", logon.Raw); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Revoke(logon.SerialNumber, pki.ReasonSuperseded); !errors.Is(err, pki.ErrAlreadyRevoked) {
		t.Fatalf("revoking again: %v", err)
	}
	samePublished(t, st, "alice")
	if acts := auditActions(t, st, audit.Query{Action: "cert.withdraw"}); len(acts) != 0 {
		t.Errorf("withdrawals failed: %v", acts)
	}
}

// TestEnrollRollbackWithdraws: an enrollment that fails after the CA
// published its certificates (the card pulled before they are written to
// it) revokes them and takes them off the directory.
func TestEnrollRollbackWithdraws(t *testing.T) {
	st := demoStation(t)
	vc := blankCard(t, 41)
	var during [][]byte
	_, err := st.Enroll(context.Background(), EnrollRequest{User: "alice", Templates: []string{"smartcard-logon", "smime-signing"}, Card: vc, PIN: alicePIN,
		Progress: func(s Step) {
			if s.Name == "issue" {
				during = published(t, st, "alice")
				vc.Close()
			}
		}})
	var ee *EnrollError
	if !errors.As(err, &ee) || len(ee.Revoked) != 2 {
		t.Fatalf("want a failure that revokes two certificates: %v", err)
	}
	if len(during) != 2 {
		t.Fatalf("%d certificates published before the failure, want 2", len(during))
	}
	samePublished(t, st, "alice")
}

// TestStandaloneWithdrawsFiles: a standalone station deletes the
// published file of a certificate revoked for good, not of one on hold.
func TestStandaloneWithdrawsFiles(t *testing.T) {
	dir := t.TempDir()
	st, err := Init(dir, InitOptions{Domain: "example.test", Standalone: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, _ := st.Directory()
	if _, err := d.AddUser(directory.User{Name: "bob", UPN: "bob@example.test", Mail: "bob@example.test"}); err != nil {
		t.Fatal(err)
	}
	issue := func() (*pki.Issued, string) {
		_, csr := pkitest.NewCSR(t, pki.P256)
		is, err := st.Issue(context.Background(), nil, "smime-signing", csr, "bob", "")
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, publishedDir, "bob", is.Record.Serial.Text(16)+".crt")
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
		return is, f
	}
	held, heldFile := issue()
	gone, goneFile := issue()
	if _, err := st.Revoke(held.Record.Serial, pki.ReasonCertificateHold); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Revoke(gone.Record.Serial, pki.ReasonCessationOfOperation); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(heldFile); err != nil {
		t.Errorf("held certificate's file: %v", err)
	}
	if _, err := os.Stat(goneFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("revoked certificate's file: %v", err)
	}
}

// TestExternalDirectoryWithdraws: on a station whose directory is a real
// slapd, revoking a card takes its certificate off erin's entry (read
// back with ldapsearch); with slapd stopped, the revocation still holds
// and the failed withdrawal is audited.
func TestExternalDirectoryWithdraws(t *testing.T) {
	ldapsearch := testpeer.Path(t, "ldapsearch")
	st, slapd := externalStation(t, erinLDIF+olgaLDIF)
	ctx := context.Background()
	signInExternalOfficer(t, st)
	slapdCerts := func() [][]byte {
		t.Helper()
		out, err := runPeer(t, nil, "", ldapsearch, "-x", "-LLL", "-o", "ldif-wrap=no", "-H", slapd.URL, "-D", slapd.RootDN, "-w", slapd.RootPassword,
			"-b", "uid=erin,ou=people,dc=example,dc=test", "-s", "base", "(objectClass=*)", "userCertificate;binary")
		if err != nil {
			t.Fatalf("ldapsearch: %v\n%s", err, out)
		}
		var certs [][]byte
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "userCertificate;binary:: "); ok {
				der, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					t.Fatal(err)
				}
				certs = append(certs, der)
			}
		}
		return certs
	}
	enroll := func(serial uint32) *EnrollResult {
		res, err := st.Enroll(ctx, EnrollRequest{User: "erin", Templates: []string{"smartcard-logon"}, Card: blankCard(t, serial), PIN: alicePIN})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := enroll(81)
	if certs := slapdCerts(); len(certs) != 1 || !bytes.Equal(certs[0], first.Certificates[0].Raw) {
		t.Fatalf("slapd has %d certificates for erin, want the enrolled one", len(certs))
	}
	if _, err := st.RevokeCard(ctx, first.CardID, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if certs := slapdCerts(); len(certs) != 0 {
		t.Fatalf("slapd still has %d certificates for erin after the card was revoked", len(certs))
	}

	second := enroll(82)
	if certs := slapdCerts(); len(certs) != 1 {
		t.Fatalf("slapd has %d certificates for erin, want 1", len(certs))
	}
	slapd.Stop()
	res, err := st.RevokeCard(ctx, second.CardID, pki.ReasonAffiliationChanged)
	if err != nil {
		t.Fatalf("revoking with the directory down: %v", err)
	}
	if len(res.Changed) != 1 || res.Changed[0].Status != pki.StatusRevoked {
		t.Fatalf("revocation with the directory down: %+v", res.Changed)
	}
	l, _ := st.Audit()
	recs, err := l.List(audit.Query{Action: "cert.withdraw"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Outcome != audit.Failed || recs[0].User != "erin" || recs[0].Cert != res.Changed[0].Serial.Text(16) {
		t.Fatalf("failed withdrawal audit: %+v", recs)
	}
}
