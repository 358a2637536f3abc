//go:build unix

package pki_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"syscall"
	"testing"
	"time"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

// benchParallelism is goroutines per GOMAXPROCS in the parallel
// benchmarks: enough Issue calls in flight that while one group commit is
// being fsynced the next one fills up.
const benchParallelism = 16

var benchCAKeys = []pki.KeyAlgorithm{pki.RSA2048, pki.P256}

// benchRequests makes n parsed PKCS#10 requests for P-256 keys.
func benchRequests(b *testing.B, n int) []*pki.Request {
	b.Helper()
	reqs := make([]*pki.Request, n)
	for i := range reqs {
		_, csr := pkitest.NewCSR(b, pki.P256)
		req, err := pki.ParseRequest(csr)
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = req
	}
	return reqs
}

// benchModes runs op sequentially and with RunParallel. Besides ns/op
// (wall time, so the inverse of throughput) each reports cpu-ns/op: the
// process's user and system CPU time per operation, GC, bbolt's commits and
// fsync system calls included. It does not depend on how busy the rest of
// the machine is, and cpu-ns/op of the raw signing over that of durable
// issuance is the most the parallel ratio can reach when the CPUs are the
// bottleneck.
func benchModes(b *testing.B, op func(b *testing.B, i int)) {
	b.Run("mode=sequential", func(b *testing.B) {
		cpu := benchCPU()
		for i := 0; b.Loop(); i++ {
			op(b, i)
		}
		benchReportCPU(b, cpu)
	})
	b.Run("mode=parallel", func(b *testing.B) {
		b.SetParallelism(benchParallelism)
		cpu := benchCPU()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				op(b, i)
			}
		})
		b.StopTimer()
		benchReportCPU(b, cpu)
	})
}

// benchCPU returns the CPU time the process has used.
func benchCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchReportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(benchCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkIssueDurable is the whole issuance path for a parsed PKCS#10
// request: policy checks, user lookup, signing (with the check of the
// signature: before recording for an RSA CA, during the commit for an EC
// one), and the durable, fsynced record in a database on disk.
func BenchmarkIssueDurable(b *testing.B) {
	for _, alg := range benchCAKeys {
		b.Run("ca="+string(alg), func(b *testing.B) {
			env := pkitest.New(b, pkitest.Options{KeyAlgorithm: alg})
			env.Users.Add("alice")
			reqs := benchRequests(b, 8)
			benchModes(b, func(b *testing.B, i int) {
				_, err := env.CA.Issue(context.Background(), pki.IssueRequest{
					Template: "smartcard-logon", Request: reqs[i%len(reqs)], Requester: pki.RequesterOperator, User: "alice",
				})
				if err != nil {
					b.Error(err)
				}
			})
		})
	}
}

// BenchmarkCreateCertificateRaw is the signing alone: x509.CreateCertificate
// with the CA key and the template Issue builds for the same request (the
// fields copied from a certificate Issue made, the SAN and SID extensions as
// ExtraExtensions as Issue adds them), with a fresh random serial each time
// and nothing recorded.
func BenchmarkCreateCertificateRaw(b *testing.B) {
	oidSAN := asn1.ObjectIdentifier{2, 5, 29, 17}
	for _, alg := range benchCAKeys {
		b.Run("ca="+string(alg), func(b *testing.B) {
			env := pkitest.New(b, pkitest.Options{KeyAlgorithm: alg})
			env.Users.Add("alice")
			issued, _ := env.Issue(b, "smartcard-logon", "alice", pki.P256)
			like := issued.Certificate
			var extra []pkix.Extension
			for _, e := range like.Extensions {
				// The SAN (UPN and Kerberos principal) and the SID
				// extension; crypto/x509 writes the others from the
				// template fields.
				if e.Id.Equal(oidSAN) || e.Id.Equal(pki.OIDSIDExtension) {
					extra = append(extra, e)
				}
			}
			if len(extra) != 2 {
				b.Fatalf("found %d of the SAN and SID extensions", len(extra))
			}
			caCert := env.CA.Certificate()
			template := func(serial *big.Int) *x509.Certificate {
				return &x509.Certificate{
					SerialNumber:          serial,
					RawSubject:            like.RawSubject,
					NotBefore:             like.NotBefore,
					NotAfter:              like.NotAfter,
					KeyUsage:              like.KeyUsage,
					ExtKeyUsage:           like.ExtKeyUsage,
					UnknownExtKeyUsage:    like.UnknownExtKeyUsage,
					BasicConstraintsValid: true,
					CRLDistributionPoints: like.CRLDistributionPoints,
					IssuingCertificateURL: like.IssuingCertificateURL,
					SubjectKeyId:          like.SubjectKeyId,
					ExtraExtensions:       extra,
				}
			}
			// The same certificate but for the serial and the signature.
			der, err := x509.CreateCertificate(rand.Reader, template(like.SerialNumber), caCert, like.PublicKey, env.Key)
			if err != nil {
				b.Fatal(err)
			}
			if c, err := x509.ParseCertificate(der); err != nil || !bytes.Equal(c.RawTBSCertificate, like.RawTBSCertificate) {
				b.Fatalf("the raw template does not make what Issue made (%v)", err)
			}
			benchModes(b, func(b *testing.B, _ int) {
				serial := make([]byte, 16)
				if _, err := rand.Read(serial); err != nil {
					b.Error(err)
					return
				}
				serial[0] = serial[0]&0x7f | 0x40
				tmpl := template(new(big.Int).SetBytes(serial))
				if _, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, like.PublicKey, env.Key); err != nil {
					b.Error(err)
				}
			})
		})
	}
}
