package directory_test

import (
	"errors"
	"testing"

	"github.com/scstation/scstation/directory"
)

// TestBatch: a batch's users and groups are all there after it commits,
// and a batch that fails midway (a duplicate UPN within the batch) leaves
// nothing behind.
func TestBatch(t *testing.T) {
	s := openStore(t)
	err := s.Batch(func(b *directory.Batch) error {
		for _, u := range []directory.User{
			{Name: "dan", UPN: "dan@example.test"},
			{Name: "eve", UPN: "eve@example.test"},
		} {
			if _, err := b.AddUser(u); err != nil {
				return err
			}
		}
		if _, err := b.AddGroup("staff", "all staff", "eve"); err != nil {
			return err
		}
		if _, err := b.AddGroup("ops", ""); err != nil {
			return err
		}
		return b.AddMember("ops", "dan")
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.Group("staff")
	if err != nil {
		t.Fatal(err)
	}
	eve, err := s.User("eve")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Members) != 1 || g.Members[0] != eve.DN {
		t.Errorf("staff members = %q, want [%s]", g.Members, eve.DN)
	}
	if ops, err := s.Group("ops"); err != nil || len(ops.Members) != 1 {
		t.Errorf("ops = %+v, %v; want dan as its member", ops, err)
	}

	err = s.Batch(func(b *directory.Batch) error {
		if _, err := b.AddUser(directory.User{Name: "fay", UPN: "fay@example.test"}); err != nil {
			return err
		}
		if _, err := b.AddGroup("fays", "", "fay"); err != nil {
			return err
		}
		_, err := b.AddUser(directory.User{Name: "fay2", UPN: "FAY@example.test"})
		return err
	})
	if err == nil {
		t.Fatal("a batch with a duplicate UPN committed")
	}
	if _, err := s.User("fay"); !errors.Is(err, directory.ErrNoSuchUser) {
		t.Errorf("after a failed batch, User(fay) = %v, want ErrNoSuchUser", err)
	}
	if _, err := s.Group("fays"); err == nil {
		t.Error("after a failed batch, its group is there")
	}
	if _, err := s.AddUser(directory.User{Name: "eve", UPN: "eve2@example.test"}); !errors.Is(err, directory.ErrUserExists) {
		t.Errorf("AddUser(existing) = %v, want ErrUserExists", err)
	}
}
