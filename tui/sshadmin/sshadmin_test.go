package sshadmin

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/audit"
)

// testServer is a station served over SSH on a free loopback port.
type testServer struct {
	st   *station.Station
	addr string
	stop func()
	// hostKey is the key the last client saw.
	hostKey gossh.PublicKey
}

func newStation(t testing.TB) *station.Station {
	t.Helper()
	st, err := station.Init(filepath.Join(t.TempDir(), "st"), station.InitOptions{Realm: "EXAMPLE.TEST", Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func serve(t testing.TB, st *station.Station) *testServer {
	t.Helper()
	return serveWith(t, st, Config{})
}

func serveWith(t testing.TB, st *station.Station, cfg Config) *testServer {
	t.Helper()
	ready := make(chan string, 1)
	cfg.Addr, cfg.Station, cfg.Ready = "127.0.0.1:0", st, func(a string) { ready <- a }
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	ts := &testServer{st: st}
	select {
	case ts.addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(ts.stop)
	return ts
}

// tlog sends the server's log to the test's.
type tlog struct{ t testing.TB }

func (l tlog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newKey(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authorize(t *testing.T, st *station.Station, keys map[string]gossh.Signer) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("# administrators\n\n")
	for comment, k := range keys {
		b.WriteString(strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k.PublicKey()))) + " " + comment + "\n")
	}
	if err := os.WriteFile(filepath.Join(st.Dir, AuthorizedKeysFile), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (ts *testServer) dial(t *testing.T, auth ...gossh.AuthMethod) (*gossh.Client, error) {
	t.Helper()
	return gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{
		User: "admin",
		Auth: auth,
		HostKeyCallback: func(_ string, _ net.Addr, k gossh.PublicKey) error {
			ts.hostKey = k
			return nil
		},
	})
}

// output collects a session's output for polling.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return ansi.Strip(o.b.String())
}

// waitFor polls until out shows want; the deadline only stops a hang.
func waitFor(t *testing.T, out *output, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the session never showed %q; it showed:\n%s", want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startShell opens a session with a 100×30 PTY on c and starts the
// station in it; the session's output collects in out.
func startShell(t *testing.T, c *gossh.Client) (sess *gossh.Session, in io.Writer, out *output) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	out = &output{}
	sess.Stdout, sess.Stderr = out, out
	if in, err = sess.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm-256color", 30, 100, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	return sess, in, out
}

// openStation opens a PTY session, waits for the CA screen and quits; it
// returns what the session showed.
func openStation(t *testing.T, c *gossh.Client) string {
	t.Helper()
	sess, in, out := startShell(t, c)
	waitFor(t, out, "1 CA")
	waitFor(t, out, "4 Audit")
	io.WriteString(in, "q")
	if err := sess.Wait(); err != nil {
		t.Fatalf("the session ended with %v", err)
	}
	return out.String()
}

func records(t *testing.T, st *station.Station, action string) []audit.Record {
	t.Helper()
	l, err := st.Audit()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := l.List(audit.Query{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestLoginAudited(t *testing.T) {
	st := newStation(t)
	admin := newKey(t)
	authorize(t, st, map[string]gossh.Signer{"alice@laptop": admin})
	ts := serve(t, st)
	c, err := ts.dial(t, gossh.PublicKeys(admin))
	if err != nil {
		t.Fatal(err)
	}
	s := openStation(t, c)
	c.Close()
	for _, absent := range []string{"Enroll", "Officer", "Logon"} {
		if strings.Contains(s, absent) {
			t.Errorf("the SSH station shows %q", absent)
		}
	}
	ts.stop() // waits for the session to end
	want := "ssh:alice@laptop:" + gossh.FingerprintSHA256(admin.PublicKey())
	for _, action := range []string{"ssh.login", "ssh.logout"} {
		recs := records(t, st, action)
		if len(recs) != 1 || recs[0].Actor != want || recs[0].Outcome != audit.OK || !strings.Contains(recs[0].Detail, "127.0.0.1") {
			t.Errorf("%s records: %+v, want one by %s from 127.0.0.1", action, recs, want)
		}
	}
}

func TestUnknownKeyRefused(t *testing.T) {
	st := newStation(t)
	authorize(t, st, map[string]gossh.Signer{"alice": newKey(t)})
	ts := serve(t, st)
	stranger := newKey(t)
	if c, err := ts.dial(t, gossh.PublicKeys(stranger)); err == nil {
		c.Close()
		t.Fatal("an unknown key got in")
	}
	// No other method is offered: a password gets nowhere either.
	if c, err := ts.dial(t, gossh.Password("alice"), gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return nil, nil })); err == nil {
		c.Close()
		t.Fatal("a password got in")
	} else if !strings.Contains(err.Error(), "attempted methods [none]") {
		t.Errorf("password refused with %v, want only publickey offered", err)
	}
	recs := records(t, st, "ssh.refused")
	fp := gossh.FingerprintSHA256(stranger.PublicKey())
	if len(recs) != 1 || recs[0].Outcome != audit.Refused || !strings.Contains(recs[0].Actor, fp) {
		t.Errorf("refusals audited: %+v, want one for %s", recs, fp)
	}
	if len(records(t, st, "ssh.login")) != 0 {
		t.Error("a login was audited")
	}
}

// sshKeygen makes an ed25519 key pair with ssh-keygen in dir and returns
// the private key's path and the public key.
func sshKeygen(t testing.TB, dir, name string) (string, gossh.PublicKey) {
	t.Helper()
	path := filepath.Join(dir, name)
	if out, err := exec.Command(testpeer.Path(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	data, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := gossh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return path, k
}

// TestOfferedKeyIsNotTheUsedKey is GHSA-pchf-49fh-w34r with the real
// OpenSSH client: it offers the victim's public key (it has only the .pub
// file), the server says the key would do, the client cannot sign with it
// and authenticates with its own key instead. The session must act as
// the key that signed; when that key is not listed, nobody gets in.
func TestOfferedKeyIsNotTheUsedKey(t *testing.T) {
	sshBin := testpeer.Path(t, "ssh")
	st := newStation(t)
	keys := t.TempDir()
	victimPriv, victim := sshKeygen(t, keys, "victim")
	attackerPriv, attacker := sshKeygen(t, keys, "attacker")
	// The attacker holds only the victim's public key.
	offered := filepath.Join(t.TempDir(), "victim.pub")
	data, _ := os.ReadFile(victimPriv + ".pub")
	os.WriteFile(offered, data, 0o600)
	listed := func(ks ...gossh.PublicKey) {
		var b bytes.Buffer
		for i, k := range ks {
			fmt.Fprintf(&b, "%s %s\n", strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k))), []string{"victim", "attacker"}[i])
		}
		os.WriteFile(filepath.Join(st.Dir, AuthorizedKeysFile), b.Bytes(), 0o600)
	}
	listed(victim, attacker)
	ts := serve(t, st)
	host, port, _ := net.SplitHostPort(ts.addr)
	// ssh runs the client; once the station shows, it types q (quit).
	ssh := func() (string, error) {
		c := exec.Command(sshBin, "-v", "-i", offered, "-i", attackerPriv, "-p", port,
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
			"-o", "BatchMode=yes", "-o", "IdentityAgent=none", "-F", "/dev/null", "-tt", "admin@"+host)
		out := &output{}
		c.Stdout, c.Stderr = out, out
		in, err := c.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- c.Wait() }()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case err := <-exited:
				return out.String(), err
			case <-deadline:
				c.Process.Kill()
				t.Fatalf("ssh did not finish:\n%s", out.String())
			case <-time.After(20 * time.Millisecond):
				if strings.Contains(out.String(), "4 Audit") {
					io.WriteString(in, "q")
				}
			}
		}
	}
	out, err := ssh()
	if err != nil {
		t.Fatalf("ssh: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Server accepts key: "+offered) {
		t.Fatalf("the client did not offer the victim's key first; the test proves nothing:\n%s", out)
	}
	listed(victim)
	out, err = ssh()
	if err == nil || !strings.Contains(out, "Permission denied (publickey)") {
		t.Fatalf("with only the victim's key listed, the attacker: %v\n%s", err, out)
	}
	ts.stop()
	recs := records(t, st, "ssh.login")
	want := "ssh:attacker:" + gossh.FingerprintSHA256(attacker)
	if len(recs) != 1 || recs[0].Actor != want {
		t.Fatalf("logins: %+v, want one as %s", recs, want)
	}
}

