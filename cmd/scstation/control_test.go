package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/station"
)

// buildBinary builds scstation into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "scstation")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{mu: make(chan struct{}, 1)} }

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.b.String()
}

// startServe starts the real binary's serve on dir, with every service on
// a free loopback port, and returns the services' addresses.
func startServe(t *testing.T, bin, dir, cwd string, extra ...string) (*exec.Cmd, map[string]string, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--dir", dir, "--http", "127.0.0.1:0", "--ldap", "127.0.0.1:0", "--ldaps", "127.0.0.1:0", "--kdc", "127.0.0.1:0"}, extra...)...)
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), "SCSTATION_CA_PASSPHRASE=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdout, _ := cmd.StdoutPipe()
	logs := newLockedBuffer()
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addrs := map[string]string{}
	r := bufio.NewReader(stdout)
	for len(addrs) < 4 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("serve printed %v, then %v\n%s", addrs, err, logs.String())
		}
		name, addr, _ := strings.Cut(strings.TrimSpace(line), " ")
		addrs[name] = addr
	}
	go io.Copy(io.Discard, r)
	return cmd, addrs, logs
}

func stopServe(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

// runBin runs the binary as a separate process in cwd.
func runBin(t *testing.T, bin, cwd, stdin string, env []string, args ...string) result {
	t.Helper()
	c := exec.Command(bin, args...)
	c.Dir = cwd
	c.Env = append(append(os.Environ(), "SCSTATION_CA_PASSPHRASE="), env...)
	c.Stdin = strings.NewReader(stdin)
	// No controlling terminal, so that no prompt can wait on the
	// developer's.
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// TestServeControl runs the real serve on a data directory and, as
// separate processes on the same directory, the commands an administrator
// runs beside it. They go through serve's control socket, give the results
// they give without serve, and serve's LDAP, HTTP and CRL see them at once.
func TestServeControl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const secret = "s3cret-pass-phrase"
	const userPassword = "alice-password-1"
	work := t.TempDir()
	bin := buildBinary(t, work)
	// serve runs elsewhere: relative paths must follow the client.
	serveCwd := filepath.Join(work, "serve-cwd")
	os.Mkdir(serveCwd, 0o700)
	dir := filepath.Join(work, "st")
	os.WriteFile(filepath.Join(work, "pass"), []byte(secret+"\n"), 0o600)
	os.WriteFile(filepath.Join(work, "wrong"), []byte("nope\n"), 0o600)
	t.Setenv("SCSTATION_CA_PASSPHRASE", "")
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--passphrase-file", filepath.Join(work, "pass"), "--dir", dir))
	must(t, 0, run(t, "", "ca", "crl", "--passphrase-file", filepath.Join(work, "pass"), "--dir", dir))

	serve, addrs, logs := startServe(t, bin, dir, serveCwd, "--passphrase-file", filepath.Join(work, "pass"))
	sock := filepath.Join(dir, station.ControlSocket)
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("control socket: %v %v", fi, err)
	}

	// A user with a password from standard input; --dir relative to the
	// client's working directory.
	r := must(t, 0, runBin(t, bin, work, userPassword+"\n", nil, "user", "add", "alice", "--mail", "alice@example.test", "--password-stdin", "--dir", "st"))
	if !strings.Contains(r.stdout, "added alice (alice@example.test)") {
		t.Errorf("user add: %q", r.stdout)
	}
	dupHeld := must(t, 1, runBin(t, bin, work, "", nil, "user", "add", "alice", "--dir", "st"))

	// serve's LDAP has alice at once, and her password (which crossed the
	// socket on standard input) binds.
	ldapsearch := testpeer.Path(t, "ldapsearch")
	_, ldapPort, _ := net.SplitHostPort(addrs["ldap"])
	ls := exec.Command(ldapsearch, "-x", "-LLL", "-H", "ldap://127.0.0.1:"+ldapPort, "-D", "uid=alice,ou=people,dc=example,dc=test", "-w", userPassword,
		"-b", "dc=example,dc=test", "(uid=alice)", "mail")
	ls.Env = append(os.Environ(), "LDAPCONF=/dev/null")
	if out, err := ls.CombinedOutput(); err != nil || !strings.Contains(string(out), "mail: alice@example.test") {
		t.Errorf("ldapsearch as alice on serve's LDAP: %v\n%s", err, out)
	}

	// ca issue with relative --csr, --out and --passphrase-file.
	openssl(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", filepath.Join(work, "alice.key"),
		"-subj", "/CN=ignored", "-out", filepath.Join(work, "alice.csr"))
	r = must(t, 0, runBin(t, bin, work, "", nil, "ca", "issue", "--template", "smartcard-user", "--csr", "alice.csr", "--user", "alice",
		"--out", "alice.pem", "--passphrase-file", "pass", "--dir", dir))
	m := serialRE.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no serial in %q", r.stderr)
	}
	serial := m[1]
	if v := openssl(t, "verify", "-CAfile", filepath.Join(dir, "ca", "chain.pem"), filepath.Join(work, "alice.pem")); !strings.Contains(v, ": OK") {
		t.Fatal(v)
	}
	if _, err := os.Stat(filepath.Join(serveCwd, "alice.pem")); err == nil {
		t.Error("the certificate was written to serve's working directory")
	}
	// The request on standard input, the passphrase from the environment.
	csr, _ := os.ReadFile(filepath.Join(work, "alice.csr"))
	r = must(t, 0, runBin(t, bin, work, string(csr), []string{"SCSTATION_CA_PASSPHRASE=" + secret}, "ca", "issue", "--template", "smime-signing", "--csr", "-", "--user", "alice", "--dir", dir))
	if !strings.Contains(r.stdout, "BEGIN CERTIFICATE") {
		t.Errorf("no certificate on stdout: %q", r.stdout)
	}

	// A wrong passphrase fails as it does without serve, even though serve
	// itself has the CA unlocked.
	wrongHeld := must(t, 1, runBin(t, bin, work, "", nil, "ca", "crl", "--passphrase-file", "wrong", "--dir", dir))
	// No passphrase and no terminal: the same usage error as without serve.
	noPassHeld := must(t, 2, runBin(t, bin, work, "", nil, "ca", "crl", "--dir", dir))

	must(t, 0, runBin(t, bin, work, "", nil, "ca", "revoke", serial, "--reason", "keyCompromise", "--dir", dir))
	revokeAgainHeld := must(t, 1, runBin(t, bin, work, "", nil, "ca", "revoke", serial, "--reason", "superseded", "--dir", dir))
	r = must(t, 0, runBin(t, bin, work, "", []string{"SCSTATION_CA_PASSPHRASE=" + secret}, "ca", "crl", "--out", "crl.pem", "--dir", dir))
	if !strings.Contains(r.stdout, "CRL #2") {
		t.Errorf("ca crl: %q", r.stdout)
	}
	// serve's HTTP hands out the new CRL, and openssl finds the revocation.
	resp, err := http.Get("http://" + addrs["http"] + "/ca.crl")
	if err != nil {
		t.Fatal(err)
	}
	der, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	os.WriteFile(filepath.Join(work, "http.crl"), der, 0o600)
	v := openssl(t, "crl", "-inform", "DER", "-in", filepath.Join(work, "http.crl"), "-CAfile", filepath.Join(dir, "ca", "chain.pem"), "-noout", "-verify", "-text")
	if !strings.Contains(v, "verify OK") || !strings.Contains(strings.ToUpper(v), strings.ToUpper(serial)) || !strings.Contains(v, "Key Compromise") {
		t.Errorf("openssl crl on serve's HTTP CRL:\n%s", v)
	}
	// Commands in parallel, while the services run.
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if r := runBin(t, bin, work, "", nil, "user", "add", fmt.Sprintf("user%d", i), "--dir", dir); r.code != 0 {
				t.Errorf("parallel user add: %+v", r)
			}
		})
	}
	wg.Go(func() {
		if r := runBin(t, bin, work, "", nil, "ca", "list", "--dir", dir); r.code != 0 {
			t.Errorf("parallel ca list: %+v", r)
		}
	})
	wg.Wait()

	listHeld := must(t, 0, runBin(t, bin, work, "", nil, "ca", "list", "--dir", dir))
	showHeld := must(t, 0, runBin(t, bin, work, "", nil, "ca", "show", serial, "--dir", dir))
	// The KDC's store is serve's: a service added now is in kdc list.
	must(t, 0, runBin(t, bin, work, "", nil, "kdc", "service", "host/station.example.test", "--dir", dir))
	kdcHeld := must(t, 0, runBin(t, bin, work, "", nil, "kdc", "list", "--dir", dir))
	// The service account is a directory entry: list users after it.
	usersHeld := must(t, 0, runBin(t, bin, work, "", nil, "user", "list", "--dir", dir))
	if !strings.Contains(kdcHeld.stdout, "host/station.example.test@EXAMPLE.TEST") {
		t.Errorf("kdc list: %q", kdcHeld.stdout)
	}

	// The in-process client takes the same path.
	must(t, 0, run(t, "", "group", "add", "officers", "--dir", dir))

	// What cannot run beside serve is refused, naming the holder.
	pid := strconv.Itoa(serve.Process.Pid)
	for _, args := range [][]string{
		{"serve", "--http", "127.0.0.1:0", "--dir", dir},
		{"init", "--domain", "example.test", "--no-passphrase", "--dir", dir},
		{"ca", "init", "--no-passphrase", "--dir", dir},
	} {
		r := must(t, 1, runBin(t, bin, work, "", nil, args...))
		if !strings.Contains(r.stderr, "held by a running scstation (pid "+pid) {
			t.Errorf("%v: %q", args, r.stderr)
		}
	}
	// ... and a client that sends one anyway is refused by serve.
	c, err := station.DialControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	code, err := station.Forward(c, &station.ControlRequest{Args: []string{"serve", "--dir", dir}, Cwd: work, Dir: dir}, station.ForwardIO{Stdout: io.Discard, Stderr: &errb})
	if err != nil || code != 2 || !strings.Contains(errb.String(), "does not run through the control socket") {
		t.Errorf("serve sent over the socket: %d %v %q", code, err, errb.String())
	}

	stopServe(t, serve)
	if _, err := os.Lstat(sock); err == nil {
		t.Error("the control socket outlived serve")
	}
	if l := logs.String(); strings.Contains(l, secret) || strings.Contains(l, userPassword) {
		t.Error("a secret appeared in serve's log")
	} else if !strings.Contains(l, `command="ca revoke"`) {
		t.Errorf("serve's log does not record the forwarded commands:\n%s", l)
	}

	// Without serve, the same commands give the same results.
	for _, tc := range []struct {
		name string
		held result
		args []string
	}{
		{"user add (duplicate)", dupHeld, []string{"user", "add", "alice", "--dir", "st"}},
		{"ca crl (wrong passphrase)", wrongHeld, []string{"ca", "crl", "--passphrase-file", "wrong", "--dir", dir}},
		{"ca crl (no passphrase)", noPassHeld, []string{"ca", "crl", "--dir", dir}},
		{"ca revoke (again)", revokeAgainHeld, []string{"ca", "revoke", serial, "--reason", "superseded", "--dir", dir}},
		{"ca list", listHeld, []string{"ca", "list", "--dir", dir}},
		{"ca show", showHeld, []string{"ca", "show", serial, "--dir", dir}},
		{"user list", usersHeld, []string{"user", "list", "--dir", dir}},
		{"kdc list", kdcHeld, []string{"kdc", "list", "--dir", dir}},
	} {
		local := runBin(t, bin, work, "", nil, tc.args...)
		if local != tc.held {
			t.Errorf("%s: through serve %+v, alone %+v", tc.name, tc.held, local)
		}
	}
}

