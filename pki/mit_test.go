package pki_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

// mitPeers are the MIT Kerberos programs the test runs.
type mitPeers struct {
	krb5kdc, kdb5Util, kadminLocal, kinit, klist string
}

// requireMIT finds the MIT programs and the PKINIT plugin, skipping the test
// (failing it under CI=true) when one is missing, as testpeer does.
func requireMIT(t *testing.T) mitPeers {
	t.Helper()
	p := testpeer.Require(t, "krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist")
	var plugins []string
	for _, pattern := range []string{"/usr/lib/*/krb5/plugins/preauth/pkinit.so", "/usr/lib/krb5/plugins/preauth/pkinit.so", "/usr/lib64/krb5/plugins/preauth/pkinit.so"} {
		m, _ := filepath.Glob(pattern)
		plugins = append(plugins, m...)
	}
	if len(plugins) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("peer krb5-pkinit (pkinit.so) is not installed (run make deps)")
		}
		t.Skip("peer krb5-pkinit (pkinit.so) is not installed (run make deps)")
	}
	return mitPeers{krb5kdc: p[0], kdb5Util: p[1], kadminLocal: p[2], kinit: p[3], klist: p[4]}
}

// mitKDCConfig is what differs between the KDCs of the test.
type mitKDCConfig struct {
	ekuChecking string // pkinit_eku_checking; "" leaves MIT's default (kpClientAuth)
	allowUPN    bool   // pkinit_allow_upn
}

// mitKDC is a running krb5kdc with its own database and configuration in dir.
type mitKDC struct {
	peers mitPeers
	dir   string
	port  int
	env   []string
}