func TestAuthorizedKeysChangesTakeEffect(t *testing.T) {
	st := newStation(t)
	a, b := newKey(t), newKey(t)
	ts := serve(t, st)
	// No file: nobody gets in.
	if c, err := ts.dial(t, gossh.PublicKeys(a)); err == nil {
		c.Close()
		t.Fatal("a key got in without authorized_keys")
	}
	authorize(t, st, map[string]gossh.Signer{"a": a})
	c, err := ts.dial(t, gossh.PublicKeys(a))
	if err != nil {
		t.Fatalf("a listed key was refused: %v", err)
	}
	c.Close()
	// Replaced by b: a is out, b is in, without a restart.
	authorize(t, st, map[string]gossh.Signer{"b": b})
	if c, err := ts.dial(t, gossh.PublicKeys(a)); err == nil {
		c.Close()
		t.Fatal("a removed key still gets in")
	}
	c, err = ts.dial(t, gossh.PublicKeys(b))
	if err != nil {
		t.Fatalf("a newly listed key was refused: %v", err)
	}
	c.Close()
	// Removed: nobody.
	os.Remove(filepath.Join(st.Dir, AuthorizedKeysFile))
	if c, err := ts.dial(t, gossh.PublicKeys(b)); err == nil {
		c.Close()
		t.Fatal("a key got in after authorized_keys was removed")
	}
}

