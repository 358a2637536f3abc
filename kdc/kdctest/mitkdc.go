package kdctest

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/pki/pkitest"
)

// MITKDCConfig says how to set up an MIT krb5kdc for a test (REFERENCE.md
// §5): its realm, PKINIT identity and anchors, the checks it makes and the
// principals it starts with.
type MITKDCConfig struct {
	// Realm defaults to Realm.
	Realm string
	// Root is the trust anchor for client certificates (pkinit_anchors)
	// and, in Krb5Conf, for the KDC's certificate.
	Root *x509.Certificate
	// KDCCert and KDCKey are the KDC's PKINIT identity (pkinit_identity).
	KDCCert *x509.Certificate
	KDCKey  crypto.Signer
	// EKUChecking is pkinit_eku_checking ("" keeps MIT's default,
	// kpClientAuth); AllowUPN sets pkinit_allow_upn = true.
	EKUChecking string
	AllowUPN    bool
	// DHMinBits is pkinit_dh_min_bits (0 keeps MIT's default).
	DHMinBits int
	// MasterKeyType is master_key_type (default MIT's).
	MasterKeyType string
	// Workers > 1 runs krb5kdc -w Workers (forked worker processes).
	Workers int
	// PKINITUsers are created with no keys and +requires_preauth: they
	// can only log on with PKINIT.
	PKINITUsers []string
	// Passwords are password principals (name → password), with
	// +requires_preauth.
	Passwords map[string]string
	// Services are created with random keys; Keytab exports them.
	Services []string
	// Krb5ConfInclude and KDCConfInclude are files krb5.conf includes
	// first and kdc.conf includes last (what scstation kdc export writes),
	// "" for none.
	Krb5ConfInclude, KDCConfInclude string
}

// MITKDC is a running MIT krb5kdc with its own database and configuration
// in Dir, listening on Addr (TCP and UDP on 127.0.0.1). It supports only
// aes256-cts-hmac-sha1-96, the enctype all tests share with our KDC.
type MITKDC struct {
	Dir string
	// Addr is host:port of the KDC, the same port for TCP and UDP.
	Addr string
	// Krb5Conf and KDCConf are the paths of krb5.conf and kdc.conf.
	Krb5Conf, KDCConf string
	Realm             string

	krb5kdc, kdb5Util, kadminLocal string
	cfg                            MITKDCConfig
	stop                           func()
}

// RequireMITPKINIT skips the test (fails it under CI=true) when MIT's
// PKINIT plugin (Debian krb5-pkinit) is not installed.
func RequireMITPKINIT(tb testing.TB) {
	tb.Helper()
	var plugins []string
	for _, pattern := range []string{"/usr/lib/*/krb5/plugins/preauth/pkinit.so", "/usr/lib/krb5/plugins/preauth/pkinit.so", "/usr/lib64/krb5/plugins/preauth/pkinit.so"} {
		m, _ := filepath.Glob(pattern)
		plugins = append(plugins, m...)
	}
	if len(plugins) == 0 {
		if os.Getenv("CI") == "true" {
			tb.Fatal("peer krb5-pkinit (pkinit.so) is not installed (run make deps)")
		}
		tb.Skip("peer krb5-pkinit (pkinit.so) is not installed (run make deps)")
	}
}

// PKCS11Identity is the identity (kinit -X X509_user_identity=...) with
// which MIT kinit reaches a card through OpenSC's PKCS#11 module; kinit
// must run with cardtest.OpenSCEnv for the card's reader so that OpenSC
// sees only that card. attrs (such as "certid=01") are appended. It skips
// the test (fails it under CI=true) when OpenSC's module is not installed.
func PKCS11Identity(tb testing.TB, attrs ...string) string {
	tb.Helper()
	id := "PKCS11:module_name=" + cardtest.OpenSCModule(tb)
	for _, a := range attrs {
		id += ":" + a
	}
	return id
}

