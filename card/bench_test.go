package card_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
)

// countCard counts the APDUs that go through a Card, and how long each
// takes.
type countCard struct {
	card.Card
	n     int
	times []time.Duration
}

func (c *countCard) Transmit(apdu []byte) ([]byte, error) {
	c.n++
	t0 := time.Now()
	r, err := c.Card.Transmit(apdu)
	c.times = append(c.times, time.Since(t0))
	return r, err
}

// ATR passes the inner card's ATR on, so extended-length detection works.
func (c *countCard) ATR() []byte {
	if a, ok := c.Card.(interface{ ATR() []byte }); ok {
		return a.ATR()
	}
	return nil
}

func (c *countCard) reset() { c.n, c.times = 0, c.times[:0] }

// median of the APDU times, in milliseconds.
func (c *countCard) medianMS() float64 {
	return medianMS(c.times)
}

func medianMS(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2]) / float64(time.Millisecond)
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
	cc.reset()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		enroll(b, p, cert)
	}
	el := time.Since(start)
	b.ReportMetric(float64(cc.n)/float64(b.N), "APDUs/op")
	b.ReportMetric(float64(el.Microseconds())/float64(cc.n), "µs/APDU")
	b.ReportMetric(cc.medianMS(), "med-ms/APDU")
}

func BenchmarkEnrollmentInProcess(b *testing.B) {
	st, err := virtual.NewState(1)
	if err != nil {
		b.Fatal(err)
	}
	benchEnroll(b, virtual.New(st, ""))
}

// apduCounter is a slog.Handler for the emulator's vpcd log: it counts the
// APDUs the card answers (one "apdu" debug record each, header and status
// word only) by instruction byte, whoever sends them.
type apduCounter struct {
	mu   sync.Mutex
	n    int
	ins  map[string]int
	last time.Time
	gaps []time.Duration // between one APDU reaching the card and the next
}

func (h *apduCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *apduCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *apduCounter) WithGroup(string) slog.Handler            { return h }
func (h *apduCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "apdu" {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	if !h.last.IsZero() {
		h.gaps = append(h.gaps, r.Time.Sub(h.last))
	}
	h.last = r.Time
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "cmd" {
			if s := a.Value.String(); len(s) >= 4 {
				h.ins[s[2:4]]++
			}
			return false
		}
		return true
	})
	return nil
}

// take returns the count, the instruction histogram and the median time
// between consecutive APDUs at the card since the last take, and starts
// over.
func (h *apduCounter) take() (int, map[string]int, float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, ins, gap := h.n, h.ins, medianMS(h.gaps)
	h.n, h.ins, h.gaps, h.last = 0, map[string]int{}, h.gaps[:0], time.Time{}
	return n, ins, gap
}

// insNames names the instructions of the sequence, for the log.
var insNames = map[string]string{
	"A4": "SELECT", "FD": "GET VERSION", "F8": "GET SERIAL", "87": "GENERAL AUTHENTICATE",
	"47": "GENERATE", "DB": "PUT DATA", "CB": "GET DATA", "C0": "GET RESPONSE", "20": "VERIFY",
	"F7": "GET METADATA",
}

