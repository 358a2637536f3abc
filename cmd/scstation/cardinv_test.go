package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/inventory"
)

// lifecycleStation makes a data directory where alice has a card in the
// inventory with a logon and a signing certificate (keys made by openssl),
// and returns the directory, the card ID, the certificate files and their
// serials.
func lifecycleStation(t *testing.T, initArgs ...string) (dir, id string, certs, serials []string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "st")
	work := t.TempDir()
	d := "--dir=" + dir
	must(t, 0, run(t, "", append([]string{"init", "--domain", "example.test", d}, initArgs...)...))
	must(t, 0, run(t, "", "user", "add", "alice", "--mail", "alice@example.test", d))
	id = inventory.CardID([]byte("0123456789abcdef"), 31337)
	c := &inventory.Card{ID: id, Serial: 31337, GUID: "30313233343536373839616263646566", Owner: "alice", State: inventory.Active, SealedPUK: []byte("opaque")}
	for i, tmpl := range []string{"smartcard-logon", "smime-signing"} {
		key := filepath.Join(work, tmpl+".key")
		csr := filepath.Join(work, tmpl+".csr")
		openssl(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", "/CN=ignored", "-out", csr)
		out := filepath.Join(work, tmpl+".pem")
		r := must(t, 0, run(t, "", "ca", "issue", "--template", tmpl, "--csr", csr, "--user", "alice", "--out", out, d))
		m := serialRE.FindStringSubmatch(r.stderr)
		if m == nil {
			t.Fatalf("no serial in %q", r.stderr)
		}
		certs, serials = append(certs, out), append(serials, m[1])
		c.Certificates = append(c.Certificates, inventory.CertRef{Slot: []string{"9a", "9c"}[i], Serial: m[1], Template: tmpl, NotAfter: time.Now().Add(365 * 24 * time.Hour)})
	}
	// Enrollment (another command) puts cards in the inventory; here the
	// test does.
	st, err := station.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := st.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	if err := inv.Create(c); err != nil {
		t.Fatal(err)
	}
	st.Close()
	return dir, id, certs, serials
}

// verifyCRL runs openssl verify -crl_check on a certificate against the
// station's published CRL and returns its output and whether it passed.
func verifyCRL(t *testing.T, dir, cert string) (string, bool) {
	t.Helper()
	crlPEM := filepath.Join(t.TempDir(), "crl.pem")
	openssl(t, "crl", "-inform", "DER", "-in", filepath.Join(dir, "ca", "ca.crl"), "-out", crlPEM)
	out, err := runOpenssl(t, "verify", "-crl_check", "-CAfile", filepath.Join(dir, "ca", "chain.pem"), "-CRLfile", crlPEM, cert)
	return out, err == nil
}