// StartMITKDC creates a realm database (kdb5_util create), adds the
// configured principals (kadmin.local) and runs krb5kdc in the foreground
// until Stop or the end of the test. A port taken between choosing and
// binding it is retried. It skips the test (fails it under CI=true) when
// MIT's KDC or its PKINIT plugin is not installed. On failure the test
// log gets krb5kdc's log.
func StartMITKDC(tb testing.TB, cfg MITKDCConfig) *MITKDC {
	tb.Helper()
	p := testpeer.Require(tb, "krb5kdc", "kdb5_util", "kadmin.local")
	if cfg.KDCCert != nil {
		RequireMITPKINIT(tb)
	}
	if cfg.Realm == "" {
		cfg.Realm = Realm
	}
	dir := tb.TempDir()
	k := &MITKDC{Dir: dir, Realm: cfg.Realm, Krb5Conf: filepath.Join(dir, "krb5.conf"), KDCConf: filepath.Join(dir, "kdc.conf"),
		krb5kdc: p[0], kdb5Util: p[1], kadminLocal: p[2], cfg: cfg}
	if cfg.Root != nil {
		pkitest.WritePEM(tb, dir, "root.pem", cfg.Root)
	}
	if cfg.KDCCert != nil {
		pkitest.WritePEM(tb, dir, "kdc.pem", cfg.KDCCert)
		pkitest.WritePEM(tb, dir, "kdc.key", cfg.KDCKey)
	}
	if err := os.MkdirAll(k.path("db"), 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(k.path("db/kadm5.acl"), nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	port, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	k.writeConfig(tb, port)
	k.run(tb, k.kdb5Util, "create", "-s", "-r", cfg.Realm, "-P", "masterpw")
	for _, u := range cfg.PKINITUsers {
		k.AddPrincipal(tb, "addprinc +requires_preauth -nokey "+u)
	}
	for name, pw := range cfg.Passwords {
		k.AddPrincipal(tb, "addprinc +requires_preauth -pw "+pw+" "+name)
	}
	for _, s := range cfg.Services {
		k.AddPrincipal(tb, "addprinc -randkey "+s)
	}
	if _, fuzz := tb.(*testing.F); !fuzz {
		tb.Cleanup(func() {
			if tb.Failed() {
				log, _ := os.ReadFile(k.path("kdc.log"))
				tb.Logf("krb5kdc log (%s):\n%s", dir, log)
			}
		})
	}
	k.start(tb)
	return k
}

// Restart stops krb5kdc and starts it again (on another port if its own
// is taken meanwhile): MIT reads the PKINIT files and the CRL only when it
// starts.
func (k *MITKDC) Restart(tb testing.TB) {
	tb.Helper()
	k.Stop()
	k.start(tb)
}

// start runs krb5kdc as configured until Stop or the end of the test,
// retrying on another port when it cannot bind its own.
func (k *MITKDC) start(tb testing.TB) {
	tb.Helper()
	cfg := k.cfg
	args := []string{"-n", "-r", cfg.Realm}
	if cfg.Workers > 1 {
		args = append(args, "-w", strconv.Itoa(cfg.Workers))
	}
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			port, err := FreePort()
			if err != nil {
				tb.Fatal(err)
			}
			k.writeConfig(tb, port)
		}
		outPath := k.path(fmt.Sprintf("krb5kdc-%d.out", attempt))
		out, err := os.Create(outPath)
		if err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(k.krb5kdc, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = k.Env(), out, out
		// -w forks workers: a process group lets Stop end them all.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		err = cmd.Start()
		out.Close()
		if err != nil {
			tb.Fatalf("starting krb5kdc: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stopped := false
		stop := func() {
			if stopped {
				return
			}
			stopped = true
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		ready, waitErr := waitListening(k.Addr, exited)
		if ready {
			k.stop = stop
			tb.Cleanup(stop)
			return
		}
		stop()
		text, _ := os.ReadFile(outPath)
		log, _ := os.ReadFile(k.path("kdc.log"))
		if attempt < 3 && strings.Contains(string(text)+string(log), "in use") {
			tb.Logf("krb5kdc could not bind %s, trying another port", k.Addr)
			continue
		}
		tb.Fatalf("krb5kdc did not start listening on %s: %v\n%s\n%s", k.Addr, waitErr, text, log)
	}
}

// Stop ends krb5kdc and its workers now (the test's cleanup does it
// otherwise).
func (k *MITKDC) Stop() { k.stop() }

// Env is the environment MIT programs need to use this realm: KRB5_CONFIG,
// KRB5_KDC_PROFILE, a credential cache and replay cache in Dir, then extra
// (later entries win).
func (k *MITKDC) Env(extra ...string) []string {
	env := append(os.Environ(), "KRB5_CONFIG="+k.Krb5Conf, "KRB5_KDC_PROFILE="+k.KDCConf,
		"KRB5CCNAME=FILE:"+k.path("ccache"), "KRB5RCACHEDIR="+k.Dir)
	return append(env, extra...)
}

// AddPrincipal runs one kadmin.local query ("addprinc -randkey
// host/x.example.test") against the realm's database.
func (k *MITKDC) AddPrincipal(tb testing.TB, query string) {
	tb.Helper()
	k.run(tb, k.kadminLocal, "-r", k.Realm, "-q", query)
}

// Keytab exports principal's keys into a keytab in Dir (kadmin ktadd,
// which gives the principal new keys) and returns its path.
func (k *MITKDC) Keytab(tb testing.TB, principal string) string {
	tb.Helper()
	path := k.path(strings.NewReplacer("/", "_", "@", "_").Replace(principal) + ".keytab")
	k.AddPrincipal(tb, "ktadd -k "+path+" "+principal)
	return path
}

func (k *MITKDC) path(name string) string { return filepath.Join(k.Dir, name) }

func (k *MITKDC) run(tb testing.TB, prog string, args ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = k.Env()
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
}

// writeConfig writes krb5.conf and kdc.conf for a port.
func (k *MITKDC) writeConfig(tb testing.TB, port int) {
	tb.Helper()
	cfg := k.cfg
	k.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	var anchors, realmExtra string
	if cfg.Root != nil {
		anchors = "\t\tpkinit_anchors = FILE:" + k.path("root.pem") + "\n"
	}
	if cfg.KDCCert != nil {
		realmExtra += "\t\tpkinit_identity = FILE:" + k.path("kdc.pem") + "," + k.path("kdc.key") + "\n"
	}
	realmExtra += anchors
	if cfg.MasterKeyType != "" {
		realmExtra += "\t\tmaster_key_type = " + cfg.MasterKeyType + "\n"
	}
	if cfg.EKUChecking != "" {
		realmExtra += "\t\tpkinit_eku_checking = " + cfg.EKUChecking + "\n"
	}
	if cfg.AllowUPN {
		realmExtra += "\t\tpkinit_allow_upn = true\n"
	}
	if cfg.DHMinBits != 0 {
		realmExtra += fmt.Sprintf("\t\tpkinit_dh_min_bits = %d\n", cfg.DHMinBits)
	}
	var krb5Include, kdcInclude string
	if cfg.Krb5ConfInclude != "" {
		krb5Include = "include " + cfg.Krb5ConfInclude + "\n"
	}
	if cfg.KDCConfInclude != "" {
		kdcInclude = "include " + cfg.KDCConfInclude + "\n"
	}
	krb5 := krb5Include + fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_kdc = false
	rdns = false
	udp_preference_limit = 1

[realms]
	%[1]s = {
		kdc = %[2]s
%[3]s	}
`, cfg.Realm, k.Addr, anchors)
	kdcConf := fmt.Sprintf(`[kdcdefaults]
	kdc_listen = %[2]s
	kdc_tcp_listen = %[2]s

[realms]
	%[1]s = {
		database_name = %[3]s
		key_stash_file = %[4]s
		acl_file = %[5]s
		supported_enctypes = aes256-cts-hmac-sha1-96:normal
%[6]s	}

[logging]
	kdc = FILE:%[7]s
`, cfg.Realm, k.Addr, k.path("db/principal"), k.path("db/stash"), k.path("db/kadm5.acl"), realmExtra, k.path("kdc.log")) + kdcInclude
	for name, text := range map[string]string{k.Krb5Conf: krb5, k.KDCConf: kdcConf} {
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// waitListening polls a TCP address for up to 10 s. It returns false and
// the exit error if the process exited, false and nil if it timed out.
func waitListening(addr string, exited chan error) (bool, error) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("krb5kdc exited")
			}
			exited <- err // for stop
			return false, err
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false, nil
}

// FreePort returns a port free for both TCP and UDP on 127.0.0.1. It is
// closed again before the caller binds it, so callers retry when it was
// taken in between (StartMITKDC does).
func FreePort() (int, error) {
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
	return 0, errors.New("no port free for both TCP and UDP")
}

// StartMITKDC runs an MIT krb5kdc for this realm: its CA root as anchor,
// its KDC certificate and key as PKINIT identity, with cfg's principals
// and checks (cfg.Root, KDCCert and KDCKey are filled in).
func (s *Server) StartMITKDC(tb testing.TB, cfg MITKDCConfig) *MITKDC {
	tb.Helper()
	cfg.Root, cfg.KDCCert, cfg.KDCKey = s.CA.CA.Root(), s.KDCCert, s.KDCKey
	return StartMITKDC(tb, cfg)
}
