package cardtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tests that stop and start pcscd (see StartPCSCD) need the host's one
// pcscd to themselves. They take OwnerLock exclusively; everything else
// that uses pcscd holds it shared for as long as it runs:
// scripts/with-pcscd.sh around its command, and every test process from
// its first PCSCD call (or Reader, Attach) until it exits.
const OwnerLock = "/tmp/scstation-pcscd.lock"

// pcsc-lite's compiled-in paths: pcscd refuses to start while the pid file
// names a live process.
const (
	PIDFile = "/run/pcscd/pcscd.pid"
	Socket  = "/run/pcscd/pcscd.comm"
)

// How long StartPCSCD waits for other test runs to let go of pcscd, and for
// a pcscd that the harness started with --auto-exit to leave by itself.
var (
	OwnWait      = 3 * time.Minute
	AutoExitWait = 90 * time.Second
)

// autoConfDir is where the harness's own auto-started pcscd reads its
// configuration (see startPCSCD).
const autoConfDir = "/tmp/scstation-pcscd-auto/conf"

// sharedOwner holds OwnerLock shared for the rest of the process, once
// PCSCD was called.
var sharedOwner struct {
	done bool
	err  error
}

func holdSharedOwner() error {
	startMu.Lock()
	defer startMu.Unlock()
	if !sharedOwner.done {
		sharedOwner.done = true
		// Kept open (and locked) until the process exits.
		_, sharedOwner.err = flockFile(OwnerLock, unix.LOCK_SH)
	}
	return sharedOwner.err
}

