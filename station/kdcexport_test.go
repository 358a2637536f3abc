package station

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scstation/scstation/pki"
)

var oidPKINITKDC = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 5}

func newExportStation(t *testing.T) *Station {
	t.Helper()
	st, err := Init(t.TempDir(), InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	store, err := st.KDCStore()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddService("host/www.example.test"); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestExportKDC checks the files, their modes, the KDC certificate's
// profile, and that a re-export keeps a good certificate and replaces one
// that is revoked or for another host.
func TestExportKDC(t *testing.T) {
	st := newExportStation(t)
	out := filepath.Join(t.TempDir(), "export")
	ctx := context.Background()
	res, err := st.ExportKDC(ctx, KDCExportOptions{Dir: out, Hostname: "kdc.example.test", Principals: []string{"host/www.example.test@EXAMPLE.TEST"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Issued {
		t.Error("first export did not issue a KDC certificate")
	}
	modes := map[string]os.FileMode{
		ExportKDCKey: 0o600, ExportKDCCert: 0o644, ExportAnchors: 0o644, ExportCRL: 0o644,
		"host_www.example.test.keytab": 0o600, ExportKDCConf: 0o644, ExportKrb5Conf: 0o644,
	}
	for name, mode := range modes {
		fi, err := os.Stat(filepath.Join(out, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("output directory: %v %v", fi, err)
	}
	chain, key, err := st.loadKDCIdentity(filepath.Join(out, ExportKDCKey), filepath.Join(out, ExportKDCCert))
	if err != nil {
		t.Fatal(err)
	}
	leaf := chain[0]
	if !leaf.Equal(res.Certificate) || !publicKeyMatches(leaf, key) {
		t.Fatal("kdc.pem/kdc.key do not hold the reported certificate and its key")
	}
	if err := leaf.VerifyHostname("kdc.example.test"); err != nil {
		t.Error(err)
	}
	if !slices.ContainsFunc(leaf.UnknownExtKeyUsage, oidPKINITKDC.Equal) {
		t.Errorf("no id-pkinit-KPKdc EKU: %v", leaf.UnknownExtKeyUsage)
	}
	anchors, _ := st.CAChain()
	if err := leaf.CheckSignatureFrom(anchors[0]); err != nil {
		t.Errorf("the KDC certificate is not from the station CA: %v", err)
	}
	db, _ := st.CADB()
	if rec, err := db.Get(leaf.SerialNumber); err != nil || rec.Template != "kdc" {
		t.Errorf("the KDC certificate is not recorded: %v", err)
	}
	crlPEM, _ := os.ReadFile(filepath.Join(out, ExportCRL))
	if !strings.HasPrefix(string(crlPEM), "-----BEGIN X509 CRL-----") {
		t.Errorf("crl.pem is not a PEM CRL:\n%s", crlPEM)
	}
	conf, _ := os.ReadFile(filepath.Join(out, ExportKDCConf))
	for _, want := range []string{
		"EXAMPLE.TEST = {",
		"pkinit_identity = FILE:" + filepath.Join(out, ExportKDCCert) + "," + filepath.Join(out, ExportKDCKey),
		"pkinit_anchors = FILE:" + filepath.Join(out, ExportAnchors),
		"pkinit_revoke = FILE:" + filepath.Join(out, ExportCRL),
		"pkinit_eku_checking = scLogin", "pkinit_allow_upn = true", "supported_enctypes = " + ExportedEnctypes,
		"addprinc +requires_preauth -nokey",
	} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("kdc.conf lacks %q:\n%s", want, conf)
		}
	}
	kt, _ := os.ReadFile(filepath.Join(out, "host_www.example.test.keytab"))
	keys, err := KeytabKeys(kt, "host/www.example.test")
	if err != nil || len(keys) == 0 {
		t.Errorf("keytab: %d keys, %v", len(keys), err)
	}

	// Again: the certificate is kept, the CRL is new.
	res2, err := st.ExportKDC(ctx, KDCExportOptions{Dir: out, Hostname: "kdc.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Issued || !res2.Certificate.Equal(leaf) {
		t.Error("a valid exported KDC certificate was replaced")
	}
	if res2.CRL.Number.Cmp(res.CRL.Number) <= 0 {
		t.Errorf("CRL number %v after %v", res2.CRL.Number, res.CRL.Number)
	}
	if slices.Contains(res2.Files, ExportKDCKey) {
		t.Error("the kept key was rewritten")
	}

	// Revoked: a new certificate and key.
	if _, err := st.Revoke(leaf.SerialNumber, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	res3, err := st.ExportKDC(ctx, KDCExportOptions{Dir: out, Hostname: "kdc.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if !res3.Issued || res3.Certificate.Equal(leaf) || res3.Superseded != nil {
		t.Errorf("a revoked KDC certificate: issued %v, superseded %v", res3.Issued, res3.Superseded)
	}
	if !slices.ContainsFunc(res3.CRL.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool { return e.SerialNumber.Cmp(leaf.SerialNumber) == 0 }) {
		t.Error("the exported CRL does not list the revoked certificate")
	}
	// Another host name: a new certificate.
	res4, err := st.ExportKDC(ctx, KDCExportOptions{Dir: out, Hostname: "kdc2.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if !res4.Issued || res4.Certificate.VerifyHostname("kdc2.example.test") != nil {
		t.Error("no new certificate for the new host name")
	}
	// The one it replaced is revoked as superseded, and the CRL says so.
	if res4.Superseded == nil || !res4.Superseded.Equal(res3.Certificate) {
		t.Fatalf("superseded %v", res4.Superseded)
	}
	if rec, err := db.Get(res3.Certificate.SerialNumber); err != nil || rec.Status == pki.StatusValid || rec.Reason != pki.ReasonSuperseded {
		t.Errorf("the replaced certificate: %+v %v", rec, err)
	}
	if !slices.ContainsFunc(res4.CRL.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
		return e.SerialNumber.Cmp(res3.Certificate.SerialNumber) == 0
	}) {
		t.Error("the CRL does not list the superseded KDC certificate")
	}
}

// TestExportKDCRefusals: bad requests are refused before anything is
// issued or written.
func TestExportKDCRefusals(t *testing.T) {
	st := newExportStation(t)
	db, _ := st.CADB()
	before, err := db.List(pki.Query{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts KDCExportOptions
	}{
		{"no dir", KDCExportOptions{Hostname: "kdc.example.test"}},
		{"bad host", KDCExportOptions{Hostname: "kdc example.test"}},
		{"host with slash", KDCExportOptions{Hostname: "kdc/../x"}},
		{"unknown service", KDCExportOptions{Hostname: "kdc.example.test", Principals: []string{"host/nope.example.test"}}},
		{"other realm", KDCExportOptions{Hostname: "kdc.example.test", Principals: []string{"host/www.example.test@OTHER.TEST"}}},
		{"path in principal", KDCExportOptions{Hostname: "kdc.example.test", Principals: []string{"host/../../etc"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "export")
			if tc.name != "no dir" {
				tc.opts.Dir = out
			}
			_, err := st.ExportKDC(context.Background(), tc.opts)
			if !errors.Is(err, ErrBadExport) {
				t.Fatalf("got %v, want ErrBadExport", err)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused export made %s", out)
			}
		})
	}
	after, _ := db.List(pki.Query{})
	if len(after) != len(before) {
		t.Errorf("refused exports issued %d certificates", len(after)-len(before))
	}
}

func TestKDCModeConfig(t *testing.T) {
	for _, tc := range []struct {
		mode, want string
		ok         bool
	}{{"", KDCEmbedded, true}, {"embedded", KDCEmbedded, true}, {"external", KDCExternal, true}, {"mit", "", false}, {"External", "", false}} {
		c := Config{Domain: "example.test", Realm: "EXAMPLE.TEST", CA: CAConfig{KeyAlgorithm: pki.P256, CRLValidity: pki.Duration(1)}, KDC: KDCConfig{Mode: tc.mode}}
		err := c.Validate()
		if (err == nil) != tc.ok || (tc.ok && c.KDC.Mode != tc.want) {
			t.Errorf("mode %q: %v, mode %q", tc.mode, err, c.KDC.Mode)
		}
	}
}

// TestServeExternalKDC: in external mode serve does not start the KDC.
func TestServeExternalKDC(t *testing.T) {
	st := newExportStation(t)
	st.Config.KDC.Mode = KDCExternal
	if _, err := st.PublishCRL(nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := st.Serve(ctx, ServeOptions{KDC: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "external") {
		t.Errorf("serve with only the external KDC: %v", err)
	}
	started := make(chan [2]string, 4)
	done := make(chan error, 1)
	go func() {
		done <- st.Serve(ctx, ServeOptions{KDC: "127.0.0.1:0", HTTP: "127.0.0.1:0", Ready: func(name, addr string) { started <- [2]string{name, addr} }})
	}()
	first := <-started
	if first[0] != "http" {
		t.Errorf("started %s", first[0])
	}
	// Health says the KDC is elsewhere, and lists none here.
	if code, h := getHealth(t, first[1]); code != 200 || h.KDCMode != KDCExternal || len(h.Services) != 1 {
		t.Errorf("health: %d, kdc_mode %q, services %+v", code, h.KDCMode, h.Services)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(started)
	for svc := range started {
		t.Errorf("also started %s", svc[0])
	}
}

// TestExportKDCWriteFails: a certificate issued but not delivered (its
// key cannot be written) is revoked, not left valid without a holder.
func TestExportKDCWriteFails(t *testing.T) {
	st := newExportStation(t)
	out := t.TempDir()
	if err := os.Mkdir(filepath.Join(out, ExportKDCKey), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, ExportKDCKey, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ExportKDC(context.Background(), KDCExportOptions{Dir: out, Hostname: "kdc.example.test"}); err == nil {
		t.Fatal("export succeeded without writing the key")
	}
	db, _ := st.CADB()
	recs, err := db.List(pki.Query{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Template == "kdc" && r.Status == pki.StatusValid {
			if cert, _ := r.Certificate(); cert != nil && cert.VerifyHostname("kdc.example.test") == nil {
				t.Errorf("certificate %x for the external KDC is valid but was never delivered", r.Serial)
			}
		}
		if r.Template == "kdc" && r.Reason == pki.ReasonCessationOfOperation {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d undelivered certificates revoked, want 1", n)
	}
}
