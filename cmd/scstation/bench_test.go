package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/directory/ldaptest"
)

func TestBenchLDAP(t *testing.T) {
	s := ldaptest.New(t, ldaptest.Options{})
	for i := 0; i < 20; i++ {
		if _, err := s.Store.AddUser(directory.User{Name: fmt.Sprintf("user%d", i), UPN: fmt.Sprintf("user%d@example.test", i)}); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("BENCH_PW", s.AdminPassword)
	base := []string{"bench", "ldap", "--url", s.URL, "--bind-dn", s.AdminDN, "--password-env", "BENCH_PW", "--conns", "2", "--duration", "200ms", "--warmup", "0s", "--range", "20"}
	r := must(t, 0, run(t, "", append(base, "--filter", "(uid=user%d)")...))
	for _, want := range []string{"searches  ", "/s)", "latency   p50 ", "p99 ", "errors    0", "empty     0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = must(t, 0, run(t, "", append(base, "--filter", "(userPrincipalName=user%d@example.test)", "--json")...))
	var res struct{ Ops, Errors int64 }
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Ops == 0 || res.Errors != 0 {
		t.Errorf("json: %v %s", err, r.stdout)
	}
	must(t, 2, run(t, "", "bench", "ldap", "--url", s.URL, "--filter", "(uid=user)", "--range", "5"))
	must(t, 2, run(t, "", "bench", "ldap", "--url", s.URL, "--filter", "(uid=user%d)"))
	must(t, 2, run(t, "", "bench", "ldap", "--url", s.URL, "--filter", "(uid=user%d)", "--range", "5", "--bind-dn", s.AdminDN))
	must(t, 2, run(t, "", "bench", "ldap", "--url", s.URL, "--filter", "(uid=user%d)", "--range", "5", "--bind-dn", s.AdminDN, "--password-env", "BENCH_UNSET"))
	t.Setenv("BENCH_BAD", "wrong")
	must(t, 2, run(t, "", "bench", "ldap", "--url", s.URL, "--filter", "(uid=user%d)", "--range", "5", "--bind-dn", s.AdminDN, "--password-env", "BENCH_BAD"))
	// Every search fails: exit 1.
	r = must(t, 1, run(t, "", "bench", "ldap", "--url", s.URL, "--base", "dc=nowhere", "--filter", "(uid=user%d)", "--range", "5", "--duration", "100ms", "--warmup", "0s"))
	if !strings.Contains(r.stdout, "No Such Object") {
		t.Errorf("failing searches: %s", r.stdout)
	}
}
