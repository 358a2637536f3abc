package station

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/inventory"
)

// vcardsDir holds the state files of virtual officer cards (demo, or a
// station set up without a card reader).
const vcardsDir = "vcards"

// DemoOfficer and DemoOfficerPIN are the demo realm's enrollment officer
// and the PIN of the officer's virtual card. The demo is not a secure
// deployment (its CA key is not encrypted either); a real officer chooses
// their PIN.
const (
	DemoOfficer    = "officer"
	DemoOfficerPIN = "24680135"
)

// OfficerOptions say how to make an enrollment officer.
type OfficerOptions struct {
	// User is the officer's directory login name; the user is created
	// (UPN and mail User@domain) when missing.
	User, DisplayName string
	// Reader and Card are the officer's card, as in EnrollRequest. With
	// neither, a virtual card is made: a state file under DIR/vcards.
	Reader string
	Card   card.Card
	// PIN is the officer card's new PIN (CheckPIN).
	PIN          string
	KeyAlgorithm pki.KeyAlgorithm
	Passphrase   PassphraseFunc
	Progress     func(Step)
}

// VirtualCardPath is the state file of an officer's virtual card.
func (s *Station) VirtualCardPath(user string) string {
	return s.path(filepath.Join(vcardsDir, user+".json"))
}

// BootstrapOfficer makes an enrollment officer when there is none to sign
// requests yet: the directory user if missing, then the officer's card is
// enrolled like any other (station management key, random PUK, PIN), with
// an agent key generated on the card in slot 9A and a certificate from the
// enrollment-agent template that the CA issues to the operator.
func (s *Station) BootstrapOfficer(ctx context.Context, opts OfficerOptions) (*EnrollResult, error) {
	if opts.User == "" || strings.ContainsAny(opts.User, `/\`) {
		return nil, fmt.Errorf("station: officer name %q is not a login name", opts.User)
	}
	if err := CheckPIN(opts.PIN); err != nil {
		return nil, err
	}
	users, err := s.UserDirectory()
	if err != nil {
		return nil, err
	}
	if _, err := users.LookupUser(ctx, opts.User); errors.Is(err, directory.ErrNoSuchUser) {
		// The embedded directory gets the officer; an external one must
		// have them already.
		d, derr := s.Directory()
		if derr != nil {
			return nil, fmt.Errorf("station: officer %s is not in the directory: %w", opts.User, err)
		}
		addr := opts.User + "@" + s.Config.Domain
		if _, err := d.AddUser(directory.User{Name: opts.User, UPN: addr, Mail: addr, DisplayName: opts.DisplayName}); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	c, reader := opts.Card, opts.Reader
	if c == nil && reader == "" {
		if c, err = s.newVirtualCard(opts.User); err != nil {
			return nil, err
		}
		reader = "virtual card " + s.VirtualCardPath(opts.User)
	}
	issue := func(ctx context.Context, template string, csr []byte) (*pki.Issued, time.Duration, error) {
		issued, err := s.Issue(ctx, opts.Passphrase, template, csr, opts.User, "")
		return issued, 0, err
	}
	return s.runEnrollment(ctx, EnrollRequest{User: opts.User, Templates: []string{"enrollment-agent"}, Reader: reader, Card: c,
		PIN: opts.PIN, KeyAlgorithm: opts.KeyAlgorithm, Passphrase: opts.Passphrase, Progress: opts.Progress}, s.actor(), issue)
}

// newVirtualCard makes a factory-fresh virtual card for an officer, or
// reopens the one an unfinished bootstrap left (which then starts over).
func (s *Station) newVirtualCard(user string) (card.Card, error) {
	p := s.VirtualCardPath(user)
	if _, err := os.Stat(p); err == nil {
		return s.VirtualCard(user)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	st, err := virtual.NewState(binary.BigEndian.Uint32(b[:])%90000000 + 10000000)
	if err != nil {
		return nil, err
	}
	if err := st.Save(p); err != nil {
		return nil, err
	}
	return virtual.New(st, p), nil
}

// VirtualCard opens an officer's virtual card (in process).
func (s *Station) VirtualCard(user string) (card.Card, error) {
	p := s.VirtualCardPath(user)
	st, err := virtual.LoadState(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("station: officer %s has no virtual card: %w", user, err)
	}
	if err != nil {
		return nil, err
	}
	return virtual.New(st, p), nil
}

// SignInVirtual signs an officer in with their virtual card.
func (s *Station) SignInVirtual(ctx context.Context, user, pin string) (*Officer, error) {
	c, err := s.VirtualCard(user)
	if err != nil {
		return nil, err
	}
	return s.SignInCard(ctx, c, "virtual card "+s.VirtualCardPath(user), pin)
}

// ensureDemoOfficer gives a demo directory its officer on a virtual card,
// unless the officer has an active card already. A demo directory whose
// officer card file exists is left alone without opening any database
// (another process, such as serve, may hold them).
func (s *Station) ensureDemoOfficer(created bool) error {
	if _, err := os.Stat(s.VirtualCardPath(DemoOfficer)); err == nil && !created {
		return nil
	}
	inv, err := s.Inventory()
	if err != nil {
		return err
	}
	cards, err := inv.List(inventory.Query{Owner: DemoOfficer, State: inventory.Active})
	if err != nil || len(cards) > 0 {
		return err
	}
	_, err = s.BootstrapOfficer(context.Background(), OfficerOptions{User: DemoOfficer, DisplayName: "Enrollment Officer", PIN: DemoOfficerPIN})
	return err
}
