package pki_test

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

// crashChildEnv, when set to a directory, turns TestCrashDuringIssuance
// into the child process: it issues certificates from the CA in that
// directory until it is killed.
const crashChildEnv = "SCSTATION_CRASH_CHILD"

// crashWorkers is the number of goroutines the child issues with, so that
// Record calls share group commits when the child is killed.
const crashWorkers = 8

// TestCrashDuringIssuance kills a process that is issuing certificates
// (SIGKILL, at a random point) several times over the same database, and
// checks that every certificate the process handed out (Issue returned it)
// is in the database, that the database reopens cleanly each time, and that
// it holds nothing but well-formed certificates signed by the CA.
//
// A SIGKILL keeps the kernel's page cache, so this tests that Issue only
// returns after the commit and that bbolt's commits are atomic (a record
// and its index entries appear together or not at all), not that the fsync
// reaches the disk.
func TestCrashDuringIssuance(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	if testing.Short() {
		t.Skip("starts and kills child processes")
	}

	dir := t.TempDir()
	key, err := pki.GenerateKey(pki.P256)
	if err != nil {
		t.Fatal(err)
	}
	root, err := pki.CreateRoot(key, pki.CAName{CommonName: pkitest.Realm + " Crash CA"}, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pkitest.WritePEM(t, dir, "ca.crt", root)
	dbPath := filepath.Join(dir, "ca.db")

	const rounds = 8
	reported := make(map[string]bool) // serial in lower-case hex
	for round := range rounds {
		target := 20 + rand.IntN(181)
		got := runCrashChild(t, dir, target)
		for _, s := range got {
			if reported[s] {
				t.Fatalf("round %d: serial %s reported twice", round, s)
			}
			reported[s] = true
		}
		n := checkCrashDB(t, dbPath, root)
		t.Logf("round %d: killed after %d reported (target %d); database holds %d, %d reported in all", round, len(got), target, n, len(reported))
		if n < len(reported) {
			t.Errorf("round %d: the database holds %d certificates, %d were reported issued", round, n, len(reported))
		}
	}

	db, err := pki.OpenDB(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.List(pki.Query{})
	if err != nil {
		t.Fatal(err)
	}
	inDB := make(map[string]*pki.Record, len(recs))
	for _, r := range recs {
		s := r.Serial.Text(16)
		if inDB[s] != nil {
			t.Errorf("serial %s is recorded twice", s)
		}
		inDB[s] = r
		c, err := r.Certificate()
		if err != nil {
			t.Errorf("record %s: %v", s, err)
			continue
		}
		if c.SerialNumber.Cmp(r.Serial) != 0 {
			t.Errorf("record %s holds certificate %x", s, c.SerialNumber)
		}
		if err := c.CheckSignatureFrom(root); err != nil {
			t.Errorf("record %s: not signed by the CA: %v", s, err)
		}
		if r.User != "alice" || r.Template != "smartcard-logon" || r.Status != pki.StatusValid {
			t.Errorf("record %s: user %q template %q status %q", s, r.User, r.Template, r.Status)
		}
	}
	missing := 0
	for s := range reported {
		r := inDB[s]
		if r == nil {
			missing++
			if missing <= 5 {
				t.Errorf("serial %s was reported issued but is not in the database", s)
			}
			continue
		}
		if _, err := x509.ParseCertificate(r.DER); err != nil {
			t.Errorf("serial %s: %v", s, err)
		}
		got, err := db.Get(r.Serial)
		if err != nil || !bytes.Equal(got.DER, r.DER) {
			t.Errorf("serial %s: Get gives %v, %v", s, got, err)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d reported certificates are missing from the database", missing, len(reported))
	}
	if len(recs) < len(reported) {
		t.Errorf("the database holds %d certificates, %d were reported", len(recs), len(reported))
	}
	t.Logf("%d rounds: %d certificates reported, %d in the database", rounds, len(reported), len(recs))
}

// runCrashChild starts the child, reads serials until target have been
// reported, kills it, and returns every serial it reported, including the
// lines still in the pipe after it died.
func runCrashChild(t *testing.T, dir string, target int) []string {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	// The child also dies if the parent does: its next write to the
	// closed pipe raises SIGPIPE, and the timeout is a backstop.
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringIssuance$", "-test.count=1", "-test.timeout=1m")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	// An *os.File goes to the child as is: its writes land in the pipe
	// with no copying goroutine in between, and nothing is lost when it
	// is killed.
	cmd.Stdout = pw
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		pw.Close()
		t.Fatal(err)
	}
	pw.Close()
	timer := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()

	r := bufio.NewReader(pr)
	var serials []string
	var bad []string
	readLine := func() bool {
		line, err := r.ReadString('\n')
		if err != nil {
			if line != "" {
				bad = append(bad, fmt.Sprintf("torn line %q", line))
			}
			if !errors.Is(err, io.EOF) {
				bad = append(bad, err.Error())
			}
			return false
		}
		hex, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "ISSUED ")
		if _, isNum := new(big.Int).SetString(hex, 16); !ok || !isNum {
			bad = append(bad, fmt.Sprintf("unexpected line %q", line))
			return true
		}
		serials = append(serials, hex)
		return true
	}
	for len(serials) < target && readLine() {
	}
	reachedTarget := len(serials) >= target
	killErr := cmd.Process.Kill()
	waitErr := cmd.Wait()
	// Drain: what the child wrote before it died is still in the pipe, and
	// EOF comes once its write end is gone.
	for readLine() {
	}
	if !timer.Stop() {
		t.Fatalf("the child issued only %d certificates in 20s\nstderr:\n%s", len(serials), stderr.Bytes())
	}
	if !reachedTarget {
		t.Fatalf("the child stopped after %d certificates (%v, kill: %v)\nstderr:\n%s", len(serials), waitErr, killErr, stderr.Bytes())
	}
	if len(bad) > 0 {
		t.Fatalf("child output: %s\nstderr:\n%s", strings.Join(bad, "; "), stderr.Bytes())
	}
	return serials
}

// checkCrashDB opens the database the way the CA does, then checks bbolt's
// page structure and that the indexes agree with the records, and returns
// the number of certificates.
func checkCrashDB(t *testing.T, path string, root *x509.Certificate) int {
	t.Helper()
	db, err := pki.OpenDB(path)
	if err != nil {
		t.Fatalf("reopening after the kill: %v", err)
	}
	all, err := db.List(pki.Query{})
	if err != nil {
		db.Close()
		t.Fatalf("listing after the kill: %v", err)
	}
	byUser, err := db.List(pki.Query{User: "alice"})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	byStatus, err := db.List(pki.Query{Status: pki.StatusValid})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	byExpiry, err := db.List(pki.Query{ExpiringBefore: root.NotAfter.Add(time.Hour)})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if len(byUser) != len(all) || len(byStatus) != len(all) || len(byExpiry) != len(all) {
		t.Errorf("%d records, but %d in the user index, %d in the status index, %d in the expiry index", len(all), len(byUser), len(byStatus), len(byExpiry))
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Errorf("bbolt consistency check: %v", err)
	}
	return len(all)
}

// crashChild is the child process: it issues smartcard-logon certificates
// for alice from crashWorkers goroutines and prints each serial once Issue
// has returned it. It runs until it is killed, and returns an exit code
// only on error.
func crashChild(dir string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 3
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		return fail(err)
	}
	key, err := pki.ParsePrivateKeyPEM(keyPEM, nil)
	if err != nil {
		return fail(err)
	}
	rootPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return fail(err)
	}
	block, _ := pem.Decode(rootPEM)
	if block == nil {
		return fail(errors.New("no certificate in ca.crt"))
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fail(err)
	}
	db, err := pki.OpenDB(filepath.Join(dir, "ca.db"))
	if err != nil {
		return fail(err)
	}
	users := &pkitest.Users{}
	users.Add("alice")
	ca, err := pki.New(pki.Config{
		Signer: key, Chain: []*x509.Certificate{root}, DB: db, Users: users,
		Realm: pkitest.Realm, Domain: pkitest.Domain,
	})
	if err != nil {
		return fail(err)
	}
	var reqs []*pki.Request
	for range crashWorkers {
		k, err := pki.GenerateKey(pki.P256)
		if err != nil {
			return fail(err)
		}
		csr, err := x509.CreateCertificateRequest(crand.Reader, &x509.CertificateRequest{}, k)
		if err != nil {
			return fail(err)
		}
		req, err := pki.ParseRequest(csr)
		if err != nil {
			return fail(err)
		}
		reqs = append(reqs, req)
	}

	var mu sync.Mutex
	errc := make(chan error, crashWorkers)
	for i := range crashWorkers {
		go func() {
			for {
				issued, err := ca.Issue(context.Background(), pki.IssueRequest{
					Template: "smartcard-logon", Request: reqs[i], Requester: pki.RequesterOperator, User: "alice",
				})
				if err != nil {
					errc <- err
					return
				}
				line := []byte("ISSUED " + issued.Certificate.SerialNumber.Text(16) + "\n")
				mu.Lock()
				_, err = os.Stdout.Write(line)
				mu.Unlock()
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	return fail(<-errc)
}
