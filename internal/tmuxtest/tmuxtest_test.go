package tmuxtest

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSession runs a shell script that reads what is typed and shows
// its environment, and checks each call against it.
func TestSession(t *testing.T) {
	script := `printf 'term=%s nocolor=%s extra=%s\n' "$TERM" "$NO_COLOR" "$EXTRA"; ` +
		`stty -echo; read a; echo "got [$a]"; read b; echo "then [$b]"; echo done`
	s := Start(t, Options{Width: 60, Height: 10, NoColor: true, Env: []string{"EXTRA=x y"}}, "sh", "-c", script)
	s.WaitFor(5*time.Second, "term=xterm-256color nocolor=1 extra=x y")
	s.Type("hello; Enter $HOME")
	s.SendKeys("Enter")
	s.WaitFor(5*time.Second, "got [hello; Enter $HOME]")
	s.Type("a b")
	s.SendKeys("BSpace", "c", "Enter")
	screen := s.WaitForRegexp(5*time.Second, regexp.MustCompile(`(?m)^then \[a c\]$`))
	if !strings.Contains(screen, "got [hello") {
		t.Errorf("earlier output gone:\n%s", screen)
	}
	// The pane stays after the program exits, with its last screen (tmux
	// marks it dead on the last row).
	s.WaitFor(5*time.Second, "done", "Pane is dead")
	if lines := strings.Split(strings.TrimRight(s.Capture(), "\n"), "\n"); len(lines) != 10 {
		t.Errorf("%d lines, want the 10 rows of the terminal", len(lines))
	}
}

// fatalTB records Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

// TestWaitForTimeout: WaitFor fails with the last screen when the text
// never shows.
func TestWaitForTimeout(t *testing.T) {
	s := Start(t, Options{}, "sh", "-c", "echo present; sleep 60")
	s.WaitFor(5*time.Second, "present")
	f := &fatalTB{TB: t}
	s.t = f
	func() {
		defer func() {
			if r := recover(); r != nil && r != any(f) {
				panic(r)
			}
		}()
		s.WaitFor(200*time.Millisecond, "absent")
	}()
	if !strings.Contains(f.msg, `"absent" not on the screen`) || !strings.Contains(f.msg, "present") {
		t.Errorf("failure message %q: want what was awaited and the last screen", f.msg)
	}
}
