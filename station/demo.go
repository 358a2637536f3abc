package station

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

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

// DemoGenerated is how many generated users the demo realm has beside
// DemoUsers, so that search and lists are tried on a directory of some
// size.
const DemoGenerated = 1000

// demoFirst and demoLast make the generated users' names: every pair of
// one first and one last name is a different person (40×40 ≥ DemoGenerated).
var (
	demoFirst = []string{
		"Aaron", "Beatrice", "Carlos", "Diana", "Edward", "Fatima", "George", "Hannah",
		"Ivan", "Julia", "Kenji", "Laura", "Mohammed", "Nina", "Oscar", "Priya",
		"Quentin", "Rosa", "Samuel", "Tara", "Umar", "Vera", "William", "Xenia",
		"Yusuf", "Zoe", "Amelia", "Bruno", "Chloe", "Daniel", "Elena", "Felix",
		"Grace", "Hugo", "Irene", "Jonas", "Karin", "Liam", "Maya", "Noah",
	}
	demoLast = []string{
		"Adams", "Baker", "Clarke", "Dubois", "Evans", "Fischer", "Garcia", "Hughes",
		"Ito", "Jensen", "Khan", "Lopez", "Martin", "Nguyen", "Okafor", "Petrov",
		"Quinn", "Rossi", "Schmidt", "Tanaka", "Usman", "Varga", "Walker", "Xu",
		"Young", "Zimmermann", "Andersen", "Bianchi", "Costa", "Dimitrov", "Eriksson", "Fernandes",
		"Gonzalez", "Horvat", "Ivanova", "Johansson", "Kowalski", "Larsen", "Moreau", "Novak",
	}
	// demoGroups are the demo's groups; generated user i is in
	// demoGroups[i%len(demoGroups)].
	demoGroups = []struct{ name, description string }{
		{"engineering", "Engineering"},
		{"sales", "Sales"},
		{"support", "Customer support"},
		{"finance", "Finance"},
	}
)

// DemoGeneratedUser is the demo's i-th generated user (0 ≤ i <
// DemoGenerated): a plausible, deterministic name such as
// beatrice.baker, with UPN and mail in the demo domain.
func DemoGeneratedUser(i int) directory.User {
	first := demoFirst[i%len(demoFirst)]
	last := demoLast[(i/len(demoFirst)+i)%len(demoLast)]
	name := strings.ToLower(first + "." + last)
	return directory.User{
		Name: name, UPN: name + "@" + DemoDomain, Mail: name + "@" + DemoDomain,
		DisplayName: first + " " + last, GivenName: first, Surname: last,
	}
}

// addDemoUsers adds the generated users and the demo groups in one
// transaction: one commit instead of a thousand keeps the first demo fast.
func addDemoUsers(d *directory.Store) error {
	return d.Batch(func(b *directory.Batch) error {
		members := make([][]string, len(demoGroups))
		for i := range DemoGenerated {
			u, err := b.AddUser(DemoGeneratedUser(i))
			if err != nil {
				return err
			}
			g := i % len(demoGroups)
			members[g] = append(members[g], u.Name)
		}
		for i, g := range demoGroups {
			if _, err := b.AddGroup(g.name, g.description, members[i]...); err != nil {
				return fmt.Errorf("station: demo group: %w", err)
			}
		}
		return nil
	})
}

// Demo opens the demo data directory, creating it first when it does not
// exist: realm EXAMPLE.TEST, a CA whose key is not encrypted, the demo
// users and DemoGenerated generated users in a few groups. created says
// whether it was made now. A demo directory made before the generated
// users existed is opened as it is (nothing is added to it).
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
	if err := addDemoUsers(d); err != nil {
		st.Close()
		return nil, false, err
	}
	if err := st.ensureDemoOfficer(true); err != nil {
		st.Close()
		return nil, false, err
	}
	return st, true, nil
}
