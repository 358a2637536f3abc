package station

import (
	"context"
	"errors"
	"testing"

	"github.com/scstation/scstation/pki"
)

const olgaLDIF = `dn: uid=olga,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: upnPrincipal
uid: olga
cn: Olga Officer
sn: Officer
mail: olga@example.test
userPrincipalName: olga@example.test

`

// signInExternalOfficer makes olga (an entry of slapd) the officer of st
// and signs her in. OpenLDAP entries have no objectSid: neither has her
// agent certificate.
func signInExternalOfficer(t *testing.T, st *Station) {
	t.Helper()
	ctx := context.Background()
	templatesWithoutSID(t, st, "enrollment-agent")
	if _, err := st.BootstrapOfficer(ctx, OfficerOptions{User: "olga", PIN: "97531864"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SignInVirtual(ctx, "olga", "97531864"); err != nil {
		t.Fatal(err)
	}
}

// TestEnrollExternalDirectoryDown: on a station whose directory is a real
// slapd, an officer from slapd enrolls erin; then slapd stops in the middle
// of the next enrollment, which fails with nothing left active or valid.
func TestEnrollExternalDirectoryDown(t *testing.T) {
	st, slapd := externalStation(t, erinLDIF+olgaLDIF)
	ctx := context.Background()
	signInExternalOfficer(t, st)
	res, err := st.Enroll(ctx, EnrollRequest{User: "erin", Templates: []string{"smartcard-logon"}, Card: blankCard(t, 71), PIN: alicePIN})
	if err != nil {
		t.Fatal(err)
	}
	if res.Certificates[0].Subject.CommonName != "Erin Example" {
		t.Errorf("subject %s does not come from slapd", res.Certificates[0].Subject)
	}
	db, _ := st.CADB()
	before, _ := db.List(pkiQueryValid("erin"))
	_, err = st.Enroll(ctx, EnrollRequest{User: "erin", Templates: []string{"smartcard-logon"}, Card: blankCard(t, 72), PIN: alicePIN,
		Progress: func(s Step) {
			if s.Name == "requests" {
				slapd.Stop()
			}
		}})
	var ee *EnrollError
	if !errors.As(err, &ee) || ee.Step != "issue" {
		t.Fatalf("want a failure at issue with slapd stopped: %v", err)
	}
	t.Logf("%v", err)
	after, _ := db.List(pkiQueryValid("erin"))
	if len(after) != len(before) {
		t.Fatalf("valid certificates of erin: %d before, %d after the failed enrollment", len(before), len(after))
	}
	inv, _ := st.Inventory()
	if rec, _ := inv.Get(ee.CardID); rec == nil || rec.State != "uninitialized" || len(rec.Certificates) != 0 {
		t.Fatalf("record of the failed card: %+v", rec)
	}
}

func pkiQueryValid(user string) pki.Query { return pki.Query{User: user, Status: pki.StatusValid} }
