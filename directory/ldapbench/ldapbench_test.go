package ldapbench_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/directory/ldapbench"
	"github.com/scstation/scstation/directory/ldaptest"
)

const users = 50

func TestBenchEmbedded(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{})
	for i := 0; i < users; i++ {
		if _, err := s.Store.AddUser(directory.User{Name: fmt.Sprintf("user%d", i), UPN: fmt.Sprintf("user%d@example.test", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		cfg  ldapbench.Config
	}{
		{"uid", ldapbench.Config{URL: s.URL, BindDN: s.AdminDN, Password: []byte(s.AdminPassword), Filter: "(uid=user%d)"}},
		{"upn-anonymous", ldapbench.Config{URL: s.URL, Filter: "(userPrincipalName=user%d@example.test)"}},
		{"ldaps", ldapbench.Config{URL: s.LDAPSURL, TLS: s.ClientTLS, Filter: "(uid=user%d)"}},
		{"starttls", ldapbench.Config{URL: s.URL, StartTLS: true, TLS: s.ClientTLS, BindDN: s.AdminDN, Password: []byte(s.AdminPassword), Filter: "(uid=user%d)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Range, cfg.Conns, cfg.Duration, cfg.Warmup = users, 4, 300*time.Millisecond, 50*time.Millisecond
			res, err := ldapbench.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops < 10 || res.Errors != 0 || res.Empty != 0 || res.Entries != res.Ops || res.P50 <= 0 || res.P99 < res.P50 || res.OpsPerSec <= 0 {
				t.Errorf("%s", res)
			}
		})
	}
	// Misses are counted, not errors; failures are reported.
	res, err := ldapbench.Run(context.Background(), ldapbench.Config{URL: s.URL, Filter: "(uid=nobody%d)", Range: 10, Conns: 2, Duration: 100 * time.Millisecond})
	if err != nil || res.Empty != res.Ops || res.Errors != 0 {
		t.Errorf("misses: %v %v", res, err)
	}
	res, err = ldapbench.Run(context.Background(), ldapbench.Config{URL: s.URL, Base: "dc=nowhere", Filter: "(uid=user%d)", Range: 10, Conns: 2, Duration: 100 * time.Millisecond})
	if err != nil || res.Errors == 0 || !strings.Contains(res.String(), "No Such Object") {
		t.Errorf("errors: %v %v", res, err)
	}
	if _, err := ldapbench.Run(context.Background(), ldapbench.Config{URL: s.URL, BindDN: s.AdminDN, Password: []byte("wrong"), Filter: "(uid=user%d)", Range: 10}); err == nil || !strings.Contains(err.Error(), "Invalid Credentials") {
		t.Errorf("bad password: %v", err)
	}
	for _, f := range []string{"(uid=user)", "(uid=%d%d)", "(uid=%s)", "(uid=%d"} {
		if _, err := ldapbench.Run(context.Background(), ldapbench.Config{URL: s.URL, Filter: f, Range: 10}); err == nil {
			t.Errorf("filter %q accepted", f)
		}
	}
}

func TestBenchSlapd(t *testing.T) {
	var ldif strings.Builder
	ldif.WriteString("dn: dc=example,dc=test\nobjectClass: domain\ndc: example\n\n")
	for i := 0; i < users; i++ {
		fmt.Fprintf(&ldif, "dn: uid=user%d,dc=example,dc=test\nobjectClass: inetOrgPerson\nobjectClass: upnPrincipal\nuid: user%d\ncn: User %d\nsn: %d\nuserPrincipalName: user%d@example.test\n\n", i, i, i, i, i)
	}
	s := ldaptest.NewSlapd(t, ldaptest.SlapdOptions{LDIF: ldif.String()})
	res, err := ldapbench.Run(context.Background(), ldapbench.Config{URL: s.URL, BindDN: s.RootDN, Password: []byte(s.RootPassword),
		Filter: "(userPrincipalName=user%d@example.test)", Range: users, Conns: 4, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops < 10 || res.Errors != 0 || res.Empty != 0 || res.Entries != res.Ops {
		t.Errorf("%s", res)
	}
}