func TestNoPTYRefused(t *testing.T) {
	st := newStation(t)
	k := newKey(t)
	authorize(t, st, map[string]gossh.Signer{"a": k})
	ts := serve(t, st)
	c, err := ts.dial(t, gossh.PublicKeys(k))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput("")
	var exit *gossh.ExitError
	if !errors.As(err, &exit) || exit.ExitStatus() != 1 || !strings.Contains(string(out), "needs a terminal") {
		t.Fatalf("a session without a PTY: %v, %q", err, out)
	}
	if len(records(t, st, "ssh.login")) != 0 {
		t.Error("a refused session was audited as a login")
	}
}

// TestSessionTimeouts leaves a session without a key press, or open too
// long: the server ends it and says why, on the screen and in the audit
// log.
func TestSessionTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"idle", Config{IdleTimeout: 300 * time.Millisecond}, "no key pressed for 300ms"},
		{"max", Config{MaxTimeout: 300 * time.Millisecond}, "the maximum session time (300ms) is over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStation(t)
			k := newKey(t)
			authorize(t, st, map[string]gossh.Signer{"a": k})
			ts := serveWith(t, st, tc.cfg)
			c, err := ts.dial(t, gossh.PublicKeys(k))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sess, _, out := startShell(t, c)
			ended := make(chan error, 1)
			go func() { ended <- sess.Wait() }()
			select {
			case <-ended:
			case <-time.After(30 * time.Second):
				t.Fatal("the session was not ended")
			}
			waitFor(t, out, "session closed: "+tc.want)
			ts.stop()
			recs := records(t, st, "ssh.logout")
			if len(recs) != 1 || !strings.Contains(recs[0].Detail, tc.want) {
				t.Errorf("logout records %+v", recs)
			}
		})
	}
}

// TestStopEndsSessions stops the server under an open session: the
// session ends, its logout is recorded, and Serve returns only then (so
// that serve closes the station after its sessions).
func TestStopEndsSessions(t *testing.T) {
	st := newStation(t)
	k := newKey(t)
	authorize(t, st, map[string]gossh.Signer{"a": k})
	ts := serve(t, st)
	c, err := ts.dial(t, gossh.PublicKeys(k))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, out := startShell(t, c)
	waitFor(t, out, "1 CA")
	ts.stop()
	if recs := records(t, st, "ssh.logout"); len(recs) != 1 {
		t.Errorf("after the server stopped: logout records %+v", recs)
	}
}

func TestHostKeyKept(t *testing.T) {
	st := newStation(t)
	k := newKey(t)
	authorize(t, st, map[string]gossh.Signer{"a": k})
	var seen []gossh.PublicKey
	for range 2 {
		ts := serve(t, st)
		c, err := ts.dial(t, gossh.PublicKeys(k))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		ts.stop()
		seen = append(seen, ts.hostKey)
	}
	if seen[0] == nil || !bytes.Equal(seen[0].Marshal(), seen[1].Marshal()) {
		t.Fatal("the host key changed across restarts")
	}
	path := filepath.Join(st.Dir, HostKeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("host key mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	priv, err := gossh.ParseRawPrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv.(crypto.Signer))
	if err != nil || !bytes.Equal(signer.PublicKey().Marshal(), seen[0].Marshal()) {
		t.Errorf("the file's key is not the key served (%v)", err)
	}
	// A key others can read is refused, as sshd refuses it.
	os.Chmod(path, 0o644)
	if _, err := New(Config{Addr: "127.0.0.1:0", Station: st}); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("a world-readable host key: %v", err)
	}
}

func TestParseAuthorizedKeys(t *testing.T) {
	k := newKey(t)
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k.PublicKey())))
	data := "# comment\n\n" + line + " alice@laptop\nnot a key\nfrom=\"10.0.0.1\" " + line + " restricted\n  " + line + "\n"
	keys, bad := ParseAuthorizedKeys([]byte(data))
	if len(keys) != 2 || keys[0].Comment != "alice@laptop" || keys[1].Comment != "" {
		t.Errorf("keys %+v", keys)
	}
	if len(bad) != 2 || bad[0] != 4 || bad[1] != 5 {
		t.Errorf("bad lines %v, want [4 5] (garbage and options)", bad)
	}
}

