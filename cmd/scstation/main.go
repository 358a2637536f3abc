// Command scstation is the smart-card enrollment station: a certificate
// authority, directory and KDC in one program, with a full-screen station
// for enrollment officers. See the README for usage.
//
// # Commands and the control socket
//
// While serve (or the station) holds a data directory, it listens on
// DIR/control.sock, and every other scstation command on that directory
// is run by the holder: the calling process sends its arguments, working
// directory and SCSTATION_* environment, relays its standard input and
// output and its terminal for prompts, and exits with the command's code.
// The holder runs the same command tree (a fresh app) against its open
// station. So that a command gives the same result either way, a command:
//
//   - reaches the data directory only through a.open, a.withStation or
//     a.withDirectory (in the holder they hand out its open station;
//     closing it is harmless);
//   - marks every flag that names a file with cmd.MarkFlagFilename(name),
//     and passes file arguments through a.path(arg): relative names then
//     resolve against the caller's working directory, never the holder's;
//   - reads standard input from cmd.InOrStdin() or a.stdin, writes to
//     cmd.OutOrStdout()/cmd.ErrOrStderr() or a.stdout/a.stderr, never
//     os.Stdin/os.Stdout/os.Stderr;
//   - asks for secrets with a.readSecret (or a.passphrase, a.secretReader,
//     a.readNewPassword), never by opening /dev/tty itself;
//   - reads the environment with a.getenv/a.lookupEnv; only SCSTATION_*
//     variables travel with a forwarded command;
//   - is wrapped in runsLocally(cmd) if it never opens the data directory's
//     databases (load generators, the emulator), or refusedWhileHeld(cmd)
//     if it cannot run beside a holder (init, serve, demo, the station).
//
// TestFileFlagsMarked and TestNoDirectTerminalOrEnv check the rules they
// can; TestControlMode lists which commands go where.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
)

// version is set by the Makefile with -ldflags "-X main.version=...".
var version = ""

// Exit codes, a contract with scripts.
const (
	exitOK      = 0
	exitRefused = 1 // a refusal or an invalid result
	exitUsage   = 2 // a usage or environment error
)

// usageError marks errors that are the caller's misuse of the command line.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// refusal marks results that are a "no" rather than a failure to run.
type refusal struct{ error }

type app struct {
	dir      string
	logLevel string
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	log      *slog.Logger
	level    slog.Level

	// args is the invocation, sent whole to the holder of the data
	// directory when there is one.
	args []string
	// For a command forwarded over the control socket: the client's
	// working directory, the holder's open station, and the session with
	// the client (its streams, terminal and environment).
	cwd     string
	held    *station.Station
	session *station.ControlSession
}

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	os.Exit(a.run(os.Args[1:]))
}

func (a *app) run(args []string) int { return a.runContext(context.Background(), args) }

func (a *app) runContext(ctx context.Context, args []string) int {
	a.args = args
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var fw forwarded
	if errors.As(err, &fw) {
		return fw.code
	}
	fmt.Fprintln(a.stderr, "scstation:", a.explainInUse(err))
	return exitCode(err)
}

func exitCode(err error) int {
	var (
		ue  usageError
		rf  refusal
		pe  *pki.PolicyError
		re  *pki.RequestError
		cmd = exitUsage
	)
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &rf), errors.As(err, &pe), errors.As(err, &re),
		errors.Is(err, pki.ErrUnknownTemplate), errors.Is(err, pki.ErrAlreadyRevoked),
		errors.Is(err, pki.ErrNotOnHold), errors.Is(err, pki.ErrNotFound),
		errors.Is(err, station.ErrPassphrase), errors.Is(err, station.ErrExists),
		errors.Is(err, station.ErrCAExists), errors.Is(err, directory.ErrUserExists),
		errors.Is(err, directory.ErrUPNInUse), errors.Is(err, directory.ErrNoSuchUser):
		return exitRefused
	}
	// cobra's own complaints (unknown flag, wrong arg count) are usage errors.
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "required flag", "invalid argument", "flag needs an argument"} {
		if strings.Contains(msg, p) {
			return exitUsage
		}
	}
	return cmd
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "scstation",
		Short: "Smart-card enrollment station: CA, directory and KDC in one program",
		Long: `scstation issues PIV smart cards for smart-card logon (Kerberos PKINIT) and
S/MIME mail. It carries its own certificate authority, directory and KDC.

The data directory is --dir, else $SCSTATION_DIR, else $XDG_DATA_HOME/scstation
(~/.local/share/scstation).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup(cmd)
		},
	}
	root.PersistentFlags().StringVar(&a.dir, "dir", "", "data directory (default $SCSTATION_DIR or the XDG data home)")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "", "log level: debug, info, warn, error (default warn; info for serve)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.versionCommand(), a.initCommand(), a.demoCommand(), a.serveCommand(), a.caCommand(), a.userCommand())
	root.AddCommand(a.cardCommand(), a.vcardCommand())
	root.AddCommand(a.auditCommand())
	root.AddCommand(a.groupCommand())
	root.AddCommand(a.ldifCommand())
	root.AddCommand(a.benchCommand())
	root.AddCommand(a.kdcCommand())
	root.AddCommand(a.logonCommand())
	root.AddCommand(a.enrollCommand())
	a.extendCardCommand(root)
	root.AddCommand(a.mailCommand())
	a.markControlModes(root)
	a.withTUI(root)
	return root
}

func (a *app) setup(cmd *cobra.Command) error {
	if a.dir == "" {
		a.dir = a.getenv("SCSTATION_DIR")
	}
	if a.dir == "" && a.session != nil {
		a.dir = a.session.Request.Dir
	}
	a.dir = a.path(a.dir)
	if a.dir == "" {
		d, err := station.DefaultDir()
		if err != nil {
			return err
		}
		a.dir = d
	}
	level := slog.LevelWarn
	if cmd.Name() == "serve" {
		level = slog.LevelInfo
	}
	if a.logLevel == "" {
		a.logLevel = a.getenv("SCSTATION_LOG")
	}
	if a.logLevel != "" {
		if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
			return usagef("--log-level %q: want debug, info, warn or error", a.logLevel)
		}
	}
	a.level = level
	a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	return a.control(cmd)
}

// open opens the data directory; in the process that holds it (a command
// forwarded over the control socket), it lends out the open station.
func (a *app) open() (*station.Station, error) {
	if a.held != nil {
		st := a.held.Borrow(a.log)
		// The same directory (checked in setup), named as the client
		// named it, so that the paths it prints are the ones it knows.
		st.Dir = a.dir
		return st, nil
	}
	st, err := station.Open(a.dir, a.log)
	if errors.Is(err, station.ErrNoDataDir) {
		return nil, usageError{err}
	}
	return st, err
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "scstation", versionString())
			return nil
		},
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			return "devel " + rev + dirty
		}
		if bi.Main.Version != "" {
			return bi.Main.Version
		}
	}
	return "devel"
}

// withStation runs a command body with the data directory open, and closes
// it afterwards.
func (a *app) withStation(run func(cmd *cobra.Command, args []string, st *station.Station) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		st, err := a.open()
		if err != nil {
			return err
		}
		defer st.Close()
		return run(cmd, args, st)
	}
}

// withDirectory runs a command body with the data directory and its
// directory store open.
func (a *app) withDirectory(run func(cmd *cobra.Command, args []string, st *station.Station, d *directory.Store) error) func(*cobra.Command, []string) error {
	return a.withStation(func(cmd *cobra.Command, args []string, st *station.Station) error {
		d, err := st.Directory()
		if err != nil {
			return err
		}
		return run(cmd, args, st, d)
	})
}
