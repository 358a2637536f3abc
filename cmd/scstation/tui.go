package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/tui"
)

// needTerminal refuses to draw the full-screen station anywhere but on a
// terminal, before anything is changed.
func (a *app) needTerminal() error {
	f, ok := a.stdout.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return usagef("the full-screen station needs a terminal (stdout is not one); use a subcommand (scstation --help), or scstation demo --no-tui")
	}
	return nil
}

// tuiFlags are the full-screen station's own flags.
type tuiFlags struct {
	noServices bool
	idleLock   time.Duration
	// local are cards held in process (the demo's blank cards).
	local []tui.LocalCard
	// demoPIN is the demo officer's PIN, shown to a newcomer.
	demoPIN string
}

func (f *tuiFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.noServices, "no-services", false, "do not run the embedded services (KDC, LDAP, HTTP) in the full-screen station")
	fs.DurationVar(&f.idleLock, "idle-lock", tui.DefaultIdleLock, "sign the officer out after this long without a key press (0: never)")
}

// demoCardsDir holds the demo's blank virtual cards.
const demoCardsDir = "democards"

// demoCards are the demo officer's virtual card and the demo's two blank
// cards: virtual cards in DIR/democards, factory-fresh when first made,
// that the station uses in process (no PC/SC reader needed). They keep
// what is enrolled on them; the Cards screen resets them. Home inserts
// and removes all three.
func demoCards(st *station.Station) ([]tui.LocalCard, error) {
	dir := filepath.Join(st.Dir, demoCardsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var out []tui.LocalCard
	for _, name := range []string{"blank-1", "blank-2"} {
		path := filepath.Join(dir, name+".json")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			var b [4]byte
			if _, err := rand.Read(b[:]); err != nil {
				return nil, err
			}
			vs, err := virtual.NewState(binary.BigEndian.Uint32(b[:])%90000000 + 10000000)
			if err != nil {
				return nil, err
			}
			if err := vs.Save(path); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		}
		out = append(out, tui.LocalCard{Name: "virtual card " + name, Open: func() (card.Card, error) {
			vs, err := virtual.LoadState(path)
			if err != nil {
				return nil, err
			}
			return virtual.New(vs, path), nil
		}})
	}
	// The officer's virtual card, so that it too can be removed (which
	// locks the station, as removing a real officer card does).
	officer := tui.LocalCard{Name: "virtual card " + st.VirtualCardPath(station.DemoOfficer), Officer: station.DemoOfficer,
		Open: func() (card.Card, error) { return st.VirtualCard(station.DemoOfficer) }}
	return append([]tui.LocalCard{officer}, out...), nil
}

// runTUI opens the full-screen station on st, running the configured
// embedded services in-process unless f.noServices.
func (a *app) runTUI(ctx context.Context, st *station.Station, tf tuiFlags) error {
	idle := tf.idleLock
	if idle == 0 {
		idle = -1 // never
	}
	// The kiosk: card and certificate status changes need a signed-in
	// officer, who is the actor in the audit log.
	st.RequireOfficer = true
	opts := tui.Options{Station: st, NoColor: a.getenv("NO_COLOR") != "", IdleLock: idle, LocalCards: tf.local, DemoOfficerPIN: tf.demoPIN}
	noServices := tf.noServices
	if !noServices {
		svc := st.Config.Services
		if svc.HTTP != "" || svc.LDAP != "" || svc.LDAPS != "" || svc.KDC != "" {
			opts.Serve = &station.ServeOptions{HTTP: svc.HTTP, LDAP: svc.LDAP, LDAPS: svc.LDAPS, KDC: svc.KDC}
		}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	// Hold the data directory, as serve does: other scstation commands on
	// it are sent here over the control socket while the station is open.
	release, err := a.holdDataDir(ctx, st)
	if err != nil {
		return err
	}
	defer release()
	f := a.stdout.(*os.File)
	return tui.Run(ctx, opts, tea.WithOutput(f), tea.WithInput(a.stdin))
}

// tuiLog sends the station's log to DIR/station.log while the full-screen
// station draws (stderr would scribble over the screen).
func (a *app) tuiLog(st *station.Station) (func(), error) {
	f, err := os.OpenFile(filepath.Join(st.Dir, "station.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	old := st.Log
	st.Log = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: a.level}))
	return func() { st.Log = old; f.Close() }, nil
}

// withTUI makes the root command open the full-screen station.
func (a *app) withTUI(root *cobra.Command) {
	var f tuiFlags
	root.Args = cobra.NoArgs
	root.RunE = a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
		if err := a.needTerminal(); err != nil {
			return err
		}
		restore, err := a.tuiLog(st)
		if err != nil {
			return err
		}
		defer restore()
		return a.runTUI(cmd.Context(), st, f)
	})
	f.register(root.Flags())
}
