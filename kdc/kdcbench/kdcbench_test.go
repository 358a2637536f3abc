package kdcbench_test

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdcbench"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
)

const adminPassword = "bench-admin-pw"

// realm is a test CA with our KDC (listening, logging at Info level to
// nowhere as a production KDC would log) and a user certificate.
type realm struct {
	s     *kdctest.Server
	addr  string
	dhCfg kdcbench.Config // alice, RSA-2048 key, pkinit-dh
}

func newRealm(t testing.TB) *realm {
	t.Helper()
	s := kdctest.New(t, kdctest.Options{KeyAlgorithm: pki.RSA2048, NoServe: true})
	s.AddUser("alice")
	if _, err := s.Store.AddPrincipal("admin", []byte(adminPassword)); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.CA.CA.Root())
	k, err := kdc.New(kdc.Config{
		Realm: kdctest.Realm, Store: s.Store, Principals: kdc.Stores{s.Store, s.Users},
		Certificate: s.KDCCert, Key: s.KDCKey, Roots: roots,
		Revocation: kdctest.RevocationFromDB(s.CA.DB),
		UDP:        "127.0.0.1:0", TCP: "127.0.0.1:0",
		Log: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	kdctest.Serve(t, k)
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.RSA2048)
	return &realm{s: s, addr: k.TCPAddr().String(), dhCfg: kdcbench.Config{
		Realm: kdctest.Realm, User: "alice", Certificate: cert, Key: key, Roots: roots, Service: kdctest.Service,
	}}
}

// config is the configuration of a mode against the KDC at addr.
func (r *realm) config(addr, mode string, n, conns int) kdcbench.Config {
	c := r.dhCfg
	c.KDC, c.Mode, c.Requests, c.Conns = addr, mode, n, conns
	if mode == kdcbench.Password {
		c.User, c.Password, c.Certificate, c.Key = "admin", []byte(adminPassword), nil, nil
	}
	return c
}

func runMode(t testing.TB, cfg kdcbench.Config) *kdcbench.Result {
	t.Helper()
	res, err := kdcbench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%s against %s: %v", cfg.Mode, cfg.KDC, err)
	}
	if res.OK != res.Requests {
		t.Errorf("%s against %s: %s", cfg.Mode, cfg.KDC, res)
	}
	return res
}

// TestAgainstOurKDC runs every mode with a few requests against our KDC,
// over TCP and UDP.
func TestAgainstOurKDC(t *testing.T) {
	r := newRealm(t)
	for _, mode := range kdcbench.Modes {
		runMode(t, r.config(r.addr, mode, 12, 4))
		if mode == kdcbench.TGS || mode == kdcbench.Password {
			cfg := r.config(r.addr, mode, 8, 2)
			cfg.UDP = true
			runMode(t, cfg)
		}
	}
	// tgs with the TGT read from an MIT credential cache.
	c := r.config(r.addr, kdcbench.TGS, 6, 2)
	cred, err := (&kdc.Client{Realm: c.Realm, KDC: c.KDC, Certificate: c.Certificate, Key: c.Key, Roots: c.Roots}).PKINIT(context.Background(), c.User, kdc.PKINITOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "ccache")
	if err := kdc.WriteCCache(cache, cred); err != nil {
		t.Fatal(err)
	}
	if c.TGT, err = kdcbench.TGTFromCCache(cache, kdctest.Realm); err != nil {
		t.Fatal(err)
	}
	c.Certificate, c.Key = nil, nil
	runMode(t, c)
	// A user the KDC does not know: every request is counted as an error.
	cfg := r.config(r.addr, kdcbench.Password, 4, 2)
	cfg.User = "nobody"
	if _, err := kdcbench.Run(context.Background(), cfg); err == nil {
		t.Error("password mode for an unknown principal: no error")
	}
}

// TestAgainstMITKDC runs every mode with a few requests against MIT
// krb5kdc with the same CA, certificate and keys.
func TestAgainstMITKDC(t *testing.T) {
	r := newRealm(t)
	mit := startMIT(t, r.s, 1)
	for _, mode := range kdcbench.Modes {
		runMode(t, r.config(mit, mode, 12, 4))
	}
}

