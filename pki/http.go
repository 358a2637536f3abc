package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"time"
)

// HTTP paths the CA's certificates point at.
const (
	PathCACert  = "/ca.crt"       // the issuing CA certificate, DER (AIA caIssuers)
	PathChain   = "/ca-chain.pem" // the chain up to the root, PEM
	PathCRL     = "/ca.crl"       // the current CRL, DER (CRL distribution point)
	crlMaxBytes = 64 << 20
)

// NewHTTPHandler serves the CA certificates and the CRL last written to
// crlPath. The CRL file is read on each request, so a new CRL published by
// another process is served at once.
func NewHTTPHandler(chain []*x509.Certificate, crlPath string) http.Handler {
	var pemChain bytes.Buffer
	for _, c := range chain {
		pem.Encode(&pemChain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathCACert, func(w http.ResponseWriter, r *http.Request) {
		serveBytes(w, r, "application/pkix-cert", chain[0].Raw, chain[0].NotBefore)
	})
	mux.HandleFunc("GET "+PathChain, func(w http.ResponseWriter, r *http.Request) {
		serveBytes(w, r, "application/x-pem-file", pemChain.Bytes(), chain[0].NotBefore)
	})
	mux.HandleFunc("GET "+PathCRL, func(w http.ResponseWriter, r *http.Request) {
		fi, err := os.Stat(crlPath)
		if err != nil || fi.Size() > crlMaxBytes {
			http.Error(w, "no CRL has been published yet", http.StatusNotFound)
			return
		}
		data, err := os.ReadFile(crlPath)
		if err != nil {
			http.Error(w, "no CRL has been published yet", http.StatusNotFound)
			return
		}
		serveBytes(w, r, "application/pkix-crl", data, fi.ModTime())
	})
	return mux
}

func serveBytes(w http.ResponseWriter, r *http.Request, contentType string, data []byte, mod time.Time) {
	w.Header().Set("Content-Type", contentType)
	http.ServeContent(w, r, "", mod, bytes.NewReader(data))
}
