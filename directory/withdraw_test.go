package directory_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/directory/ldaptest"
	"github.com/scstation/scstation/internal/testpeer"
)

// TestRemoveCertificate withdraws certificates from the embedded store,
// from our LDAP server and from slapd, and reads the entries back with
// OpenLDAP's ldapsearch where there is a server.
func TestRemoveCertificate(t *testing.T) {
	type setup struct {
		name string
		open func(t *testing.T) (d directory.Directory, url, base string)
	}
	setups := []setup{
		{"store", func(t *testing.T) (directory.Directory, string, string) {
			s, err := directory.Open(filepath.Join(t.TempDir(), "d.db"), directory.Options{Domain: "example.test"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			loadStore(t, s)
			return s, "", s.BaseDN()
		}},
		{"embedded-ldap", func(t *testing.T) (directory.Directory, string, string) {
			s := embeddedServer(t)
			return newClient(t, embeddedConfig(t, s)), s.URL, s.BaseDN
		}},
		{"slapd", func(t *testing.T) (directory.Directory, string, string) {
			s := slapdPeer(t, ldaptest.SlapdOptions{})
			return newClient(t, slapdConfig(t, s)), s.URL, s.Suffix
		}},
	}
	for _, su := range setups {
		t.Run(su.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			d, url, base := su.open(t)
			// Distinct serials: slapd matches certificates by issuer and
			// serial (certificateExactMatch).
			c1, c2, c3 := serialCert(t, 201), serialCert(t, 202), serialCert(t, 203)
			for _, c := range [][]byte{c1, c2} {
				if err := d.PublishCertificate(ctx, "carol", c); err != nil {
					t.Fatal(err)
				}
			}
			has := func(want ...[]byte) {
				t.Helper()
				got, err := d.UserCertificates(ctx, "carol")
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("carol has %d certificates, want %d", len(got), len(want))
				}
				for _, w := range want {
					if !slices.ContainsFunc(got, func(c []byte) bool { return bytes.Equal(c, w) }) {
						t.Fatalf("carol lacks certificate %x", w[:16])
					}
				}
				if url != "" {
					if peer := ldapsearchCerts(t, url, "uid=carol,ou=people,"+base); len(peer) != len(want) {
						t.Fatalf("ldapsearch: carol has %d certificates, want %d", len(peer), len(want))
					}
				}
			}
			has(c1, c2)
			if err := d.RemoveCertificate(ctx, "carol@example.test", c1); err != nil {
				t.Fatal(err)
			}
			has(c2)
			// Removing one that is not there (any more) is not an error and
			// changes nothing.
			for _, c := range [][]byte{c1, c3} {
				if err := d.RemoveCertificate(ctx, "carol", c); err != nil {
					t.Fatalf("removing a certificate carol does not have: %v", err)
				}
			}
			if err := d.RemoveCertificate(ctx, "alice", c2); err != nil {
				t.Fatalf("removing from a user without certificates: %v", err)
			}
			has(c2)
			// Bad input is refused and changes nothing.
			if err := d.RemoveCertificate(ctx, "carol", []byte("not a certificate")); directory.CodeOf(err) != directory.ResultInvalidAttributeSyntax {
				t.Errorf("bad certificate: %v", err)
			}
			for _, name := range []string{"nobody", "*", "carol)(uid=*"} {
				if err := d.RemoveCertificate(ctx, name, c2); !errors.Is(err, directory.ErrNoSuchUser) {
					t.Errorf("RemoveCertificate(%q): %v", name, err)
				}
			}
			has(c2)
			// The last one goes too.
			if err := d.RemoveCertificate(ctx, "uid=carol,ou=people,"+base, c2); err != nil {
				t.Fatal(err)
			}
			has()
			if u, err := d.LookupUser(ctx, "carol"); err != nil || len(u.Certificates) != 0 {
				t.Errorf("carol after withdrawal: %v %v", u, err)
			}
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if err := d.RemoveCertificate(cancelled, "carol", c1); err == nil {
				t.Error("a cancelled context removed nothing but reported no error")
			}
		})
	}
}

// ldapsearchCerts reads a user's userCertificate;binary values with
// OpenLDAP's ldapsearch (anonymous: certificates are public).
func ldapsearchCerts(t *testing.T, url, dn string) [][]byte {
	t.Helper()
	bin := testpeer.Path(t, "ldapsearch")
	out, err := exec.Command(bin, "-x", "-LLL", "-o", "ldif-wrap=no", "-H", url, "-b", dn, "-s", "base", "(objectClass=*)", "userCertificate;binary").CombinedOutput()
	if err != nil {
		t.Fatalf("ldapsearch: %v\n%s", err, out)
	}
	var certs [][]byte
	for _, line := range strings.Split(string(out), "\n") {
		v, ok := strings.CutPrefix(line, "userCertificate;binary:: ")
		if !ok {
			continue
		}
		der, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("ldapsearch output: %v", err)
		}
		certs = append(certs, der)
	}
	return certs
}
