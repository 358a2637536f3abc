package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"
	"golang.org/x/term"

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

// runTUI opens the full-screen station on st, running the configured
// embedded services in-process unless noServices.
func (a *app) runTUI(ctx context.Context, st *station.Station, noServices bool) error {
	opts := tui.Options{Station: st, NoColor: a.getenv("NO_COLOR") != ""}
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
	var noServices bool
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
		return a.runTUI(cmd.Context(), st, noServices)
	})
	root.Flags().BoolVar(&noServices, "no-services", false, "do not run the embedded services (KDC, LDAP, HTTP) in the full-screen station")
}
