package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/internal/testpeer"
)

// tmuxPane is one tmux session on a tmux server of the test's own (its
// socket in a temporary directory), to drive a full-screen program
// through a real terminal: send-keys in, capture-pane out.
type tmuxPane struct {
	t    *testing.T
	tmux string
	sock string
}

// newTmux starts command (a shell command line) in a w×h tmux pane.
func newTmux(t *testing.T, w, h int, command string) *tmuxPane {
	t.Helper()
	p := &tmuxPane{t: t, tmux: testpeer.Path(t, "tmux"), sock: filepath.Join(t.TempDir(), "tmux.sock")}
	p.run("-f", "/dev/null", "new-session", "-d", "-s", "S", "-x", strconv.Itoa(w), "-y", strconv.Itoa(h), command)
	t.Cleanup(func() { exec.Command(p.tmux, "-S", p.sock, "kill-server").Run() })
	return p
}

func (p *tmuxPane) run(args ...string) string {
	p.t.Helper()
	c := exec.Command(p.tmux, append([]string{"-S", p.sock}, args...)...)
	c.Env = append(os.Environ(), "TMUX=")
	out, err := c.CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// keys sends tmux key names (Enter, Escape, Left, C-c, or single
// characters).
func (p *tmuxPane) keys(keys ...string) {
	p.t.Helper()
	p.run(append([]string{"send-keys", "-t", "S"}, keys...)...)
}

// text types s literally.
func (p *tmuxPane) text(s string) {
	p.t.Helper()
	p.run("send-keys", "-t", "S", "-l", s)
}

func (p *tmuxPane) screen() string {
	p.t.Helper()
	return p.run("capture-pane", "-p", "-t", "S")
}

// waitFor polls the pane until it shows every one of want. The deadline
// only stops a test that would hang; nothing is timed.
func (p *tmuxPane) waitFor(want ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := p.screen()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the pane never showed %q; it shows:\n%s", want, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
