package directory

import (
	"context"
	"testing"
	"time"
)

// TestParentDNCacheRename: DNs built from the parent-DN cache follow a
// rename of the parent.
func TestParentDNCacheRename(t *testing.T) {
	s, _ := openTemp(t)
	for _, e := range []*Entry{
		entry("ou=x,dc=example,dc=test", "objectClass", "organizationalUnit"),
		entry("cn=leaf,ou=x,dc=example,dc=test", "objectClass", "container"),
	} {
		if _, err := s.Add("", e); err != nil {
			t.Fatal(err)
		}
	}
	find := func() string {
		var dn string
		_, err := s.Search(context.Background(), SearchRequest{BaseDN: "dc=example,dc=test", Scope: ScopeSub, Filter: Eq("cn", "leaf")}, func(e *Entry) error {
			dn = e.DN
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return dn
	}
	if dn := find(); dn != "cn=leaf,ou=x,dc=example,dc=test" {
		t.Fatalf("before: %s", dn)
	}
	if _, err := s.ModifyDN("", "ou=x,dc=example,dc=test", "ou=y", true, ""); err != nil {
		t.Fatal(err)
	}
	if dn := find(); dn != "cn=leaf,ou=y,dc=example,dc=test" {
		t.Errorf("after the rename: %s", dn)
	}
	if _, err := s.ModifyDN("", "ou=y,dc=example,dc=test", "ou=z", true, "ou=people,dc=example,dc=test"); err != nil {
		t.Fatal(err)
	}
	if dn := find(); dn != "cn=leaf,ou=z,ou=people,dc=example,dc=test" {
		t.Errorf("after the move: %s", dn)
	}
}

func TestOpCtx(t *testing.T) {
	c := newOpCtx(50 * time.Millisecond)
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
	select {
	case <-c.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("Done did not close at the deadline")
	}
	if c.Err() != context.DeadlineExceeded {
		t.Errorf("after the deadline: %v", c.Err())
	}
	c = newOpCtx(time.Hour)
	d := c.Done()
	c.cancel()
	c.cancel()
	<-d
	if c.Err() != context.Canceled {
		t.Errorf("after cancel: %v", c.Err())
	}
	// A derived context follows it.
	c = newOpCtx(time.Hour)
	child, stop := context.WithTimeout(c, time.Hour)
	defer stop()
	c.cancel()
	select {
	case <-child.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the derived context was not cancelled")
	}
}
