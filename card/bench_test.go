package card_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
)

// countCard counts the APDUs that go through a Card.
type countCard struct {
	card.Card
	n int
}

func (c *countCard) Transmit(apdu []byte) ([]byte, error) {
	c.n++
	return c.Card.Transmit(apdu)
}

// ATR passes the inner card's ATR on, so extended-length detection works.
func (c *countCard) ATR() []byte {
	if a, ok := c.Card.(interface{ ATR() []byte }); ok {
		return a.ATR()
	}
	return nil
}

// enroll is the enrollment-shaped sequence of BENCHMARKS.md: management
// key authentication, a P-256 key generated in 9A, a certificate written,
// and read back.
func enroll(b *testing.B, p *card.PIV, cert *x509.Certificate) {
	if err := p.AuthenticateManagementKey(card.MgmtTDES, card.DefaultManagementKey); err != nil {
		b.Fatal(err)
	}
	if _, err := p.GenerateKey(card.SlotAuthentication, card.AlgECCP256, card.KeyPolicy{}); err != nil {
		b.Fatal(err)
	}
	if err := p.SetCertificate(card.SlotAuthentication, cert); err != nil {
		b.Fatal(err)
	}
	if _, err := p.Certificate(card.SlotAuthentication); err != nil {
		b.Fatal(err)
	}
}

func benchCert(b *testing.B) *x509.Certificate {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return selfSign(b, k, "benchmark certificate with a subject of ordinary length")
}

func benchEnroll(b *testing.B, c card.Card) {
	cc := &countCard{Card: c}
	p, err := card.OpenPIV(cc)
	if err != nil {
		b.Fatal(err)
	}
	cert := benchCert(b)
	cc.n = 0
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		enroll(b, p, cert)
	}
	el := time.Since(start)
	b.ReportMetric(float64(cc.n)/float64(b.N), "APDUs/op")
	b.ReportMetric(float64(el.Microseconds())/float64(cc.n), "µs/APDU")
}

func BenchmarkEnrollmentInProcess(b *testing.B) {
	st, err := virtual.NewState(1)
	if err != nil {
		b.Fatal(err)
	}
	benchEnroll(b, virtual.New(st, ""))
}

func BenchmarkEnrollmentPCSC(b *testing.B) {
	st, err := virtual.NewState(1)
	if err != nil {
		b.Fatal(err)
	}
	reader := cardtest.Attach(b, virtual.New(st, ""))
	ctx, err := card.EstablishContext()
	if err != nil {
		b.Fatal(err)
	}
	defer ctx.Release()
	c, err := ctx.Connect(reader)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchEnroll(b, c)
}
