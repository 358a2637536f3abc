// Package testpeer finds the real programs tests run against (openssl,
// krb5kdc, kinit, slapd, ...). Outside CI a missing program skips the test;
// with CI=true it fails it, so a missing peer is never skipped silently.
package testpeer

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// sbin directories hold daemons (krb5kdc, slapd) that a non-root PATH lacks.
var sbin = []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

// Require returns the path of each program, or skips (fails under CI) the
// test when one is missing.
func Require(tb testing.TB, programs ...string) []string {
	tb.Helper()
	paths := make([]string, len(programs))
	for i, p := range programs {
		path, err := lookPath(p)
		if err != nil {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("peer %s is not installed (run make deps)", p)
			}
			tb.Skipf("peer %s is not installed (run make deps)", p)
		}
		paths[i] = path
	}
	return paths
}

// Path is Require for one program.
func Path(tb testing.TB, program string) string {
	tb.Helper()
	return Require(tb, program)[0]
}

func lookPath(p string) (string, error) {
	if path, err := exec.LookPath(p); err == nil {
		return path, nil
	}
	for _, d := range sbin {
		path := filepath.Join(d, p)
		if fi, err := os.Stat(path); err == nil && fi.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return exec.LookPath(p)
}
