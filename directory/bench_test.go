package directory

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// loadUsers adds n users, as an import would.
func loadUsers(tb testing.TB, n int) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "bench.db"), Options{Domain: "example.test"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	// Batches of 1000: bbolt splits pages only at commit, so one huge
	// transaction moves ever larger nodes on every insert.
	for start := 0; start < n; start += 1000 {
		err = s.update("", true, func(w *writer) error {
			for i := start; i < min(n, start+1000); i++ {
				u := &User{Name: fmt.Sprintf("user%06d", i), UPN: fmt.Sprintf("user%06d@example.test", i), Mail: fmt.Sprintf("user%06d@example.test", i), DisplayName: fmt.Sprintf("User %d", i)}
				if _, err := w.add(userEntry(s.people, u)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

func BenchmarkLoad10k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		loadUsers(b, 10000)
	}
}

func BenchmarkStoreSearchUID(b *testing.B) {
	s := loadUsers(b, 10000)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1) % 10000
			found := 0
			s.Search(context.Background(), SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub, Filter: Eq("uid", fmt.Sprintf("user%06d", i))}, func(*Entry) error { found++; return nil })
			if found != 1 {
				b.Fatalf("found %d", found)
			}
		}
	})
}

func BenchmarkServerSearchUID(b *testing.B) {
	s := loadUsers(b, 10000)
	srv, _ := NewServer(Config{Store: s})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := ldap.DialURL("ldap://" + ln.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		for pb.Next() {
			i := n.Add(1) % 10000
			res, err := c.Search(ldap.NewSearchRequest(s.BaseDN(), ldap.ScopeWholeSubtree, 0, 0, 0, false, fmt.Sprintf("(uid=user%06d)", i), []string{"cn", "mail"}, nil))
			if err != nil || len(res.Entries) != 1 {
				b.Errorf("%v %v", res, err)
				return
			}
		}
	})
}

// BenchmarkFindUsers is search as you type (FindUsers, limit 50, as the
// TUI asks) over 100,000 users: one op is one keystroke's search; the
// slowest one is reported as worst-ms. The prefixes are the hard ones: a
// single letter or two that every user matches, a login, a display name,
// and prefixes that match nothing.
func BenchmarkFindUsers(b *testing.B) {
	s := loadUsers(b, 100000)
	for _, p := range []string{"", "u", "us", "z", "zz", "user04", "user04217", "User 42"} {
		b.Run(fmt.Sprintf("%q", p), func(b *testing.B) {
			var worst time.Duration
			for b.Loop() {
				start := time.Now()
				us, err := s.FindUsers(context.Background(), p, 50)
				worst = max(worst, time.Since(start))
				if err != nil || len(us) == 0 && p != "z" && p != "zz" {
					b.Fatalf("FindUsers(%q): %d users, %v", p, len(us), err)
				}
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
	// The LDAP server's view: the same store searched with AND filters
	// (one login; a prefix that 100 users match, limit 50; one that all do).
	for _, tc := range []struct {
		name   string
		filter func(i int) string
		limit  int
	}{
		{"search/and-uid", func(i int) string { return fmt.Sprintf("(&(objectClass=user)(uid=user%06d))", i) }, 0},
		{"search/and-prefix-limit50", func(i int) string {
			p := fmt.Sprintf("user%04d", i/100)
			return "(&(objectClass=user)(|(uid=" + p + "*)(cn=" + p + "*)(mail=" + p + "*)))"
		}, 50},
		// Every user matches: the planner still takes the parts whole.
		{"search/and-prefix-u-limit50", func(int) string { return "(&(objectClass=user)(|(uid=u*)(cn=u*)(mail=u*)))" }, 50},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var worst time.Duration
			i := 0
			for b.Loop() {
				i = (i + 7919) % 100000
				f, err := ParseFilter(tc.filter(i))
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				n := 0
				_, err = s.Search(context.Background(), SearchRequest{BaseDN: s.BaseDN(), Scope: ScopeSub, Filter: f, Limit: tc.limit}, func(*Entry) error { n++; return nil })
				worst = max(worst, time.Since(start))
				if err != nil || n == 0 {
					b.Fatalf("%v: %d entries, %v", tc.filter(i), n, err)
				}
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
}
