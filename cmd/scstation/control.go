package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

// How a command relates to the control socket (see the top of main.go).
const (
	controlKey = "scstation/control"
	// controlLocal commands run in the calling process even while another
	// process holds the data directory: they do not open its databases.
	controlLocal = "local"
	// controlRefuse commands cannot run while another process holds the
	// data directory (they would hold it themselves, or change what the
	// holder has loaded).
	controlRefuse = "refuse"
)

// runsLocally marks cmd (and its subcommands) to run in the calling
// process, never through the control socket.
func runsLocally(cmd *cobra.Command) *cobra.Command { return markControl(cmd, controlLocal) }

// refusedWhileHeld marks cmd (and its subcommands) as refused while another
// process holds the data directory.
func refusedWhileHeld(cmd *cobra.Command) *cobra.Command { return markControl(cmd, controlRefuse) }

func markControl(cmd *cobra.Command, mode string) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[controlKey] = mode
	return cmd
}

// markControlModes marks the commands of the tree that do not simply go to the
// holder of the data directory. (New commands may instead wrap themselves
// in runsLocally or refusedWhileHeld where they are made.)
func (a *app) markControlModes(root *cobra.Command) {
	// The root command is the full-screen station: it holds the directory.
	refusedWhileHeld(root)
	for _, c := range root.Commands() {
		switch c.Name() {
		case "init", "demo", "serve":
			refusedWhileHeld(c)
		case "version", "vcard", "bench", "logon":
			// These never open the databases (logon reads only the
			// configuration and the CA chain). Card commands do go to the
			// holder: some of them will use the card inventory.
			runsLocally(c)
		case "ca":
			for _, sub := range c.Commands() {
				if sub.Name() == "init" {
					// It writes the configuration the holder has loaded.
					refusedWhileHeld(sub)
				}
			}
		}
	}
}

// controlMode is the mode of cmd: its own mark, else its nearest marked
// parent's below the root (the root's mark is for the root alone), else
// forwarding. Cobra's help and completion commands run locally.
func controlMode(cmd *cobra.Command) string {
	if !cmd.Runnable() {
		return controlLocal
	}
	switch cmd.Name() {
	case "help", "completion", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
		return controlLocal
	}
	for c := cmd; c != nil; c = c.Parent() {
		if c.HasParent() || c == cmd {
			if m, ok := c.Annotations[controlKey]; ok {
				return m
			}
		}
	}
	return ""
}

// forwarded ends a command that the holder of the data directory ran; its
// exit code is the command's.
type forwarded struct{ code int }

func (f forwarded) Error() string { return "forwarded (exit " + strconv.Itoa(f.code) + ")" }

// path resolves a file name from the command line: relative names are
// relative to the caller's working directory, which for a forwarded
// command is the client's, not the holder's. "" and "-" stay as they are.
func (a *app) path(p string) string {
	if p == "" || p == "-" || filepath.IsAbs(p) || a.cwd == "" {
		return p
	}
	return filepath.Join(a.cwd, p)
}

// getenv reads the caller's environment: for a forwarded command, the
// SCSTATION_* variables the client sent.
func (a *app) getenv(key string) string {
	v, _ := a.lookupEnv(key)
	return v
}

func (a *app) lookupEnv(key string) (string, bool) {
	if a.session != nil {
		v, ok := a.session.Request.Env[key]
		return v, ok
	}
	return os.LookupEnv(key)
}

// readSecret asks on the caller's terminal without echo (for a forwarded
// command, the client's). It returns station.ErrNoTerminal when there is
// none. The caller wipes the answer.
func (a *app) readSecret(prompt string) ([]byte, error) {
	if a.session != nil {
		return a.session.Prompt(prompt)
	}
	return ttyPrompt(prompt)
}

// ttyPrompt asks on this process's terminal.
func ttyPrompt(prompt string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, station.ErrNoTerminal
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return nil, station.ErrNoTerminal
	}
	fmt.Fprint(tty, prompt)
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return p, err
}

// resolvePathFlags makes the file-name flags of cmd (those marked with
// MarkFlagFilename) relative to the caller's working directory.
func (a *app) resolvePathFlags(cmd *cobra.Command) error {
	if a.cwd == "" {
		return nil
	}
	var err error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if _, ok := f.Annotations[cobra.BashCompFilenameExt]; !ok || err != nil {
			return
		}
		if v := f.Value.String(); v != a.path(v) {
			err = f.Value.Set(a.path(v))
		}
	})
	return err
}

