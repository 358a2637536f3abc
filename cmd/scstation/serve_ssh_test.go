package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/internal/tmuxtest"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/tui/sshadmin"
)

// sshWait only stops a test that would hang; nothing is timed.
const sshWait = 30 * time.Second

// startServeSSH starts the real binary's serve on dir with the SSH
// service on a free loopback port, and the others as args say; it
// returns the address of every service, once all of them listen.
func startServeSSH(t *testing.T, bin, dir string, args ...string) (*exec.Cmd, map[string]string, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--dir", dir, "--ssh", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "SCSTATION_CA_PASSPHRASE=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdout, _ := cmd.StdoutPipe()
	logs := newLockedBuffer()
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	want := 1
	for _, a := range args {
		if strings.HasSuffix(a, ":0") {
			want++
		}
	}
	addrs := map[string]string{}
	r := bufio.NewReader(stdout)
	for len(addrs) < want {
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

// sshKey makes an ed25519 key with ssh-keygen and returns its path and
// its fingerprint as ssh-keygen -l prints it.
func sshKey(t *testing.T, dir, name, comment string) (string, string) {
	t.Helper()
	keygen := testpeer.Path(t, "ssh-keygen")
	path := filepath.Join(dir, name)
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	out, err := exec.Command(keygen, "-lf", path+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		t.Fatalf("ssh-keygen -l printed %q", out)
	}
	return path, f[1]
}

// TestServeSSH runs serve --ssh and the real OpenSSH client: an
// authorized key gets the station in a terminal (tmux) and revokes a
// certificate on the CA screen; the audit log names the key by the
// fingerprint ssh-keygen prints; an unknown key is refused.
func TestServeSSH(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	sshBin := testpeer.Path(t, "ssh")
	work := t.TempDir()
	bin := buildBinary(t, work)
	dir := filepath.Join(work, "st")
	d := "--dir=" + dir
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", d))
	must(t, 0, run(t, "", "user", "add", "alice", "--mail", "alice@example.test", d))
	csr := filepath.Join(work, "alice.csr")
	openssl(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", filepath.Join(work, "alice.key"), "-subj", "/CN=ignored", "-out", csr)
	r := must(t, 0, run(t, "", "ca", "issue", "--template", "smartcard-logon", "--csr", csr, "--user", "alice", "--out", filepath.Join(work, "alice.pem"), d))
	m := serialRE.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no serial in %q", r.stderr)
	}
	serial := m[1]

	keys := t.TempDir()
	admin, adminFP := sshKey(t, keys, "admin", "admin@example")
	stranger, strangerFP := sshKey(t, keys, "stranger", "stranger@example")
	pub, err := os.ReadFile(admin + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, sshadmin.AuthorizedKeysFile), pub, 0o600); err != nil {
		t.Fatal(err)
	}

	serve, addrs, logs := startServeSSH(t, bin, dir, "--http", "", "--ldap", "", "--ldaps", "", "--kdc", "")
	_, port, _ := net.SplitHostPort(addrs["ssh"])
	sshArgs := func(key string) []string {
		return []string{"-i", key, "-p", port, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes", "-tt", "admin@127.0.0.1"}
	}

	// An unknown key does not get in.
	out, err := exec.Command(sshBin, sshArgs(stranger)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), "Permission denied (publickey)") {
		t.Fatalf("ssh with an unknown key: %v\n%s", err, out)
	}

	// The authorized key gets the station; revoke alice's certificate.
	quoted := []string{sshBin}
	for _, a := range sshArgs(admin) {
		quoted = append(quoted, "'"+a+"'")
	}
	pane := tmuxtest.Start(t, tmuxtest.Options{Width: 100, Height: 30}, "sh", "-c", strings.Join(quoted, " ")+"; echo ssh exited $?")
	s := pane.WaitFor(sshWait, "1 CA", "2 Cards", "3 Directory", "4 Audit")
	for _, absent := range []string{"Enroll", "Officer", "Logon"} {
		if strings.Contains(s, absent) {
			t.Errorf("the station over SSH shows %q:\n%s", absent, s)
		}
	}
	pane.SendKeys("/")
	pane.Type("alice")
	pane.WaitFor(sshWait, "1 certificate")
	pane.SendKeys("Enter")
	pane.SendKeys("r")
	pane.WaitFor(sshWait, "┃ Revoke certificate")
	pane.SendKeys("Enter") // key compromise, the first reason
	pane.WaitFor(sshWait, "┃ Revoke it (")
	pane.SendKeys("Left")
	pane.SendKeys("Enter")
	pane.WaitFor(sshWait, "revoked (")
	pane.SendKeys("q")
	pane.WaitFor(sshWait, "ssh exited 0")

	// The revocation and the session are audited with the key's
	// fingerprint; audit list goes through serve's control socket.
	actor := "ssh:admin@example:" + adminFP
	list := must(t, 0, runBin(t, bin, work, "", nil, "audit", "list", "--action", "cert.revoke", d))
	if !strings.Contains(list.stdout, actor) || !strings.Contains(list.stdout, serial) {
		t.Errorf("audit list --action cert.revoke shows no revocation of %s by %s:\n%s", serial, actor, list.stdout)
	}
	for _, action := range []string{"ssh.login", "ssh.logout"} {
		if l := must(t, 0, runBin(t, bin, work, "", nil, "audit", "list", "--action", action, "--actor", actor, d)); strings.Count(l.stdout, "\n") != 2 {
			t.Errorf("audit list --action %s:\n%s", action, l.stdout)
		}
	}
	refused := must(t, 0, runBin(t, bin, work, "", nil, "audit", "list", "--action", "ssh.refused", d))
	if !strings.Contains(refused.stdout, strangerFP) {
		t.Errorf("the unknown key's refusal is not audited:\n%s", refused.stdout)
	}
	show := must(t, 0, runBin(t, bin, work, "", nil, "ca", "show", serial, d))
	if !strings.Contains(show.stdout, "revoked") {
		t.Errorf("ca show after the revocation over SSH:\n%s", show.stdout)
	}
	stopServe(t, serve)
	if l := logs.String(); !strings.Contains(l, "ssh: login") || !strings.Contains(l, "ssh: key refused") {
		t.Errorf("serve's log:\n%s", l)
	}
}

// TestServeSSHBesideServices runs SSH with the other services: all listen,
// a refused login does not disturb them, and SIGTERM stops them all.
func TestServeSSHBesideServices(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	sshBin := testpeer.Path(t, "ssh")
	work := t.TempDir()
	bin := buildBinary(t, work)
	dir := filepath.Join(work, "st")
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", "--dir", dir))
	must(t, 0, run(t, "", "ca", "crl", "--dir", dir)) // else health says the CRL is missing
	serve, addrs, _ := startServeSSH(t, bin, dir, "--http", "127.0.0.1:0", "--ldap", "127.0.0.1:0", "--ldaps", "127.0.0.1:0", "--kdc", "127.0.0.1:0")
	for _, name := range []string{"ssh", "http", "ldap", "ldaps", "kdc"} {
		if addrs[name] == "" {
			t.Errorf("serve printed no %s address: %v", name, addrs)
		}
	}
	// No authorized_keys: nobody gets in.
	key, _ := sshKey(t, t.TempDir(), "k", "k")
	_, port, _ := net.SplitHostPort(addrs["ssh"])
	out, err := exec.Command(sshBin, "-i", key, "-p", port, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes", "-tt", "admin@127.0.0.1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Permission denied (publickey)") {
		t.Fatalf("ssh without authorized_keys: %v\n%s", err, out)
	}
	resp, err := http.Get("http://" + addrs["http"] + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var h station.Health
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health: %s", resp.Status)
	}
	// The SSH station is reported with the embedded services.
	var sshHealth *station.ServiceHealth
	for i, svc := range h.Services {
		if svc.Name == "ssh" {
			sshHealth = &h.Services[i]
		}
	}
	if sshHealth == nil || sshHealth.Addr != addrs["ssh"] || sshHealth.State != station.StateServing {
		t.Errorf("health does not report the SSH service serving on %s: %+v", addrs["ssh"], h.Services)
	}
	stopServe(t, serve)
}