func TestActor(t *testing.T) {
	k := newKey(t)
	fp := gossh.FingerprintSHA256(k.PublicKey())
	for _, tc := range []struct{ user, comment, want string }{
		{"root", "alice@laptop", "ssh:alice@laptop:" + fp},
		{"bob", "", "ssh:bob:" + fp},
		{"a b\nc:d", "", "ssh:a_b_c_d:" + fp},
		{"", "", "ssh:-:" + fp},
	} {
		if got := Actor(tc.user, tc.comment, k.PublicKey()); got != tc.want {
			t.Errorf("Actor(%q, %q) = %q, want %q", tc.user, tc.comment, got, tc.want)
		}
	}
}

func FuzzParseAuthorizedKeys(f *testing.F) {
	for _, s := range []string{
		"",
		"# only a comment\n",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq0mPYT5zHtJ8xqH9tHCPQw8f3o1oDk9l1Q3S9H3bXy alice\n",
		"command=\"ls\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq0mPYT5zHtJ8xqH9tHCPQw8f3o1oDk9l1Q3S9H3bXy\n",
		"ssh-rsa AAAA\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, bad := ParseAuthorizedKeys(data)
		for _, k := range keys {
			if k.Key == nil {
				t.Fatal("a nil key was accepted")
			}
		}
		_ = bad
	})
}

// TestRefusalsBounded: a peer that keeps offering unknown keys gets
// refusalsPerAddr audit records a minute, not one per attempt.
func TestRefusalsBounded(t *testing.T) {
	st := newStation(t)
	authorize(t, st, map[string]gossh.Signer{"alice": newKey(t)})
	ts := serve(t, st)
	for i := 0; i < refusalsPerAddr+3; i++ {
		if c, err := ts.dial(t, gossh.PublicKeys(newKey(t))); err == nil {
			c.Close()
			t.Fatal("an unknown key got in")
		}
	}
	if recs := records(t, st, "ssh.refused"); len(recs) != refusalsPerAddr {
		t.Errorf("%d refusals audited, want %d", len(recs), refusalsPerAddr)
	}
}

func TestRefusalLimiter(t *testing.T) {
	var l refusalLimiter
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for i := 0; i < refusalsPerAddr; i++ {
		if ok, _ := l.allow(t0, "192.0.2.1"); !ok {
			t.Fatalf("refusal %d from one address not allowed", i+1)
		}
	}
	if ok, _ := l.allow(t0, "192.0.2.1"); ok {
		t.Fatal("over the per-address bound allowed")
	}
	if ok, _ := l.allow(t0.Add(59*time.Second), "192.0.2.1"); ok {
		t.Fatal("over the per-address bound allowed within the minute")
	}
	// Another address still gets its records; it carries the count of
	// the ones not recorded.
	if ok, dropped := l.allow(t0, "192.0.2.2"); !ok || dropped != 2 {
		t.Fatalf("another address: allowed %v, dropped %d; want true, 2", ok, dropped)
	}
	// The next minute starts afresh.
	if ok, dropped := l.allow(t0.Add(time.Minute), "192.0.2.1"); !ok || dropped != 0 {
		t.Fatalf("next minute: allowed %v, dropped %d", ok, dropped)
	}
	// The total bound holds across addresses, and so does the bound on
	// the number of addresses tracked.
	l = refusalLimiter{}
	allowed := 0
	for i := 0; i < refusalsPerMinute+50; i++ {
		if ok, _ := l.allow(t0, fmt.Sprintf("198.51.100.%d", i%250)); ok {
			allowed++
		}
	}
	if allowed != refusalsPerMinute {
		t.Errorf("%d refusals allowed in a minute, want %d", allowed, refusalsPerMinute)
	}
	if len(l.perAddr) > refusalAddrs {
		t.Errorf("%d addresses tracked", len(l.perAddr))
	}
}
