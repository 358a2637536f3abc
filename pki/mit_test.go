package pki_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

// mitPeers are the MIT Kerberos client programs the test runs.
type mitPeers struct {
	kinit, klist string
}

// requireMIT finds the MIT programs and the PKINIT plugin, skipping the test
// (failing it under CI=true) when one is missing, as testpeer does.
func requireMIT(t *testing.T) mitPeers {
	t.Helper()
	testpeer.Require(t, "krb5kdc", "kdb5_util", "kadmin.local")
	p := testpeer.Require(t, "kinit", "klist")
	kdctest.RequireMITPKINIT(t)
	return mitPeers{kinit: p[0], klist: p[1]}
}

// mitKDC is a running krb5kdc (kdctest.StartMITKDC) and the client
// programs to use it with.
type mitKDC struct {
	*kdctest.MITKDC
	peers mitPeers
}

func (k *mitKDC) path(name string) string { return filepath.Join(k.Dir, name) }

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
	env := k.Env("KRB5CCNAME="+ccache, "KRB5_TRACE="+tracePath)
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
				cfg   kdctest.MITKDCConfig
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
					cfg:  kdctest.MITKDCConfig{AllowUPN: true},
					cases: []kinitCase{
						{name: "pkinit-san/rsa2048", id: "alice-pkinit-rsa2048", principal: alice, ok: true},
						{name: "refused/upn-only", id: "carol-upn-rsa2048", principal: carol, errWords: keyPurpose},
					},
				},
				{
					// The EKU is accepted, but the UPN does not name a principal.
					name: "sclogin-only",
					cfg:  kdctest.MITKDCConfig{EKUChecking: "scLogin"},
					cases: []kinitCase{
						{name: "pkinit-san/rsa2048", id: "alice-pkinit-rsa2048", principal: alice, ok: true},
						{name: "refused/upn-only", id: "carol-upn-rsa2048", principal: carol, errWords: nameMismatch},
					},
				},
				{
					name: "windows-sclogin-allow-upn",
					cfg:  kdctest.MITKDCConfig{EKUChecking: "scLogin", AllowUPN: true},
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
					cfg := kc.cfg
					cfg.Realm, cfg.Root, cfg.KDCCert, cfg.KDCKey = pkitest.Realm, env.CA.Root(), kdcIssued.Certificate, kdcKey
					cfg.PKINITUsers = []string{"alice", "bob", "carol"}
					kdc := &mitKDC{MITKDC: kdctest.StartMITKDC(t, cfg), peers: peers}
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