// TestControlPrompt: a forwarded command asks for the passphrase on the
// client's terminal (a real pty, made by script(1)), and a wrong one fails
// as it does without serve.
func TestControlPrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	script := testpeer.Path(t, "script")
	const secret = "pty-pass-phrase"
	work := t.TempDir()
	bin := buildBinary(t, work)
	dir := filepath.Join(work, "st")
	os.WriteFile(filepath.Join(work, "pass"), []byte(secret+"\n"), 0o600)
	t.Setenv("SCSTATION_CA_PASSPHRASE", "")
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--passphrase-file", filepath.Join(work, "pass"), "--dir", dir))
	serve, _, _ := startServe(t, bin, dir, work, "--passphrase-file", filepath.Join(work, "pass"))
	defer stopServe(t, serve)
	for _, tc := range []struct {
		answer string
		code   int
		want   string
	}{
		{secret, 0, "CRL #1"},
		{"not-it", 1, "wrong passphrase"},
	} {
		// script gives the command a terminal and types standard input on it.
		c := exec.Command(script, "-qec", bin+" ca crl --dir "+dir, "/dev/null")
		c.Dir = work
		c.Env = append(os.Environ(), "SCSTATION_CA_PASSPHRASE=")
		c.Stdin = strings.NewReader(tc.answer + "\n")
		out, err := c.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tc.code || !strings.Contains(string(out), "CA key passphrase:") || !strings.Contains(string(out), tc.want) {
			t.Errorf("answer %q: exit %d, output %q", tc.answer, code, out)
		}
		// The pty echoes what script types before the prompt turns echo
		// off; after the prompt, the answer must not be shown.
		if _, after, _ := strings.Cut(string(out), "CA key passphrase:"); strings.Contains(after, tc.answer) {
			t.Errorf("the passphrase was echoed: %q", out)
		}
	}
}

