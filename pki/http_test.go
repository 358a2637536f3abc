package pki_test

import (
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

func TestHTTPHandler(t *testing.T) {
	env := pkitest.New(t, pkitest.Options{})
	crlPath := filepath.Join(t.TempDir(), "ca.crl")
	srv := httptest.NewServer(pki.NewHTTPHandler(env.CA.Chain(), crlPath))
	defer srv.Close()
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	if resp, _ := get(pki.PathCRL); resp.StatusCode != http.StatusNotFound {
		t.Errorf("CRL before any was published: %s", resp.Status)
	}
	resp, body := get(pki.PathCACert)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-cert" {
		t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if c, err := x509.ParseCertificate(body); err != nil || !c.Equal(env.CA.Certificate()) {
		t.Errorf("CA certificate: %v", err)
	}
	crl, err := env.CA.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crlPath, crl.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body = get(pki.PathCRL)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	got, err := x509.ParseRevocationList(body)
	if err != nil || got.CheckSignatureFrom(env.CA.Certificate()) != nil || got.Number.Cmp(crl.Number) != 0 {
		t.Errorf("served CRL: %v", err)
	}
	if resp, _ := get("/nothing"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %s", resp.Status)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+pki.PathCRL, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v %v", resp.Status, err)
	}
}
