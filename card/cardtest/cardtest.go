// Package cardtest lets tests put virtual cards into the real PC/SC stack:
// it hands out the vsmartcard (vpcd) virtual readers of the host's one
// pcscd under a cross-process lock, because `go test` runs packages in
// parallel processes and there is only one pcscd per host.
//
// `make test` starts a pcscd with four virtual readers around the tests
// (scripts/with-pcscd.sh). Without it, the first test that needs pcscd
// starts one itself when it can (it exits after 60 s without clients). When
// pcscd cannot be reached the test is skipped, or fails when CI=true.
//
// A test that stops and restarts pcscd itself uses StartPCSCD: it waits
// until no other test process or scripts/with-pcscd.sh run uses pcscd and
// keeps them out while it owns it (see OwnerLock).
package cardtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebfe/scard"
	"golang.org/x/sys/unix"

	"github.com/scstation/scstation/card/virtual"
)

// VirtualReader is one slot of a vpcd virtual reader: the name pcscd gives
// it and the TCP address a virtual card connects to.
type VirtualReader struct {
	Name string
	Addr string
}

// Readers are the virtual readers the harness knows, in the order it hands
// them out. The first two are Debian's vsmartcard-vpcd defaults; the other
// two come from a second reader.conf entry (see scripts/with-pcscd.sh).
var Readers = []VirtualReader{
	{"Virtual PCD 00 00", "127.0.0.1:35963"},
	{"Virtual PCD 00 01", "127.0.0.1:35964"},
	{"Test PCD 00 00", "127.0.0.1:40059"},
	{"Test PCD 00 01", "127.0.0.1:40060"},
}

// How long to wait for a free reader, and for pcscd to notice a card.
var (
	ReaderWait = 3 * time.Minute
	CardWait   = 10 * time.Second
)