// TestInUseWithoutControlSocket: a database locked by a process that has
// no control socket is reported at once, naming the file and the process.
func TestInUseWithoutControlSocket(t *testing.T) {
	flock := testpeer.Path(t, "flock")
	dir := filepath.Join(t.TempDir(), "st")
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", "--dir", dir))
	db := filepath.Join(dir, "directory", "directory.db")
	holder := exec.Command(flock, "--exclusive", db, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	// Wait until flock holds the lock.
	for i := 0; ; i++ {
		f, err := os.Open(db)
		if err != nil {
			t.Fatal(err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			break
		}
		if i > 1000 {
			t.Fatal("flock did not take the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := must(t, 2, run(t, "", "user", "list", "--dir", dir))
	for _, want := range []string{db, "process " + strconv.Itoa(holder.Process.Pid), "no control socket"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// TestServeAfterCrash: a serve killed without cleaning up leaves its
// socket; commands then run alone, and the next serve replaces the socket.
func TestServeAfterCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	work := t.TempDir()
	bin := buildBinary(t, work)
	dir := filepath.Join(work, "st")
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", "--dir", dir))
	serve, _, _ := startServe(t, bin, dir, work)
	serve.Process.Kill()
	serve.Wait()
	sock := filepath.Join(dir, station.ControlSocket)
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("a killed serve should leave its socket: %v", err)
	}
	must(t, 0, runBin(t, bin, work, "", nil, "user", "add", "alice", "--dir", dir))
	serve, _, logs := startServe(t, bin, dir, work)
	must(t, 0, runBin(t, bin, work, "", nil, "user", "add", "bob", "--dir", dir))
	stopServe(t, serve)
	if !strings.Contains(logs.String(), `command="user add"`) {
		t.Errorf("the new serve did not run the command:\n%s", logs.String())
	}
	r := must(t, 0, run(t, "", "user", "list", "--dir", dir))
	if !strings.Contains(r.stdout, "alice") || !strings.Contains(r.stdout, "bob") {
		t.Errorf("user list:\n%s", r.stdout)
	}
}

// TestControlCard: card commands beside serve run in serve, against the
// real pcscd and a virtual card; PINs cross the socket on standard input
// and reach neither serve's log nor the output.
func TestControlCard(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	vs, err := virtual.NewState(4242)
	if err != nil {
		t.Fatal(err)
	}
	reader := cardtest.Attach(t, virtual.New(vs, ""))
	work := t.TempDir()
	bin := buildBinary(t, work)
	dir := filepath.Join(work, "st")
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", "--dir", dir))
	serve, _, logs := startServe(t, bin, dir, work)
	const pin = "75318642"
	rf := "--reader=" + reader
	r := must(t, 0, runBin(t, bin, work, "", nil, "card", "status", rf, "--dir", dir))
	contains(t, "card status", r.stdout, "serial          4242", "PIN             3 tries left (factory default)")
	r = must(t, 1, runBin(t, bin, work, "000000\n"+pin+"\n", nil, "card", "pin", "change", "--pin-stdin", rf, "--dir", dir))
	contains(t, "wrong PIN", r.stderr, "wrong PIN", "2 tries left")
	if strings.Contains(r.stderr, "audit") {
		t.Errorf("the holder could not audit the wrong PIN:\n%s", r.stderr)
	}
	r = must(t, 0, runBin(t, bin, work, card.DefaultPIN+"\n"+pin+"\n", nil, "card", "pin", "change", "--pin-stdin", rf, "--dir", dir))
	if strings.Contains(r.stdout+r.stderr, pin) {
		t.Error("the PIN appeared in the output")
	}
	stopServe(t, serve)
	if l := logs.String(); strings.Contains(l, pin) || strings.Contains(l, card.DefaultPIN) {
		t.Error("a PIN appeared in serve's log")
	} else if !strings.Contains(l, `command="card pin"`) {
		t.Errorf("serve did not run the card commands:\n%s", l)
	}
	cardtest.WithPIV(t, reader, func(p *card.PIV) {
		if err := p.VerifyPIN(pin); err != nil {
			t.Errorf("the new PIN: %v", err)
		}
	})
	// The holder audited the wrong PIN in the directory's audit log.
	r = must(t, 0, run(t, "", "audit", "list", "--action", "pin.failed", "--dir", dir))
	contains(t, "pin.failed", r.stdout, "wrong PIN (pin change) in reader "+reader+", 2 tries left")
}

// TestControlMode: which commands go to the holder of the data directory,
// which run locally, and which are refused beside it.
func TestControlMode(t *testing.T) {
	root := (&app{}).rootCommand()
	root.InitDefaultHelpCmd()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ca", "list"}, ""},
		{[]string{"ca", "crl"}, ""},
		{[]string{"user", "add"}, ""},
		{[]string{"kdc", "service"}, ""},
		{[]string{"card", "status"}, ""},
		{[]string{"card", "pin", "change"}, ""},
		{[]string{"ca", "init"}, controlRefuse},
		{[]string{"init"}, controlRefuse},
		{[]string{"demo"}, controlRefuse},
		{[]string{"serve"}, controlRefuse},
		{[]string{"vcard", "run"}, controlLocal},
		{[]string{"bench", "ldap"}, controlLocal},
		{[]string{"logon"}, controlLocal},
		{[]string{"version"}, controlLocal},
		{[]string{"help"}, controlLocal},
		{[]string{"ca"}, controlLocal},
	} {
		cmd, _, err := root.Find(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := controlMode(cmd); got != tc.want {
			t.Errorf("%v: mode %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestFileFlagsMarked: every string flag that names a file, on a command
// that may run in the holder of the data directory, is marked with
// MarkFlagFilename, so that a relative name resolves against the client's
// working directory (see the top of main.go).
func TestFileFlagsMarked(t *testing.T) {
	fileish := func(name string) bool {
		switch name {
		// (--state is a file only for vcard, which runs locally; card
		// inventory --state is a filter.)
		case "out", "in", "csr", "cert", "key", "chain", "ca", "vcard", "ccache", "keytab", "batch", "file", "input", "output":
			return true
		}
		return strings.HasSuffix(name, "-file") || strings.HasSuffix(name, "-out") || strings.HasSuffix(name, "-dir")
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && controlMode(c) != controlLocal {
			c.LocalFlags().VisitAll(func(f *pflag.Flag) {
				if f.Value.Type() != "string" || !fileish(f.Name) {
					return
				}
				if _, ok := f.Annotations[cobra.BashCompFilenameExt]; !ok {
					t.Errorf("%s --%s names a file but is not marked with MarkFlagFilename", c.CommandPath(), f.Name)
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk((&app{}).rootCommand())
}

// TestNoDirectTerminalOrEnv: command code reaches the terminal, the
// environment and the standard streams only through the app (readSecret,
// getenv, a.stdin...), which a forwarded command points at the client's.
// Files of commands that never run in the holder are exempt.
func TestNoDirectTerminalOrEnv(t *testing.T) {
	exempt := map[string]bool{
		"control.go": true, // the helpers themselves
		"main.go":    true, // main wires os.Stdin/os.Stdout/os.Stderr
		// Commands that run locally or are refused beside a holder.
		"bench.go": true, "bench_kdc.go": true, "demo.go": true, "vcard.go": true, "logon.go": true,
	}
	forbidden := []string{`"/dev/tty"`, "os.Getenv(", "os.LookupEnv(", "os.Environ(", "os.Stdin", "os.Stdout", "os.Stderr", "term.ReadPassword(", "os.Getwd(", "os.Chdir("}
	files, _ := filepath.Glob("*.go")
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || exempt[name] {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			for _, f := range forbidden {
				if strings.Contains(line, f) {
					t.Errorf("%s:%d uses %s: use the app's helpers (see the top of main.go)", name, i+1, f)
				}
			}
		}
	}
}