// freeKDCPort returns a port free for both TCP and UDP on 127.0.0.1. It is
// closed again before krb5kdc binds it; startMITKDC retries if it was taken.
func freeKDCPort() (int, error) {
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

func (k *mitKDC) path(name string) string { return filepath.Join(k.dir, name) }

// writeConfig writes krb5.conf and kdc.conf for the current port.
func (k *mitKDC) writeConfig(t *testing.T, cfg mitKDCConfig) {
	t.Helper()
	krb5 := fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_kdc = false
	rdns = false
	udp_preference_limit = 1

[realms]
	%[1]s = {
		kdc = 127.0.0.1:%[2]d
		pkinit_anchors = FILE:%[3]s
	}
`, pkitest.Realm, k.port, k.path("root.pem"))
	var extra string
	if cfg.ekuChecking != "" {
		extra += "\t\tpkinit_eku_checking = " + cfg.ekuChecking + "\n"
	}
	if cfg.allowUPN {
		extra += "\t\tpkinit_allow_upn = true\n"
	}
	kdc := fmt.Sprintf(`[kdcdefaults]
	kdc_listen = 127.0.0.1:%[2]d
	kdc_tcp_listen = 127.0.0.1:%[2]d

[realms]
	%[1]s = {
		database_name = %[3]s
		key_stash_file = %[4]s
		acl_file = %[5]s
		supported_enctypes = aes256-cts-hmac-sha1-96:normal
		pkinit_identity = FILE:%[6]s,%[7]s
		pkinit_anchors = FILE:%[8]s
%[9]s	}

[logging]
	kdc = FILE:%[10]s
`, pkitest.Realm, k.port, k.path("db/principal"), k.path("db/stash"), k.path("db/kadm5.acl"),
		k.path("kdc.pem"), k.path("kdc.key"), k.path("root.pem"), extra, k.path("kdc.log"))
	for name, text := range map[string]string{"krb5.conf": krb5, "kdc.conf": kdc} {
		if err := os.WriteFile(k.path(name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// run runs an MIT admin program in the KDC's environment.
func (k *mitKDC) run(t *testing.T, prog string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = k.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
}

// startMITKDC creates a realm database in dir (which already holds
// root.pem, kdc.pem and kdc.key), adds the principals, and runs krb5kdc in
// the foreground until the test ends.
func startMITKDC(t *testing.T, peers mitPeers, dir string, cfg mitKDCConfig, principals ...string) *mitKDC {
	t.Helper()
	k := &mitKDC{peers: peers, dir: dir}
	k.env = append(os.Environ(),
		"KRB5_CONFIG="+k.path("krb5.conf"),
		"KRB5_KDC_PROFILE="+k.path("kdc.conf"),
		"KRB5CCNAME=FILE:"+k.path("ccache"),
		"KRB5RCACHEDIR="+dir,
	)
	if err := os.MkdirAll(k.path("db"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.path("db/kadm5.acl"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if k.port, err = freeKDCPort(); err != nil {
		t.Fatal(err)
	}
	k.writeConfig(t, cfg)
	k.run(t, peers.kdb5Util, "create", "-s", "-r", pkitest.Realm, "-P", "masterpw")
	for _, p := range principals {
		k.run(t, peers.kadminLocal, "-r", pkitest.Realm, "-q", "addprinc +requires_preauth -nokey "+p)
	}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(k.path("kdc.log"))
			t.Logf("KDC log (%s):\n%s", dir, log)
		}
	})
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if k.port, err = freeKDCPort(); err != nil {
				t.Fatal(err)
			}
			k.writeConfig(t, cfg)
		}
		stderr, err := os.Create(k.path(fmt.Sprintf("krb5kdc-%d.out", attempt)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(peers.krb5kdc, "-n", "-r", pkitest.Realm)
		cmd.Env, cmd.Stdout, cmd.Stderr = k.env, stderr, stderr
		if err := cmd.Start(); err != nil {
			stderr.Close()
			t.Fatalf("starting krb5kdc: %v", err)
		}
		stderr.Close()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		ready, waitErr := waitForKDC(k.port, exited)
		if ready {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			return k
		}
		if waitErr == nil { // timed out, still running
			cmd.Process.Kill()
			waitErr = <-exited
		}
		out, _ := os.ReadFile(stderr.Name())
		log, _ := os.ReadFile(k.path("kdc.log"))
		if attempt < 3 && strings.Contains(string(out)+string(log), "in use") {
			t.Logf("krb5kdc could not bind port %d, trying another", k.port)
			continue
		}
		t.Fatalf("krb5kdc did not start listening on 127.0.0.1:%d: %v\n%s\n%s", k.port, waitErr, out, log)
	}
}

// waitForKDC polls the KDC's TCP port for up to 10 s. It returns false and
// the exit error if the KDC exited, false and nil if it timed out.
func waitForKDC(port int, exited chan error) (bool, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("krb5kdc exited")
			}
			exited <- err // for the caller's cleanup
			return false, err
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return true, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false, nil
}

// kinitResult is what kinit and klist said.
type kinitResult struct {
	err   error  // kinit's exit status
	out   string // kinit's output
	klist string // klist's output (and error)
	tgt   bool   // klist shows the realm's TGT
	trace string // KRB5_TRACE of kinit
}

// kinit runs kinit with PKINIT from a certificate file and key file, into a
// fresh credential cache named after the case, then klist on that cache.
func (k *mitKDC) kinit(t *testing.T, name, principal, cert, key string, extra ...string) kinitResult {
	t.Helper()
	name = strings.NewReplacer("/", "-", " ", "-").Replace(name)
	ccache := "FILE:" + k.path("ccache-"+name)
	tracePath := k.path("trace-" + name)
	env := append(k.env[:len(k.env):len(k.env)], "KRB5CCNAME="+ccache, "KRB5_TRACE="+tracePath)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	args := append([]string{"-X", "X509_user_identity=FILE:" + cert + "," + key}, extra...)
	args = append(args, principal)
	cmd := exec.CommandContext(ctx, k.peers.kinit, args...)
	cmd.Env = env // stdin is /dev/null
	out, err := cmd.CombinedOutput()
	var r kinitResult
	r.err, r.out = err, strings.TrimSpace(string(out))
	if ctx.Err() != nil {
		r.err = fmt.Errorf("kinit timed out: %w", r.err)
	}
	trace, _ := os.ReadFile(tracePath)
	r.trace = string(trace)
	kl := exec.CommandContext(ctx, k.peers.klist)
	kl.Env = env
	klOut, klErr := kl.CombinedOutput()
	r.klist = string(klOut)
	if klErr != nil {
		r.klist += "(klist: " + klErr.Error() + ")"
	}
	r.tgt = klErr == nil && strings.Contains(r.klist, "krbtgt/"+pkitest.Realm+"@"+pkitest.Realm)
	return r
}

// TestMITKerberosAcceptsProfiles runs MIT Kerberos 5 (krb5kdc, kinit) against
// our certificates: the KDC certificate from the kdc template, user
// certificates from smartcard-logon (id-pkinit-san, the form MIT expects by
// default) and from a Windows-style variant (UPN SAN and smart card logon EKU
// only, which MIT accepts with pkinit_eku_checking = scLogin and
// pkinit_allow_upn = true), and checks that wrong certificates are refused.
//
// MIT compares a UPN with the requested principal as a principal name, realm
// case included (MIT 1.20 has no aliases in its database): the AD-style UPN
// alice@example.test never matches alice@EXAMPLE.TEST. The Windows form is
// therefore tried with a user whose UPN is spelt as the principal, and
// alice's AD-style UPN is a refusal case.
func TestMITKerberosAcceptsProfiles(t *testing.T) {
	peers := requireMIT(t)
	userAlgs := []pki.KeyAlgorithm{pki.RSA2048, pki.P256}
	for _, caAlg := range []pki.KeyAlgorithm{pki.P256, pki.RSA2048} {
		t.Run("ca-"+string(caAlg), func(t *testing.T) {
			t.Parallel() // every KDC has its own port and directory
			templates, err := pki.LoadTemplates(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			win := *templates["smartcard-logon"]
			win.Name = "windows-logon"
			win.Description = "Smart card logon, Windows form (UPN only)"
			win.SubjectAltNames = []string{"upn"}
			win.ExtKeyUsage = []string{"smartcardLogon", "clientAuth"}
			if err := win.Validate(); err != nil {
				t.Fatal(err)
			}
			templates[win.Name] = &win
			env := pkitest.New(t, pkitest.Options{KeyAlgorithm: caAlg, Templates: templates})
			env.Users.Add("alice") // UPN alice@example.test, as AD spells it
			env.Users.Add("bob")
			carolUser := *env.Users.Add("carol")
			carolUser.UPN = "carol@" + pkitest.Realm // the UPN MIT can map to carol@EXAMPLE.TEST
			env.Users.Put(&carolUser)
			foreign := pkitest.New(t, pkitest.Options{KeyAlgorithm: caAlg})
			foreign.Users.Add("alice")

			// Certificates and keys, shared by every KDC of this CA.
			certs := t.TempDir()
			type identity struct{ cert, key string }
			ids := map[string]identity{}
			issue := func(e *pkitest.Env, template, user string, alg pki.KeyAlgorithm, name string) {
				issued, key := e.Issue(t, template, user, alg)
				ids[name] = identity{
					cert: pkitest.WritePEM(t, certs, name+".pem", issued.Certificate),
					key:  pkitest.WritePEM(t, certs, name+".key", key),
				}
			}
			kdcIssued, kdcKey := env.Issue(t, "kdc", "kdc.example.test", caAlg)
			for _, alg := range userAlgs {
				issue(env, "smartcard-logon", "alice", alg, "alice-pkinit-"+string(alg))
				issue(env, "windows-logon", "carol", alg, "carol-upn-"+string(alg))
			}
			issue(env, "windows-logon", "alice", pki.RSA2048, "alice-ad-upn")
			issue(env, "smartcard-logon", "bob", pki.RSA2048, "bob-pkinit")
			issue(foreign, "smartcard-logon", "alice", pki.RSA2048, "foreign-alice")
			foreignRoot := pkitest.WritePEM(t, certs, "foreign-root.pem", foreign.CA.Root())

			type kinitCase struct {
				name      string
				id        string
				principal string
				extra     []string // more kinit arguments
				ok        bool
				errWords  []string // for refusals: kinit's message has one of these
			}
			alice, carol := "alice@"+pkitest.Realm, "carol@"+pkitest.Realm
			nameMismatch := []string{"Client name mismatch", "Preauthentication failed"}
			keyPurpose := []string{"Inconsistent key purpose", "Preauthentication failed"}
			refusals := []kinitCase{
				{name: "refused/bob-as-alice", id: "bob-pkinit", principal: alice, errWords: nameMismatch},
				// The MIT client itself refuses an identity that does not chain to its anchors...
				{name: "refused/foreign-ca-client-side", id: "foreign-alice", principal: alice,
					errWords: []string{"verify own certificate"}},
				// ...and with the foreign root added to the client's anchors, the KDC refuses it.
				{name: "refused/foreign-ca-kdc-side", id: "foreign-alice", principal: alice,
					extra:    []string{"-X", "X509_anchors=FILE:" + foreignRoot},
					errWords: []string{"verify certificate", "Preauthentication failed"}},
			}

			for _, kc := range []struct {
				name  string
				cfg   mitKDCConfig
				cases []kinitCase
			}{
				{
					name: "mit-defaults",
					cases: append([]kinitCase{
						{name: "pkinit-san/rsa2048", id: "alice-pkinit-rsa2048", principal: alice, ok: true},
						{name: "pkinit-san/p256", id: "alice-pkinit-p256", principal: alice, ok: true},
						// Neither the EKU nor the SAN is one MIT takes by default
						// (MIT 1.20 checks the EKU first).
						{name: "refused/upn-only", id: "carol-upn-rsa2048", principal: carol,
							errWords: []string{"Inconsistent key purpose", "Client name mismatch", "Preauthentication failed"}},
					}, refusals...),
				},
				{
					// The UPN is accepted, but not the EKUs without id-pkinit-KPClientAuth.
					name: "allow-upn-only",
					cfg:  mitKDCConfig{allowUPN: true},
					cases: []kinitCase{
						{name: "pkinit-san/rsa2048", id: "alice-pkinit-rsa2048", principal: alice, ok: true},
						{name: "refused/upn-only", id: "carol-upn-rsa2048", principal: carol, errWords: keyPurpose},
					},
				},
				{
					// The EKU is accepted, but the UPN does not name a principal.
					name: "sclogin-only",
					cfg:  mitKDCConfig{ekuChecking: "scLogin"},
					cases: []kinitCase{
						{name: "pkinit-san/rsa2048", id: "alice-pkinit-rsa2048", principal: alice, ok: true},
						{name: "refused/upn-only", id: "carol-upn-rsa2048", principal: carol, errWords: nameMismatch},
					},
				},
				{
					name: "windows-sclogin-allow-upn",
					cfg:  mitKDCConfig{ekuChecking: "scLogin", allowUPN: true},
					cases: append([]kinitCase{
						{name: "pkinit-san/rsa2048", id: "alice-pkinit-rsa2048", principal: alice, ok: true},
						{name: "pkinit-san/p256", id: "alice-pkinit-p256", principal: alice, ok: true},
						{name: "upn/rsa2048", id: "carol-upn-rsa2048", principal: carol, ok: true},
						{name: "upn/p256", id: "carol-upn-p256", principal: carol, ok: true},
						// MIT parses the UPN as alice\@example.test@EXAMPLE.TEST and finds no such principal.
						{name: "refused/ad-style-upn", id: "alice-ad-upn", principal: alice, errWords: nameMismatch},
						{name: "refused/carol-upn-as-alice", id: "carol-upn-rsa2048", principal: alice, errWords: nameMismatch},
					}, refusals...),
				},
			} {
				t.Run(kc.name, func(t *testing.T) {
					dir := t.TempDir()
					pkitest.WritePEM(t, dir, "root.pem", env.CA.Root())
					pkitest.WritePEM(t, dir, "kdc.pem", kdcIssued.Certificate)
					pkitest.WritePEM(t, dir, "kdc.key", kdcKey)
					kdc := startMITKDC(t, peers, dir, kc.cfg, "alice", "bob", "carol")
					for _, c := range kc.cases {
						t.Run(c.name, func(t *testing.T) {
							id := ids[c.id]
							r := kdc.kinit(t, kc.name+"-"+c.name, c.principal, id.cert, id.key, c.extra...)
							if c.ok {
								if r.err != nil || !r.tgt {
									t.Errorf("kinit %s with %s: %v\n%s\nklist:\n%s\ntrace:\n%s", c.principal, c.id, r.err, r.out, r.klist, r.trace)
								}
								return
							}
							if r.err == nil || r.tgt {
								t.Errorf("kinit %s with %s succeeded (err %v), want a refusal\nklist:\n%s", c.principal, c.id, r.err, r.klist)
								return
							}
							t.Logf("refused as expected: %s", r.out)
							if !containsAny(r.out, c.errWords) {
								t.Errorf("kinit's refusal %q names none of %q\ntrace:\n%s", r.out, c.errWords, r.trace)
							}
						})
					}
				})
			}
		})
	}
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(strings.ToLower(s), strings.ToLower(w)) {
			return true
		}
	}
	return false
}