// skip skips the test, or fails it under CI where a missing peer is a
// failure.
func skip(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// PCSCD makes sure pcscd is reachable, starting one if none runs and that
// is possible; otherwise the test is skipped (fails under CI).
func PCSCD(tb testing.TB) {
	tb.Helper()
	if err := ensurePCSCD(); err != nil {
		skip(tb, "pcscd is not available: %v (run the tests with make test)", err)
	}
}

var startMu sync.Mutex

func ensurePCSCD() error {
	// Not while a test that restarts pcscd owns it (see StartPCSCD).
	if err := holdSharedOwner(); err != nil {
		return err
	}
	if pcscdUp() == nil {
		return nil
	}
	startMu.Lock()
	defer startMu.Unlock()
	// One process starts it; the others wait on the lock, then see it up.
	unlock, err := lockFile("/tmp/scstation-pcscd-start.lock", true)
	if err != nil {
		return err
	}
	defer unlock()
	if pcscdUp() == nil {
		return nil
	}
	if err := startPCSCD(); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := pcscdUp()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pcscdUp() error {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return err
	}
	return ctx.Release()
}

// readerConf declares the four virtual readers. The second entry needs its
// own copy of the driver: vpcd keeps its sockets in per-library globals
// indexed by slot, so two readers sharing one libifdvpcd.so would both
// listen on the second reader's ports.
const readerConf = `FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:0x8C7B
LIBPATH      %s
CHANNELID    0x8C7B

FRIENDLYNAME "Test PCD"
DEVICENAME   /dev/null:0x9C7B
LIBPATH      %s
CHANNELID    0x9C7B
`

const vpcdDriver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

// WriteReaderConf writes a pcscd configuration directory (for pcscd -c)
// with the four virtual readers into dir/conf, and the driver copy the
// second reader needs into dir/lib.
func WriteReaderConf(dir string) (confDir string, err error) {
	lib, err := os.ReadFile(vpcdDriver)
	if err != nil {
		return "", fmt.Errorf("vsmartcard-vpcd is not installed: %w", err)
	}
	confDir, libDir := filepath.Join(dir, "conf"), filepath.Join(dir, "lib")
	for _, d := range []string{confDir, libDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	copyPath := filepath.Join(libDir, "libifdvpcd-test.so")
	if err := os.WriteFile(copyPath, lib, 0o755); err != nil {
		return "", err
	}
	conf := fmt.Sprintf(readerConf, vpcdDriver, copyPath)
	return confDir, os.WriteFile(filepath.Join(confDir, "vpcd"), []byte(conf), 0o644)
}

// startPCSCD starts a daemonised pcscd that exits by itself after 60 s
// without clients (--auto-exit), so that nothing is left running.
func startPCSCD() error {
	path, err := exec.LookPath("pcscd")
	if err != nil {
		path = "/usr/sbin/pcscd"
		if _, err := os.Stat(path); err != nil {
			return errors.New("pcscd is not installed")
		}
	}
	conf, err := WriteReaderConf("/tmp/scstation-pcscd-auto")
	if err != nil {
		return err
	}
	out, err := exec.Command(path, "--auto-exit", "-c", conf).CombinedOutput()
	if err != nil {
		return fmt.Errorf("starting pcscd: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// lockFile takes an exclusive flock on path; wait=false fails at once when
// it is held. The returned func releases it.
func lockFile(path string, wait bool) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Reader hands out a free virtual reader for the test's exclusive use: its
// PC/SC name, and the vpcd address a card connects to. The lock
// (/tmp/scstation-vpcd-<port>.lock) is released when the test ends.
func Reader(tb testing.TB) (name, vpcdAddr string) {
	tb.Helper()
	PCSCD(tb)
	deadline := time.Now().Add(ReaderWait)
	for {
		known, err := listReaders()
		if err != nil {
			skip(tb, "pcscd: %v", err)
		}
		usable := 0
		for _, r := range Readers {
			if !known[r.Name] {
				continue
			}
			usable++
			_, port, _ := strings.Cut(r.Addr, ":")
			unlock, err := lockFile("/tmp/scstation-vpcd-"+port+".lock", false)
			if err != nil {
				continue
			}
			if present, _ := cardPresent(r.Name); present {
				unlock() // someone outside the harness uses it
				continue
			}
			tb.Cleanup(unlock)
			return r.Name, r.Addr
		}
		if usable == 0 {
			skip(tb, "pcscd has none of the virtual readers %v (is vsmartcard-vpcd installed?)", names())
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no virtual reader became free within %v", ReaderWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func names() []string {
	var n []string
	for _, r := range Readers {
		n = append(n, r.Name)
	}
	return n
}

func listReaders() (map[string]bool, error) {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return nil, err
	}
	defer ctx.Release()
	list, err := ctx.ListReaders()
	if err != nil && !errors.Is(err, scard.ErrNoReadersAvailable) {
		return nil, err
	}
	m := map[string]bool{}
	for _, r := range list {
		m[r] = true
	}
	return m, nil
}

// cardPresent asks pcscd whether a card is in the reader by connecting to
// it. (GetStatusChange would do, but ebfe/scard's is unsafe to call from
// two goroutines, and the code under test may be polling too.)
func cardPresent(reader string) (bool, error) {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return false, err
	}
	defer ctx.Release()
	c, err := ctx.Connect(reader, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		return false, err
	}
	c.Disconnect(scard.LeaveCard)
	return true, nil
}

// Attach puts card into a free virtual reader (see Reader) and returns the
// reader's name once pcscd reports the card present. At the end of the
// test the card is taken out again and the reader released once pcscd has
// noticed.
func Attach(tb testing.TB, card *virtual.Card) (readerName string) {
	tb.Helper()
	name, addr := Reader(tb)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- card.ServeVPCD(ctx, addr, log) }()
	tb.Cleanup(func() {
		cancel()
		<-done
		waitFor(func() bool { p, _ := cardPresent(name); return !p }, CardWait)
	})
	if !waitFor(func() bool { p, _ := cardPresent(name); return p }, CardWait) {
		tb.Fatalf("pcscd did not see the virtual card in %q within %v", name, CardWait)
	}
	return name
}

func waitFor(cond func() bool, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// OpenSCEnv returns the environment for OpenSC tools (opensc-tool,
// pkcs15-tool, pkcs11-tool, opensc-pkcs11.so) that restricts them to one
// reader. Without it they open every card pcscd knows, including the cards
// of tests running in parallel, and their SELECTs reset those cards' PIN
// status.
func OpenSCEnv(tb testing.TB, reader string) []string {
	tb.Helper()
	known, err := listReaders()
	if err != nil {
		skip(tb, "pcscd: %v", err)
	}
	var ignore []string
	for _, r := range Readers {
		known[r.Name] = true
	}
	for r := range known {
		if r != reader {
			ignore = append(ignore, fmt.Sprintf("%q", r))
		}
	}
	conf := "app default {\n"
	if len(ignore) > 0 {
		conf += "\tignored_readers = " + strings.Join(ignore, ", ") + ";\n"
	}
	conf += "}\n"
	path := filepath.Join(tb.TempDir(), "opensc.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	return append(os.Environ(), "OPENSC_CONF="+path)
}