// TestKDCvsMIT is the side-by-side measurement of BENCHMARKS.md (## KDC):
//
//	KDCBENCH=1 go test -run KDCvsMIT -v -timeout 30m ./kdc/kdcbench/
//
// KDCBENCH_N (requests per mode, default 2000) and KDCBENCH_CONNS
// (default 8) vary the load, KDCBENCH_MODES (comma-separated) picks modes,
// KDCBENCH_UDP=1 sends over UDP, KDCBENCH_ROUNDS (default 3) alternates
// ours and MIT that many times and compares the medians. MIT runs with -w 2.
func TestKDCvsMIT(t *testing.T) {
	if os.Getenv("KDCBENCH") == "" {
		t.Skip("set KDCBENCH=1 to measure")
	}
	n := envInt("KDCBENCH_N", 2000)
	conns := envInt("KDCBENCH_CONNS", 8)
	modes := kdcbench.Modes
	if m := os.Getenv("KDCBENCH_MODES"); m != "" {
		modes = strings.Split(m, ",")
	}
	udp := os.Getenv("KDCBENCH_UDP") != ""
	r := newRealm(t)
	mit := startMIT(t, r.s, 2)
	var table strings.Builder
	fmt.Fprintf(&table, "| mode | ours logons/s | MIT logons/s | ratio | target | met | ours p50 / p99 | MIT p50 / p99 | errors ours / MIT |\n|---|---|---|---|---|---|---|---|---|\n")
	rounds := envInt("KDCBENCH_ROUNDS", 3)
	for _, mode := range modes {
		// Rounds alternate ours and MIT so that both see the same
		// background load; the medians are compared.
		var ours, theirs []*kdcbench.Result
		var ratios []string
		for range rounds {
			oursCfg, theirsCfg := r.config(r.addr, mode, n, conns), r.config(mit, mode, n, conns)
			oursCfg.UDP, theirsCfg.UDP = udp, udp
			o := runMode(t, oursCfg)
			m := runMode(t, theirsCfg)
			t.Logf("ours %s", o)
			t.Logf("MIT  %s", m)
			ours, theirs = append(ours, o), append(theirs, m)
			ratios = append(ratios, fmt.Sprintf("%.2f", o.Rate/m.Rate))
		}
		o, m := median(ours), median(theirs)
		ratio := o.Rate / m.Rate
		target := 1.0
		if mode == kdcbench.PKINITDH {
			target = 1.5
		}
		met := "yes"
		if ratio < target {
			met = "no"
		}
		errs := func(rs []*kdcbench.Result) (n int) {
			for _, r := range rs {
				n += r.ErrorCount()
			}
			return n
		}
		fmt.Fprintf(&table, "| %s | %.0f | %.0f | %.2f× (rounds %s) | ≥ %.1f× | %s | %s / %s | %s / %s | %d / %d |\n",
			mode, o.Rate, m.Rate, ratio, strings.Join(ratios, ", "), target, met,
			ms(o.P50), ms(o.P99), ms(m.P50), ms(m.P99), errs(ours), errs(theirs))
	}
	t.Logf("N=%d conns=%d udp=%v\n%s", n, conns, udp, table.String())
}

// median is the result with the median rate.
func median(rs []*kdcbench.Result) *kdcbench.Result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b *kdcbench.Result) int { return cmp.Compare(a.Rate, b.Rate) })
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// startMIT runs krb5kdc (with -w workers when workers > 1) for the realm
// of s: PKINIT with the KDC certificate and CA of s, alice (PKINIT only),
// admin (password) and the service, aes256-cts-hmac-sha1-96 only. It
// returns the KDC's address.
func startMIT(t testing.TB, s *kdctest.Server, workers int) string {
	t.Helper()
	return s.StartMITKDC(t, kdctest.MITKDCConfig{
		EKUChecking: "scLogin", AllowUPN: true, DHMinBits: 2048, MasterKeyType: "aes256-cts-hmac-sha1-96",
		Workers: workers, PKINITUsers: []string{"alice"}, Passwords: map[string]string{"admin": adminPassword},
		Services: []string{kdctest.Service},
	}).Addr
}
