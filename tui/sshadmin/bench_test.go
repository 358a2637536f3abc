package sshadmin

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/internal/testpeer"
)

// BenchmarkSSHFirstFrame is the time from starting the real OpenSSH
// client to the station's first full frame (the tabs) on its output: the
// process start, key exchange, public-key authentication, the session's
// audit record and the first render. Quitting is not timed.
func BenchmarkSSHFirstFrame(b *testing.B) {
	sshBin := testpeer.Path(b, "ssh")
	st := newStation(b)
	key, _ := sshKeygen(b, b.TempDir(), "admin")
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir, AuthorizedKeysFile), pub, 0o600); err != nil {
		b.Fatal(err)
	}
	ts := serveWith(b, st, Config{})
	_, port, _ := net.SplitHostPort(ts.addr)
	b.ResetTimer()
	for b.Loop() {
		c := exec.Command(sshBin, "-i", key, "-p", port, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
			"-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
			"-o", "BatchMode=yes", "-tt", "admin@127.0.0.1")
		out := &output{}
		c.Stdout, c.Stderr = out, out
		in, _ := c.StdinPipe()
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "4 Audit") {
			if time.Now().After(deadline) {
				out.mu.Lock()
				raw := out.b.String()
				out.mu.Unlock()
				b.Fatalf("no frame:\n%q", raw)
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		io.WriteString(in, "q")
		if err := c.Wait(); err != nil {
			b.Fatalf("ssh: %v\n%s", err, out.String())
		}
		b.StartTimer()
	}
}
