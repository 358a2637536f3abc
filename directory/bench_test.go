package directory

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"

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