func TestCardLifecycleCommands(t *testing.T) {
	t.Setenv("SCSTATION_CA_PASSPHRASE", "")
	dir, id, certs, serials := lifecycleStation(t, "--no-passphrase")
	d := "--dir=" + dir

	r := must(t, 0, run(t, "", "card", "inventory", d))
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "active") {
		t.Fatalf("inventory:\n%s", r.stdout)
	}
	if r := must(t, 0, run(t, "", "card", "inventory", "--owner", "bob", d)); strings.Contains(r.stdout, id) {
		t.Fatalf("bob's inventory lists alice's card:\n%s", r.stdout)
	}
	must(t, 2, run(t, "", "card", "inventory", "--state", "lost", d))
	r = must(t, 0, run(t, "", "card", "show", id, d))
	for _, w := range []string{"owner       alice", "state       active", "sealed in the inventory", serials[0], serials[1], "valid"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("card show lacks %q:\n%s", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "opaque") {
		t.Error("card show printed the sealed PUK")
	}
	must(t, 1, run(t, "", "card", "show", "serial:1", d))
	must(t, 2, run(t, "", "card", "show", "nonsense", d))
	// The bare GUID (any case, with dashes) or serial number name the card too.
	for _, alias := range []string{"30313233-3435-3637-3839-616263646566", "30313233343536373839616263646566"} {
		if r := must(t, 0, run(t, "", "card", "show", strings.ToUpper(alias), d)); !strings.Contains(r.stdout, "Card "+id) {
			t.Errorf("card show %s:\n%s", alias, r.stdout)
		}
	}
	if r := must(t, 0, run(t, "", "card", "show", "31337", d)); !strings.Contains(r.stdout, "Card "+id) {
		t.Errorf("card show by serial number:\n%s", r.stdout)
	}
	must(t, 1, run(t, "", "card", "show", "31338", d))

	// Suspend: openssl sees both certificates on hold.
	r = must(t, 0, run(t, "", "card", "suspend", id, "--detail", "reported missing", d))
	if !strings.Contains(r.stdout, "is suspended; 2 certificate(s) changed") || !strings.Contains(r.stdout, "CRL #") {
		t.Fatalf("suspend:\n%s", r.stdout)
	}
	crlText := openssl(t, "crl", "-inform", "DER", "-in", filepath.Join(dir, "ca", "ca.crl"), "-noout", "-text")
	if strings.Count(crlText, "Certificate Hold") != 2 {
		t.Fatalf("CRL after suspend:\n%s", crlText)
	}
	for _, c := range certs {
		if out, ok := verifyCRL(t, dir, c); ok || !strings.Contains(out, "certificate revoked") {
			t.Fatalf("openssl verify -crl_check of a held certificate:\n%s", out)
		}
	}
	must(t, 1, run(t, "", "card", "suspend", id, d))

	// Reinstate: openssl accepts them again.
	must(t, 0, run(t, "", "card", "reinstate", id, d))
	for _, c := range certs {
		if out, ok := verifyCRL(t, dir, c); !ok {
			t.Fatalf("openssl verify -crl_check after reinstate:\n%s", out)
		}
	}

	// Revoke: usage errors first, then for good.
	must(t, 2, run(t, "", "card", "revoke", id, d))
	must(t, 2, run(t, "", "card", "revoke", id, "--reason", "hold", d))
	must(t, 2, run(t, "", "card", "revoke", id, "--reason", "because", d))
	must(t, 0, run(t, "", "card", "revoke", id, "--reason", "keyCompromise", d))
	crlText = openssl(t, "crl", "-inform", "DER", "-in", filepath.Join(dir, "ca", "ca.crl"), "-noout", "-text")
	if strings.Count(crlText, "Key Compromise") != 2 {
		t.Fatalf("CRL after revoke:\n%s", crlText)
	}
	for _, c := range certs {
		if out, ok := verifyCRL(t, dir, c); ok || !strings.Contains(out, "certificate revoked") {
			t.Fatalf("openssl verify -crl_check of a revoked certificate:\n%s", out)
		}
	}
	must(t, 1, run(t, "", "card", "reinstate", id, d))
	r = must(t, 0, run(t, "", "card", "show", id, d))
	for _, w := range []string{"state       revoked", "card.suspend", "reported missing", "card.reinstate", "card.revoke", "active -> suspended", "suspended -> active", "active -> revoked"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("card show lacks %q:\n%s", w, r.stdout)
		}
	}
	if r := must(t, 0, run(t, "", "card", "inventory", "--state", "revoked", d)); !strings.Contains(r.stdout, id) {
		t.Errorf("inventory --state revoked:\n%s", r.stdout)
	}

	// The audit log tells the story, and its chain is intact.
	r = must(t, 0, run(t, "", "audit", "list", "--card", id, d))
	for _, w := range []string{"cert.hold", "cert.release", "cert.revoke", "card.state", "refused", "reported missing"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("audit list lacks %q:\n%s", w, r.stdout)
		}
	}
	r = must(t, 0, run(t, "", "audit", "list", "--user", "alice", "--action", "cert.issue", "--since", "1h", d))
	if n := strings.Count(r.stdout, "cert.issue"); n != 2 {
		t.Errorf("%d issuances listed:\n%s", n, r.stdout)
	}
	r = must(t, 0, run(t, "", "audit", "list", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), d))
	if n := strings.Count(r.stdout, "\n"); n != 1 {
		t.Errorf("audit list from the future:\n%s", r.stdout)
	}
	must(t, 2, run(t, "", "audit", "list", "--since", "yesterday", d))
	r = must(t, 0, run(t, "", "audit", "verify", d))
	if !regexp.MustCompile(`^\d+ records, chain intact\nhead: record \d+, SHA-256 [0-9a-f]{64}\n$`).MatchString(r.stdout) {
		t.Errorf("audit verify: %s", r.stdout)
	}
}

// With an encrypted CA key and no passphrase source, a suspension still
// happens and the command warns that the CRL is stale.
func TestCardSuspendStaleCRL(t *testing.T) {
	pf := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pf, []byte("correct horse battery\n"), 0o600)
	// Setting up issues with the passphrase from the environment ...
	t.Setenv("SCSTATION_CA_PASSPHRASE", "correct horse battery")
	dir, id, certs, _ := lifecycleStation(t, "--passphrase-file", pf)
	// ... which the suspension does not have.
	t.Setenv("SCSTATION_CA_PASSPHRASE", "")
	d := "--dir=" + dir
	must(t, 0, run(t, "", "ca", "crl", "--passphrase-file", pf, d))
	r := must(t, 0, run(t, "", "card", "suspend", id, d))
	if !strings.Contains(r.stderr, "stale") {
		t.Fatalf("no stale warning:\n%s", r.stderr)
	}
	if out, ok := verifyCRL(t, dir, certs[0]); !ok {
		t.Fatalf("the stale CRL should not list the hold yet:\n%s", out)
	}
	r = must(t, 0, run(t, "", "card", "reinstate", id, "--passphrase-file", pf, d))
	if !strings.Contains(r.stdout, "CRL #") {
		t.Fatalf("reinstate with a passphrase file did not publish:\n%s%s", r.stdout, r.stderr)
	}
}

func TestAuditVerifyDetectsTampering(t *testing.T) {
	t.Setenv("SCSTATION_CA_PASSPHRASE", "")
	dir, id, _, _ := lifecycleStation(t, "--no-passphrase")
	d := "--dir=" + dir
	must(t, 0, run(t, "", "card", "suspend", id, d))
	must(t, 0, run(t, "", "audit", "verify", d))
	db, err := bolt.Open(filepath.Join(dir, "audit", "audit.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("records"))
		k := []byte{0, 0, 0, 0, 0, 0, 0, 2}
		v := strings.Replace(string(b.Get(k)), `"Outcome":"ok"`, `"Outcome":"failed"`, 1)
		return b.Put(k, []byte(v))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := must(t, 1, run(t, "", "audit", "verify", d))
	if !strings.Contains(r.stderr, "record 2") || !strings.Contains(r.stderr, "altered") || !strings.Contains(r.stdout, "failed") {
		t.Fatalf("audit verify:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}
}

// runOpenssl runs openssl and returns its output and error, for checks
// that expect it to fail.
func runOpenssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(testpeer.Path(t, "openssl"), args...).CombinedOutput()
	return string(out), err
}
