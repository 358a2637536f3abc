package station

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdctest"
)

// mitKinit runs MIT kinit -X X509_user_identity=identity for principal
// against the KDC at addr, which it trusts through anchor (a PEM file),
// with env (nil for this process's) and stdin. It returns kinit's refusal
// with its output and trace, and the environment that finds the
// credential cache (for klist) and the cache's path.
func mitKinit(t *testing.T, env []string, addr, anchor, identity, stdin, principal string) (kenv []string, cache string, err error) {
	t.Helper()
	kinit := testpeer.Path(t, "kinit")
	kdctest.RequireMITPKINIT(t)
	if env == nil {
		env = os.Environ()
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `[libdefaults]
	default_realm = EXAMPLE.TEST
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	udp_preference_limit = 1
[realms]
	EXAMPLE.TEST = {
		kdc = %s
		pkinit_anchors = FILE:%s
	}
`, addr, anchor), 0o600); err != nil {
		t.Fatal(err)
	}
	cache = filepath.Join(dir, "ccache")
	trace := filepath.Join(dir, "trace")
	kenv = append(env[:len(env):len(env)], "KRB5_CONFIG="+conf, "KRB5_KDC_PROFILE=/dev/null", "KRB5RCACHEDIR="+dir,
		"KRB5CCNAME=FILE:"+cache, "KRB5_TRACE="+trace)
	if out, err := runPeer(t, kenv, stdin, kinit, "-X", "X509_user_identity="+identity, principal); err != nil {
		tr, _ := os.ReadFile(trace)
		return kenv, cache, fmt.Errorf("kinit %s: %v\n%s\n%s", principal, err, out, tr)
	}
	return kenv, cache, nil
}

// serveKDC runs the station's embedded KDC on opts' addresses until stop,
// which the caller defers (so that it runs before the station closes).
func serveKDC(t *testing.T, st *Station, opts KDCOptions) (k *kdc.KDC, stop func()) {
	t.Helper()
	k, err := st.NewKDC(opts)
	if err != nil {
		t.Fatal(err)
	}
	return k, kdctest.Serve(t, k)
}

// caRoot is the station CA's root certificate.
func caRoot(t *testing.T, st *Station) *x509.Certificate {
	t.Helper()
	chain, err := st.CAChain()
	if err != nil {
		t.Fatal(err)
	}
	return chain[len(chain)-1]
}

// caRoots is a pool of the station CA's root, as a client trusts it.
func caRoots(t *testing.T, st *Station) *x509.CertPool {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(caRoot(t, st))
	return roots
}