// control decides, before a command runs, where it runs. In the holder
// (a forwarded command) it checks that the command may run there. In a
// client, when a live process holds the data directory, it refuses the
// commands that cannot run beside it and sends the others to it.
func (a *app) control(cmd *cobra.Command) error {
	mode := controlMode(cmd)
	if a.session != nil {
		if mode != "" {
			return usagef("%s does not run through the control socket of %s", cmd.CommandPath(), a.held.Dir)
		}
		if !sameDir(a.dir, a.held.Dir) {
			return usagef("this process holds %s, not %s", a.held.Dir, a.dir)
		}
		return a.resolvePathFlags(cmd)
	}
	if mode == controlLocal {
		return nil
	}
	c, err := station.DialControl(a.dir)
	if errors.Is(err, station.ErrNoHolder) {
		return nil
	}
	if err != nil {
		return err
	}
	if mode == controlRefuse {
		c.Close()
		return refusal{fmt.Errorf("%s is held by a running scstation (pid %d: serve or the station); %s cannot run beside it: stop that process first", a.dir, c.PeerPID, cmd.CommandPath())}
	}
	cwd, err := os.Getwd()
	if err != nil {
		c.Close()
		return err
	}
	dir, err := filepath.Abs(a.dir)
	if err != nil {
		c.Close()
		return err
	}
	a.log.Debug("forwarding the command to the holder of the data directory", "pid", c.PeerPID)
	req := &station.ControlRequest{Args: a.args, Cwd: cwd, Dir: dir, Env: station.ControlEnv(os.Environ()), StdinTerminal: a.stdinTerminal()}
	code, err := station.Forward(c, req, station.ForwardIO{Stdin: a.stdin, Stdout: a.stdout, Stderr: a.stderr, Prompt: ttyPrompt})
	clear(req.Env)
	if err != nil {
		return err
	}
	return forwarded{code}
}

func sameDir(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// holdDataDir makes this process the holder of st's data directory: it
// listens on the control socket and runs the commands other scstation
// processes send. release stops listening and waits for the commands
// still running.
func (a *app) holdDataDir(ctx context.Context, st *station.Station) (release func(), err error) {
	l, err := station.ListenControl(st.Dir)
	var held *station.HeldError
	if errors.As(err, &held) {
		return nil, refusal{err}
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer l.Close()
		station.ServeControl(ctx, l, a.runForwarded(st), st.Log)
	}()
	st.Log.Info("control socket listening", "path", l.Path())
	return func() { cancel(); <-done }, nil
}

// runForwarded runs a command another process sent, with the same command
// tree, against the open station.
func (a *app) runForwarded(st *station.Station) station.ControlHandler {
	return func(ctx context.Context, s *station.ControlSession) (code int) {
		sub := &app{stdin: s.Stdin(), stdout: s.Stdout(), stderr: s.Stderr(), cwd: s.Request.Cwd, held: st, session: s}
		defer func() {
			if r := recover(); r != nil {
				st.Log.Error("forwarded command panicked", "panic", r, "stack", string(debug.Stack()))
				fmt.Fprintln(sub.stderr, "scstation: internal error (see the log of the process holding the data directory)")
				code = exitUsage
			}
		}()
		return sub.runContext(ctx, s.Request.Args)
	}
}

// explainInUse adds to a "database in use" error what holds it: a process
// without a control socket, which nobody can forward to.
func (a *app) explainInUse(err error) error {
	if !errors.Is(err, pki.ErrDatabaseInUse) && !errors.Is(err, directory.ErrInUse) &&
		!errors.Is(err, inventory.ErrInUse) && !errors.Is(err, audit.ErrInUse) {
		return err
	}
	who := "another scstation command"
	if pid := lockHolder(err); pid > 0 {
		who = fmt.Sprintf("process %d", pid)
		if b, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); rerr == nil {
			args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
			if len(args) > 2 {
				args = args[:3]
			}
			who += " (" + strings.Join(args, " ") + ")"
		}
	}
	return fmt.Errorf("%w\n%s is using %s and has no control socket (it is not serve or the station); run this again when it has finished", err, who, a.dir)
}

// lockHolder finds the process holding the flock on the database named in
// err, from /proc/locks; 0 when it cannot tell.
func lockHolder(err error) int {
	msg := err.Error()
	var path string
	for _, f := range strings.Fields(strings.NewReplacer("(", " ", ")", " ").Replace(msg)) {
		if strings.HasSuffix(f, ".db") && filepath.IsAbs(f) {
			path = f
		}
	}
	if path == "" {
		return 0
	}
	fi, serr := os.Stat(path)
	if serr != nil {
		return 0
	}
	ino := inode(fi)
	if ino == 0 {
		return 0
	}
	f, oerr := os.Open("/proc/locks")
	if oerr != nil {
		return 0
	}
	defer f.Close()
	// "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] != "FLOCK" {
			continue
		}
		parts := strings.Split(fs[5], ":")
		if len(parts) != 3 || parts[2] != strconv.FormatUint(ino, 10) {
			continue
		}
		if pid, err := strconv.Atoi(fs[4]); err == nil && pid != os.Getpid() {
			return pid
		}
	}
	return 0
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
