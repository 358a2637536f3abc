// Package tmuxtest drives a full-screen program in a real tmux, the way a
// person at a terminal would: it types keys (send-keys) and reads the
// screen (capture-pane). Each Session runs on a tmux server of its own (a
// private socket), so parallel tests and the developer's own tmux never
// meet, and the server is killed when the test ends.
//
// tmux is a test peer: without it the test is skipped, or fails with
// CI=true (see internal/testpeer).
package tmuxtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/internal/testpeer"
)

// Options describe the terminal a Session's program runs in.
type Options struct {
	// Width and Height of the terminal; 80×24 when zero.
	Width, Height int
	// Env is added to the program's environment, NAME=value. TERM is
	// always xterm-256color.
	Env []string
	// NoColor sets NO_COLOR=1 for the program.
	NoColor bool
	// Dir is the program's working directory (the test's when empty).
	Dir string
}

// Session is one program running in a tmux window.
type Session struct {
	t      testing.TB
	tmux   string
	socket string
	last   string
}

// Start runs argv in a new tmux session of its own (a private socket
// under t.TempDir()) and kills the tmux server in t.Cleanup. The window
// stays open after the program exits, so its last screen can be read.
func Start(t testing.TB, opts Options, argv ...string) *Session {
	t.Helper()
	if len(argv) == 0 {
		t.Fatal("tmuxtest: no command")
	}
	w, h := opts.Width, opts.Height
	if w == 0 {
		w = 80
	}
	if h == 0 {
		h = 24
	}
	// A short socket path: unix socket paths are limited to ~100 bytes
	// and t.TempDir() can be long.
	sockDir, err := os.MkdirTemp("", "tmuxtest")
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{t: t, tmux: testpeer.Path(t, "tmux"), socket: filepath.Join(sockDir, "s")}
	t.Cleanup(func() {
		exec.Command(s.tmux, "-S", s.socket, "kill-server").Run()
		os.RemoveAll(sockDir)
	})
	env := append([]string{"TERM=xterm-256color"}, opts.Env...)
	if opts.NoColor {
		env = append(env, "NO_COLOR=1")
	}
	// A configuration of our own, not the user's: keep the pane (and its
	// last screen) when the program exits, from the start.
	conf := filepath.Join(sockDir, "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The command runs under env(1)
	// so that its environment is exactly the test's plus env, whatever the
	// tmux server's global environment holds.
	args := []string{"-S", s.socket, "-f", conf, "new-session", "-d", "-s", "t",
		"-x", fmt.Sprint(w), "-y", fmt.Sprint(h)}
	if opts.Dir != "" {
		args = append(args, "-c", opts.Dir)
	}
	args = append(args, "--", "env")
	args = append(args, env...)
	args = append(args, argv...)
	if out, err := exec.Command(s.tmux, args...).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	return s
}

func (s *Session) tmuxRun(args ...string) string {
	s.t.Helper()
	out, err := exec.Command(s.tmux, append([]string{"-S", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s\nlast screen:\n%s", strings.Join(args, " "), err, out, s.last)
	}
	return string(out)
}

// SendKeys sends tmux key names (Enter, Escape, Up, C-c, F1, ...), each
// one key press.
func (s *Session) SendKeys(keys ...string) {
	s.t.Helper()
	s.tmuxRun(append([]string{"send-keys", "-t", "t"}, keys...)...)
}

// Type sends text literally, one key press per character.
func (s *Session) Type(text string) {
	s.t.Helper()
	s.tmuxRun("send-keys", "-t", "t", "-l", "--", text)
}

// Capture returns the screen as text (no colours or attributes), one
// line per row, trailing blanks trimmed.
func (s *Session) Capture() string {
	s.t.Helper()
	s.last = s.tmuxRun("capture-pane", "-p", "-t", "t")
	return s.last
}

// WaitFor polls the screen until it contains every one of texts, and
// returns it; after timeout it fails the test with the last screen.
func (s *Session) WaitFor(timeout time.Duration, texts ...string) string {
	s.t.Helper()
	return s.wait(timeout, strings.Join(texts, ", "), func(screen string) bool {
		for _, t := range texts {
			if !strings.Contains(screen, t) {
				return false
			}
		}
		return true
	})
}

// WaitForRegexp polls the screen until re matches it, and returns the
// screen; after timeout it fails the test with the last screen.
func (s *Session) WaitForRegexp(timeout time.Duration, re *regexp.Regexp) string {
	s.t.Helper()
	return s.wait(timeout, re.String(), re.MatchString)
}

func (s *Session) wait(timeout time.Duration, what string, ok func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		screen := s.Capture()
		if ok(screen) {
			return screen
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("tmuxtest: %q not on the screen after %v; the screen:\n%s", what, timeout, screen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