func histogram(ins map[string]int, ops int) string {
	var parts []string
	for k, v := range ins {
		name := insNames[k]
		if name == "" {
			name = "INS " + k
		}
		parts = append(parts, fmt.Sprintf("%s %.4g", name, float64(v)/float64(ops)))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// BenchmarkEnrollmentPCSC runs the enrollment sequence through pcscd and
// vpcd against one emulator in one reader: with this package's client (the
// PIV opened once, or connected and opened for each sequence as a
// command-line tool would), and with yubico-piv-tool (one process per
// sequence: -a generate -a import-certificate -a read-certificate on 9A).
// APDUs/op is counted at the card, the same way for both clients.
// med-ms/APDU is the median time of one Transmit through pcscd+vpcd as
// our client sees it; yubico-piv-tool's cannot be timed from outside.
// card-gap-ms, for both, is the median time from one APDU reaching the card
// to the next (a round trip through pcscd+vpcd plus the client's own time
// between commands). ms/APDU is the wall time of the run divided by the
// APDUs (for yubico-piv-tool it includes starting a process per sequence).
func BenchmarkEnrollmentPCSC(b *testing.B) {
	name, addr := cardtest.Reader(b)
	st, err := virtual.NewState(1)
	if err != nil {
		b.Fatal(err)
	}
	vc := virtual.New(st, "")
	counter := &apduCounter{ins: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- vc.ServeVPCD(ctx, addr, slog.New(counter)) }()
	pc, err := card.EstablishContext()
	if err != nil {
		b.Fatal(err)
	}
	present := func() bool {
		info, err := pc.Inspect(name, false)
		return err == nil && info.Present
	}
	b.Cleanup(func() {
		cancel()
		<-done
		for deadline := time.Now().Add(cardtest.CardWait); present() && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		pc.Release()
	})
	for deadline := time.Now().Add(cardtest.CardWait); !present(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("pcscd did not see the card in %q", name)
		}
	}
	cert := benchCert(b)

	b.Run("client=scstation/open=once", func(b *testing.B) {
		c, err := pc.Connect(name)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cc := &countCard{Card: c}
		p, err := card.OpenPIV(cc)
		if err != nil {
			b.Fatal(err)
		}
		cc.reset()
		counter.take()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			enroll(b, p, cert)
		}
		el := time.Since(start)
		b.StopTimer()
		n, ins, gap := counter.take()
		b.ReportMetric(float64(n)/float64(b.N), "APDUs/op")
		b.ReportMetric(gap, "card-gap-ms")
		b.ReportMetric(float64(el)/float64(time.Millisecond)/float64(n), "ms/APDU")
		b.ReportMetric(cc.medianMS(), "med-ms/APDU")
		b.Logf("N=%d per op: %s", b.N, histogram(ins, b.N))
	})

	b.Run("client=scstation/open=each", func(b *testing.B) {
		var times []time.Duration
		counter.take()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			c, err := pc.Connect(name)
			if err != nil {
				b.Fatal(err)
			}
			cc := &countCard{Card: c, times: times}
			p, err := card.OpenPIV(cc)
			if err != nil {
				b.Fatal(err)
			}
			enroll(b, p, cert)
			p.Close()
			times = cc.times
		}
		el := time.Since(start)
		b.StopTimer()
		n, ins, gap := counter.take()
		b.ReportMetric(float64(n)/float64(b.N), "APDUs/op")
		b.ReportMetric(gap, "card-gap-ms")
		b.ReportMetric(float64(el)/float64(time.Millisecond)/float64(n), "ms/APDU")
		b.ReportMetric(medianMS(times), "med-ms/APDU")
		b.Logf("N=%d per op: %s", b.N, histogram(ins, b.N))
	})

	b.Run("client=yubico-piv-tool", func(b *testing.B) {
		ypt, err := exec.LookPath("yubico-piv-tool")
		if err != nil {
			if os.Getenv("CI") == "true" {
				b.Fatal("yubico-piv-tool is not installed")
			}
			b.Skip("yubico-piv-tool is not installed")
		}
		certFile := filepath.Join(b.TempDir(), "cert.pem")
		if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
			b.Fatal(err)
		}
		args := []string{"-r", name, "--key=" + fmt.Sprintf("%X", card.DefaultManagementKey), "-s", "9a", "-A", "ECCP256",
			"-a", "generate", "-a", "import-certificate", "-i", certFile, "-a", "read-certificate", "-o", os.DevNull}
		counter.take()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if out, err := exec.Command(ypt, args...).CombinedOutput(); err != nil {
				b.Fatalf("yubico-piv-tool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		el := time.Since(start)
		b.StopTimer()
		n, ins, gap := counter.take()
		b.ReportMetric(float64(n)/float64(b.N), "APDUs/op")
		b.ReportMetric(gap, "card-gap-ms")
		b.ReportMetric(float64(el)/float64(time.Millisecond)/float64(n), "ms/APDU")
		b.Logf("N=%d per op: %s", b.N, histogram(ins, b.N))
	})
}
