package kdcbench_test

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdcbench"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
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
	if err := k.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
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
	mit := startMITKDC(t, r.s, 1)
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
	mit := startMITKDC(t, r.s, 2)
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

// startMITKDC runs krb5kdc (with -w workers when workers > 1) for the
// realm of s: PKINIT with the KDC certificate and CA of s, alice (PKINIT
// only), admin (password) and the service, aes256-cts-hmac-sha1-96 only.
// It returns the KDC's address. The setup is that of kdc/mit_kdc_test.go.
func startMITKDC(t testing.TB, s *kdctest.Server, workers int) string {
	t.Helper()
	p := testpeer.Require(t, "krb5kdc", "kdb5_util", "kadmin.local")
	dir := t.TempDir()
	root := pkitest.WritePEM(t, dir, "root.pem", s.CA.CA.Root())
	kdcCert := pkitest.WritePEM(t, dir, "kdc.pem", s.KDCCert)
	kdcKey := pkitest.WritePEM(t, dir, "kdc.key", s.KDCKey)
	env := append(os.Environ(), "KRB5_CONFIG="+filepath.Join(dir, "krb5.conf"), "KRB5_KDC_PROFILE="+filepath.Join(dir, "kdc.conf"),
		"KRB5CCNAME=FILE:"+filepath.Join(dir, "ccache"), "KRB5RCACHEDIR="+dir)
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "db", "kadm5.acl"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(prog string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, prog, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
		}
	}
	var addr string
	writeConf := func(port int) {
		addr = fmt.Sprintf("127.0.0.1:%d", port)
		krb5 := fmt.Sprintf("[libdefaults]\n\tdefault_realm = %[1]s\n\tdns_lookup_kdc = false\n\trdns = false\n\tudp_preference_limit = 1\n"+
			"[realms]\n\t%[1]s = {\n\t\tkdc = %[2]s\n\t\tpkinit_anchors = FILE:%[3]s\n\t}\n", kdctest.Realm, addr, root)
		kdcConf := fmt.Sprintf("[kdcdefaults]\n\tkdc_listen = %[2]s\n\tkdc_tcp_listen = %[2]s\n"+
			"[realms]\n\t%[1]s = {\n\t\tdatabase_name = %[3]s/db/principal\n\t\tkey_stash_file = %[3]s/db/stash\n\t\tacl_file = %[3]s/db/kadm5.acl\n"+
			"\t\tsupported_enctypes = aes256-cts-hmac-sha1-96:normal\n\t\tmaster_key_type = aes256-cts-hmac-sha1-96\n"+
			"\t\tpkinit_identity = FILE:%[4]s,%[5]s\n\t\tpkinit_anchors = FILE:%[6]s\n"+
			"\t\tpkinit_eku_checking = scLogin\n\t\tpkinit_allow_upn = true\n\t\tpkinit_dh_min_bits = 2048\n\t}\n[logging]\n\tkdc = FILE:%[3]s/kdc.log\n",
			kdctest.Realm, addr, dir, kdcCert, kdcKey, root)
		for name, text := range map[string]string{"krb5.conf": krb5, "kdc.conf": kdcConf} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	writeConf(port)
	run(p[1], "create", "-s", "-r", kdctest.Realm, "-P", "masterpw")
	run(p[2], "-r", kdctest.Realm, "-q", "addprinc +requires_preauth -nokey alice")
	run(p[2], "-r", kdctest.Realm, "-q", "addprinc +requires_preauth -pw "+adminPassword+" admin")
	run(p[2], "-r", kdctest.Realm, "-q", "addprinc -randkey "+kdctest.Service)
	args := []string{"-n", "-r", kdctest.Realm}
	if workers > 1 {
		args = append(args, "-w", strconv.Itoa(workers))
	}
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if port, err = freePort(); err != nil {
				t.Fatal(err)
			}
			writeConf(port)
		}
		cmd := exec.Command(p[0], args...)
		cmd.Env = env
		// -w forks workers: a process group lets the cleanup end them all.
		cmd.SysProcAttr = newProcessGroup()
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting krb5kdc: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			killGroup(cmd.Process.Pid)
			<-exited
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case err := <-exited:
				killGroup(cmd.Process.Pid)
				if attempt < 3 {
					t.Logf("krb5kdc exited (%v), trying another port: %s", err, out)
					goto retry
				}
				t.Fatalf("krb5kdc exited: %v\n%s", err, out)
			default:
			}
			if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				c.Close()
				t.Cleanup(func() {
					if t.Failed() {
						log, _ := os.ReadFile(filepath.Join(dir, "kdc.log"))
						t.Logf("krb5kdc log:\n%s", log)
					}
					stop()
				})
				return addr
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		t.Fatalf("krb5kdc did not listen on %s:\n%s", addr, out)
	retry:
	}
}

func freePort() (int, error) {
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free for both TCP and UDP")
}
