package directory

import (
	"errors"
	"path/filepath"
	"regexp"
	"testing"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dir.db")
	s, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p
}

var sidRE = regexp.MustCompile(`^S-1-5-21-\d+-\d+-\d+-\d+$`)

func TestUsers(t *testing.T) {
	s, path := openTemp(t)
	a, err := s.AddUser(User{Name: "alice", UPN: "alice@example.test", Mail: "alice@example.test", DisplayName: "Alice"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.AddUser(User{Name: "bob", UPN: "Bob@Example.Test"})
	if err != nil {
		t.Fatal(err)
	}
	if !sidRE.MatchString(a.SID) || a.SID == b.SID || a.GUID == b.GUID || a.GUID == "" {
		t.Errorf("SIDs %q %q GUIDs %q %q", a.SID, b.SID, a.GUID, b.GUID)
	}
	dom, _ := s.DomainSID()
	if a.SID != dom+"-1100" || b.SID != dom+"-1101" {
		t.Errorf("RIDs: %s %s under %s", a.SID, b.SID, dom)
	}
	for _, tc := range []struct {
		u    User
		want error
	}{
		{User{Name: "ALICE", UPN: "x@example.test"}, ErrUserExists},
		{User{Name: "carol", UPN: "ALICE@EXAMPLE.TEST"}, ErrUPNInUse},
		{User{Name: "", UPN: "x@example.test"}, nil},
		{User{Name: "c d", UPN: "cd@example.test"}, nil},
		{User{Name: "carol", UPN: "carol"}, nil},
		{User{Name: "carol", UPN: "carol@example.test", Mail: "Carol <c@x>"}, nil},
	} {
		_, err := s.AddUser(tc.u)
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("AddUser(%+v): %v, want %v", tc.u, err, tc.want)
		}
	}
	for _, name := range []string{"alice", "ALICE", "alice@EXAMPLE.test"} {
		if u, err := s.User(name); err != nil || u.Name != "alice" {
			t.Errorf("User(%q): %v %v", name, u, err)
		}
	}
	if _, err := s.User("nobody"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("unknown user: %v", err)
	}
	if err := s.AddCertificate("alice", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	s.AddCertificate("alice", []byte{1, 2, 3})
	if u, _ := s.User("alice"); len(u.Certificates) != 1 {
		t.Errorf("%d certificates after adding one twice", len(u.Certificates))
	}
	// A second open of the same file fails at once, naming the problem.
	if _, err := Open(path); !errors.Is(err, ErrInUse) {
		t.Errorf("second open: %v", err)
	}
	if err := s.DeleteUser("bob@example.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddUser(User{Name: "bob2", UPN: "bob@example.test"}); err != nil {
		t.Errorf("the UPN of a deleted user stays taken: %v", err)
	}
	users, _ := s.Users()
	if len(users) != 2 {
		t.Errorf("%d users", len(users))
	}
	// Everything survives a reopen.
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if u, err := s2.User("alice"); err != nil || u.SID != a.SID || len(u.Certificates) != 1 {
		t.Errorf("after reopen: %+v %v", u, err)
	}
	if c, err := s2.AddUser(User{Name: "carol", UPN: "carol@example.test"}); err != nil || c.SID != dom+"-1103" {
		t.Errorf("RID after reopen: %v %v", c, err)
	}
}
