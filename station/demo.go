package station

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/pki"
)

// DemoRealm and DemoDomain name the demo deployment.
const (
	DemoRealm  = "EXAMPLE.TEST"
	DemoDomain = "example.test"
)

// DemoUsers are the people of the demo realm.
var DemoUsers = []directory.User{
	{Name: "officer", UPN: "officer@example.test", Mail: "officer@example.test", DisplayName: "Enrollment Officer"},
	{Name: "alice", UPN: "alice@example.test", Mail: "alice@example.test", DisplayName: "Alice Smith"},
	{Name: "bob", UPN: "bob@example.test", Mail: "bob@example.test", DisplayName: "Bob Jones"},
	{Name: "carol", UPN: "carol@example.test", Mail: "carol@example.test", DisplayName: "Carol White"},
}

// Demo opens the demo data directory, creating it first when it does not
// exist: realm EXAMPLE.TEST, a CA whose key is not encrypted, and the demo
// users. created says whether it was made now.
func Demo(dir string, log *slog.Logger) (st *Station, created bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, ConfigFile)); err == nil {
		st, err := Open(dir, log)
		if err == nil {
			err = st.ensureDemoOfficer(false)
		}
		if err != nil && st != nil {
			st.Close()
			st = nil
		}
		return st, false, err
	}
	st, err = Init(dir, InitOptions{Realm: DemoRealm, Domain: DemoDomain, CA: CAOptions{KeyAlgorithm: pki.P256}, Log: log})
	if err != nil {
		return nil, false, err
	}
	d, err := st.Directory()
	if err != nil {
		st.Close()
		return nil, false, err
	}
	for _, u := range DemoUsers {
		if _, err := d.AddUser(u); err != nil && !errors.Is(err, directory.ErrUserExists) {
			st.Close()
			return nil, false, err
		}
	}
	if err := st.ensureDemoOfficer(true); err != nil {
		st.Close()
		return nil, false, err
	}
	return st, true, nil
}
