package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scstation/scstation/station"
)

// TestServeHealthAndSignals runs the real binary with every service, reads
// GET /health over plain HTTP, and stops it with SIGINT and with SIGTERM:
// exit 0, "ready", "services stopped" and "databases closed" logged, the
// listeners closed and the databases free for the next process.
func TestServeHealthAndSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	work := t.TempDir()
	bin := filepath.Join(work, "scstation")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := filepath.Join(work, "st")
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", "--dir", dir))
	must(t, 0, run(t, "", "ca", "crl", "--dir", dir))
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, addrs, logs := startServe(t, bin, dir, work)
			resp, err := http.Get("http://" + addrs["http"] + "/health")
			if err != nil {
				t.Fatal(err)
			}
			var h station.Health
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || h.Status != "ok" {
				t.Fatalf("GET /health: %s %v %+v", resp.Status, err, h)
			}
			seen := map[string]string{}
			for _, s := range h.Services {
				seen[s.Name+"/"+s.Network] = s.Addr
				if s.State != station.StateServing {
					t.Errorf("%s/%s: %s", s.Name, s.Network, s.State)
				}
			}
			for _, want := range []string{"http/tcp", "ldap/tcp", "ldaps/tcp", "kdc/tcp", "kdc/udp"} {
				if seen[want] == "" {
					t.Errorf("health lacks %s: %+v", want, h.Services)
				}
			}
			if seen["kdc/tcp"] != addrs["kdc"] || seen["http/tcp"] != addrs["http"] {
				t.Errorf("health addresses %v, serve printed %v", seen, addrs)
			}

			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("serve exited with %v after %v\n%s", err, sig, logs.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("serve did not stop on %v", sig)
			}
			log := logs.String()
			for _, want := range []string{"msg=ready", "kdc_udp=" + addrs["kdc"], "msg=\"services stopped\"", "msg=\"databases closed\""} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %s:\n%s", want, log)
				}
			}
			for name, addr := range addrs {
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
					t.Errorf("%s still listening on %s", name, addr)
				}
			}
			// The databases are free: this process opens them at once.
			st, err := station.Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.CADB(); err != nil {
				t.Errorf("CA database after serve: %v", err)
			}
			if _, err := st.Directory(); err != nil {
				t.Errorf("directory after serve: %v", err)
			}
			st.Close()
		})
	}
}