// flockFile opens path (creating it) and flocks it with how (LOCK_SH or
// LOCK_EX, maybe |LOCK_NB). The lock lasts until the file is closed.
func flockFile(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// lockWithin takes an exclusive flock on path, waiting at most limit. It
// logs once when it has to wait.
func lockWithin(tb testing.TB, path, why string, limit time.Duration) (*os.File, bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	logged := false
	for {
		f, err := flockFile(path, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, true
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			tb.Fatalf("lock %s: %v", path, err)
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		if !logged {
			tb.Logf("waiting up to %v for %s (%s)", limit, why, path)
			logged = true
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Daemon is a pcscd that a test owns: it can stop and start it again, with
// the same four virtual readers (see Readers). Make it with StartPCSCD.
type Daemon struct {
	tb     testing.TB
	path   string // the pcscd binary
	conf   string // its -c directory
	log    string // its stdout and stderr, all starts appended
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	starts int
}

// StartPCSCD starts a pcscd (pcscd --foreground -c DIR/conf, the
// configuration WriteReaderConf writes into dir) for a test that needs to
// stop and restart it. The test must own pcscd: StartPCSCD first waits (at
// most OwnWait) until no other test run or test process uses pcscd, and
// then keeps them out until the test ends (see OwnerLock); it also holds
// the locks of all four virtual readers. A pcscd that is already running
// (a system one, or one socket-activated by systemd) cannot be owned: the
// test is skipped, or fails under CI. At the end of the test pcscd is
// stopped and its log shown if the test failed. A process that uses
// StartPCSCD must not also use PCSCD, Reader or Attach: they would wait
// for it.
func StartPCSCD(tb testing.TB, dir string) *Daemon {
	tb.Helper()
	path, err := exec.LookPath("pcscd")
	if err != nil {
		path = "/usr/sbin/pcscd"
	}
	if _, err := os.Stat(path); err != nil {
		skip(tb, "pcscd is not installed (make deps)")
	}
	conf, err := WriteReaderConf(dir)
	if err != nil {
		skip(tb, "%v (make deps)", err)
	}

	// Locks, released (files closed) at the end of the test, last first.
	hold := func(path, why string, limit time.Duration) {
		tb.Helper()
		f, ok := lockWithin(tb, path, why, limit)
		if !ok {
			skip(tb, "%s stayed busy for %v: cannot own pcscd", why, limit)
		}
		tb.Cleanup(func() { f.Close() })
	}
	hold(OwnerLock, "other test runs using pcscd to finish", OwnWait)
	// No harness in this process may start a pcscd of its own while ours
	// is down, nor attach cards to the readers.
	hold("/tmp/scstation-pcscd-start.lock", "the harness's pcscd start lock", time.Minute)
	for _, r := range Readers {
		_, port, _ := strings.Cut(r.Addr, ":")
		hold("/tmp/scstation-vpcd-"+port+".lock", "virtual reader "+r.Name, time.Minute)
	}

	if err := clearForeignPCSCD(tb); err != nil {
		skip(tb, "%v", err)
	}
	d := &Daemon{tb: tb, path: path, conf: conf, log: filepath.Join(dir, "pcscd.log")}
	tb.Cleanup(func() {
		if err := d.Stop(); err != nil {
			tb.Errorf("stopping pcscd: %v", err)
		}
		if tb.Failed() {
			tb.Logf("pcscd log (%s):\n%s", d.log, d.Log())
		}
	})
	if err := d.Start(); err != nil {
		tb.Fatal(err)
	}
	return d
}

// clearForeignPCSCD makes sure no pcscd runs that the caller did not
// start. A harness pcscd started with --auto-exit is idle once the caller
// holds OwnerLock, and leaves by itself: it is waited for. Stale pid file
// and socket (a pcscd that was killed) are removed.
func clearForeignPCSCD(tb testing.TB) error {
	tb.Helper()
	if pid := pidFromFile(); pid > 0 && alive(pid) {
		cmdline := cmdlineOf(pid)
		if !strings.Contains(cmdline, "--auto-exit") || !strings.Contains(cmdline, autoConfDir) {
			return fmt.Errorf("a pcscd is already running (pid %d: %s); this test must own pcscd and cannot: "+
				"stop it first (with systemd: systemctl stop pcscd.socket pcscd.service)", pid, cmdline)
		}
		tb.Logf("waiting up to %v for the harness's idle pcscd (pid %d, --auto-exit) to exit", AutoExitWait, pid)
		// pcscd sets its exit alarm when its last client leaves: be one,
		// in case none ever came.
		pcscdUp()
		if !waitFor(func() bool { return !alive(pid) }, AutoExitWait) {
			return fmt.Errorf("the harness's pcscd (pid %d, --auto-exit) did not exit within %v: something still uses it", pid, AutoExitWait)
		}
	}
	if _, err := os.Stat(Socket); err == nil {
		// No pcscd process, but the socket exists: either systemd listens
		// there (socket activation) or a pcscd was killed.
		if c, err := net.DialTimeout("unix", Socket, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("something listens on %s (systemd's pcscd.socket?); this test must own pcscd and cannot: "+
				"stop it first (systemctl stop pcscd.socket pcscd.service)", Socket)
		}
		tb.Logf("removing the stale %s and %s of a pcscd that was killed", Socket, PIDFile)
	}
	for _, f := range []string{Socket, PIDFile} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot remove stale %s: %v", f, err)
		}
	}
	return nil
}

// pidFromFile reads pcscd's pid file (which ends in a NUL); 0 if none.
func pidFromFile() int {
	b, err := os.ReadFile(PIDFile)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.Trim(string(b), "\x00\n\t "))
	return pid
}

func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

func cmdlineOf(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// Start starts pcscd (again) with the same configuration and returns when
// it serves clients: its pid file names it, the socket exists and a PC/SC
// context can be established.
func (d *Daemon) Start() error {
	if d.Running() {
		return errors.New("pcscd is already running")
	}
	logf, err := os.OpenFile(d.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	d.starts++
	fmt.Fprintf(logf, "==== start %d at %s\n", d.starts, time.Now().Format(time.RFC3339Nano))
	// Without -a: APDU logging would write PINs into the log.
	cmd := exec.Command(d.path, "--foreground", "-c", d.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Should the test binary die (a timeout), pcscd goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting pcscd: %w", err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	d.cmd, d.exited = cmd, exited

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("pcscd exited at start (%v); log:\n%s", cmd.ProcessState, d.Log())
		default:
		}
		_, serr := os.Stat(Socket)
		if pidFromFile() == cmd.Process.Pid && serr == nil && pcscdUp() == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pcscd (pid %d) not ready within 10 s; log:\n%s", cmd.Process.Pid, d.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop stops pcscd with SIGTERM and waits for it to exit (SIGKILL after
// 10 s). pcscd removes its pid file and socket itself; after a SIGKILL
// Stop removes them. Stopping a stopped Daemon does nothing.
func (d *Daemon) Stop() error {
	if d.cmd == nil {
		return nil
	}
	pid := d.cmd.Process.Pid
	var err error
	if !d.Running() {
		err = fmt.Errorf("pcscd (pid %d) had exited by itself: %v", pid, d.cmd.ProcessState)
	} else {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
			if !d.cmd.ProcessState.Success() {
				err = fmt.Errorf("pcscd (pid %d) exited with %v on SIGTERM", pid, d.cmd.ProcessState)
			}
		case <-time.After(10 * time.Second):
			d.cmd.Process.Kill()
			<-d.exited
			err = fmt.Errorf("pcscd (pid %d) ignored SIGTERM for 10 s: killed", pid)
		}
	}
	d.cmd = nil
	if pidFromFile() == pid {
		os.Remove(Socket)
		os.Remove(PIDFile)
		if err == nil {
			err = fmt.Errorf("pcscd (pid %d) left its pid file behind", pid)
		}
	}
	return err
}

// Restart stops pcscd and starts it again.
func (d *Daemon) Restart() error {
	if err := d.Stop(); err != nil {
		return err
	}
	return d.Start()
}

// Running reports whether the pcscd this Daemon started still runs.
func (d *Daemon) Running() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// Pid is the running pcscd's process id, 0 when stopped.
func (d *Daemon) Pid() int {
	if !d.Running() {
		return 0
	}
	return d.cmd.Process.Pid
}

// Log returns what pcscd wrote so far, over all its starts.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}
