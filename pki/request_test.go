package pki_test

import (
	"bytes"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

func TestParseRequestForms(t *testing.T) {
	env := pkitest.New(t, pkitest.Options{})
	agent, agentKey := env.Agent(t, "officer")
	_, csr := pkitest.NewCSR(t, pki.P256)
	cms, err := pki.EnrollOnBehalfOf(csr, agent, agentKey, `EXAMPLE\bob`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		data  []byte
		agent bool
	}{
		{"csr der", csr, false},
		{"csr pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), false},
		{"csr new pem", pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: csr}), false},
		{"cms der", cms, true},
		{"cms pem", pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: cms}), true},
		{"pkcs7 pem", pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: cms}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := pki.ParseRequest(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(req.CSR.Raw, csr) {
				t.Error("the CSR inside is not the one sent")
			}
			if (req.Agent != nil) != tc.agent {
				t.Errorf("agent %v, want %v", req.Agent != nil, tc.agent)
			}
			if tc.agent && (!req.Agent.Equal(agent) || req.OnBehalfOf != `EXAMPLE\bob`) {
				t.Errorf("agent %v on behalf of %q", req.Agent.Subject, req.OnBehalfOf)
			}
		})
	}
	for _, bad := range [][]byte{
		nil,
		[]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		[]byte("-----BEGIN CERTIFICATE REQUEST-----\n!!!"),
		cms[:len(cms)/2],
		csr[:len(csr)-1],
		bytes.Repeat([]byte{0x30}, 70000),
	} {
		var re *pki.RequestError
		if _, err := pki.ParseRequest(bad); !errors.As(err, &re) {
			t.Errorf("ParseRequest(%.20q...): %v, want a RequestError", bad, err)
		}
	}
}

// FuzzParseRequest: no input may panic the CA, and whatever parses has a
// CSR whose signature verifies.
func FuzzParseRequest(f *testing.F) {
	env := pkitest.New(f, pkitest.Options{})
	agent, agentKey := env.Agent(f, "officer")
	_, csr := pkitest.NewCSR(f, pki.P256)
	cms, err := pki.EnrollOnBehalfOf(csr, agent, agentKey, `EXAMPLE\bob`)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(csr)
	f.Add(cms)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: cms}))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := pki.ParseRequest(data)
		if err != nil {
			var re *pki.RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if err := req.CSR.CheckSignature(); err != nil {
			t.Fatalf("accepted a CSR whose signature does not verify: %v", err)
		}
	})
}
