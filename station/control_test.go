package station

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/scstation/scstation/pki"
)

func frame(typ byte, payload string) []byte {
	b, err := AppendFrame(nil, typ, []byte(payload))
	if err != nil {
		panic(err)
	}
	return b
}

func TestReadFrame(t *testing.T) {
	big := make([]byte, 5)
	big[0] = FrameStdout
	binary.BigEndian.PutUint32(big[1:], MaxControlFrame+1)
	for _, tc := range []struct {
		name    string
		in      []byte
		want    Frame
		wantErr error
	}{
		{"stdout", frame(FrameStdout, "hello"), Frame{FrameStdout, []byte("hello")}, nil},
		{"empty payload", frame(FrameStdin, ""), Frame{FrameStdin, []byte{}}, nil},
		{"nothing", nil, Frame{}, io.EOF},
		{"short header", []byte{FrameExit, 0, 0}, Frame{}, ErrProtocol},
		{"short payload", frame(FrameStdout, "hello")[:7], Frame{}, ErrProtocol},
		{"too large", big, Frame{}, ErrFrameTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ReadFrame(bytes.NewReader(tc.in))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || f.Type != tc.want.Type || !bytes.Equal(f.Data, tc.want.Data) {
				t.Fatalf("got %q %q %v, want %q %q", f.Type, f.Data, err, tc.want.Type, tc.want.Data)
			}
		})
	}
	if _, err := AppendFrame(nil, FrameStdout, make([]byte, MaxControlFrame+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("AppendFrame of an oversized payload: %v", err)
	}
}

// FuzzReadFrame: any input gives a frame or an error, never a panic, and
// a frame read re-encodes to the bytes it came from.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame(FrameRequest, `{"version":1,"args":["ca","list"],"cwd":"/"}`))
	f.Add(frame(FrameExit, "\x00"))
	f.Add([]byte{FrameStdout, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		fr, err := ReadFrame(r)
		if err != nil {
			return
		}
		consumed := len(data) - r.Len()
		again, err := AppendFrame(nil, fr.Type, fr.Data)
		if err != nil || !bytes.Equal(again, data[:consumed]) {
			t.Fatalf("re-encoding differs: %x vs %x (%v)", again, data[:consumed], err)
		}
	})
}

func TestCheckPeer(t *testing.T) {
	for _, tc := range []struct {
		cred *unix.Ucred
		uid  int
		ok   bool
	}{
		{&unix.Ucred{Pid: 10, Uid: 1000, Gid: 1000}, 1000, true},
		{&unix.Ucred{Pid: 10, Uid: 0, Gid: 0}, 1000, false},
		{&unix.Ucred{Pid: 10, Uid: 1001, Gid: 1000}, 1000, false},
		{&unix.Ucred{Pid: 10, Uid: 1000, Gid: 0}, 0, false},
		{nil, 1000, false},
	} {
		err := CheckPeer(tc.cred, tc.uid)
		if (err == nil) != tc.ok {
			t.Errorf("CheckPeer(%+v, %d) = %v, want ok=%v", tc.cred, tc.uid, err, tc.ok)
		}
	}
}

func TestListenControlStaleSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ControlSocket)
	// A crashed holder leaves its socket behind, with nobody listening.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	}
	if _, err := DialControl(dir); !errors.Is(err, ErrNoHolder) {
		t.Fatalf("dial of a stale socket: %v, want ErrNoHolder", err)
	}
	l, err := ListenControl(dir)
	if err != nil {
		t.Fatalf("the stale socket was not replaced: %v", err)
	}
	defer l.Close()
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v %v, want a socket with mode 0600", fi.Mode(), err)
	}
	accepted := make(chan *ControlConn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c, err := DialControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.PeerPID != os.Getpid() {
		t.Errorf("peer pid %d, want %d", c.PeerPID, os.Getpid())
	}
	if s := <-accepted; s != nil {
		s.Close()
	}
}

func TestListenControlHeld(t *testing.T) {
	dir := t.TempDir()
	l, err := ListenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, err = ListenControl(dir)
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second ListenControl: %v, want a HeldError", err)
	}
	if held.PID != os.Getpid() {
		t.Errorf("holder pid %d, want %d", held.PID, os.Getpid())
	}
	// The live socket was not stolen.
	c, err := DialControl(dir)
	if err != nil {
		t.Fatalf("the first holder lost its socket: %v", err)
	}
	c.Close()
	l.Close()
	if _, err := DialControl(dir); !errors.Is(err, ErrNoHolder) {
		t.Fatalf("after Close: %v, want ErrNoHolder", err)
	}
	l2, err := ListenControl(dir)
	if err != nil {
		t.Fatalf("after the holder left: %v", err)
	}
	l2.Close()
}

func TestListenControlNotASocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ControlSocket)
	os.WriteFile(path, []byte("keep me"), 0o600)
	if l, err := ListenControl(dir); err == nil {
		l.Close()
		t.Fatal("ListenControl replaced a regular file")
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Fatal("the file was changed")
	}
	// The failed attempt did not keep the directory held.
	os.Remove(path)
	l, err := ListenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// TestControlLongPath: a data directory whose socket path is too long for
// a unix socket address still gets one.
func TestControlLongPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := ListenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ServeControl(ctx, l, func(ctx context.Context, s *ControlSession) int { return 7 }, nil)
	c, err := DialControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	code, err := Forward(c, &ControlRequest{Args: []string{"x"}, Cwd: "/"}, ForwardIO{Stdout: io.Discard, Stderr: io.Discard})
	if err != nil || code != 7 {
		t.Fatalf("Forward: %d %v", code, err)
	}
}

func serveTestControl(t *testing.T, h ControlHandler) string {
	t.Helper()
	dir := t.TempDir()
	l, err := ListenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ServeControl(ctx, l, h, nil)
		l.Close()
	}()
	t.Cleanup(func() { cancel(); <-done })
	return dir
}

// TestControlSession runs a command through the socket: arguments,
// environment, standard input, a prompt, output and the exit code.
func TestControlSession(t *testing.T) {
	dir := serveTestControl(t, func(ctx context.Context, s *ControlSession) int {
		in, err := io.ReadAll(s.Stdin())
		if err != nil {
			return 9
		}
		secret, err := s.Prompt("Passphrase: ")
		if err != nil {
			return 8
		}
		_, noTTY := s.Prompt("Again: ")
		io.WriteString(s.Stdout(), strings.Join(s.Request.Args, " ")+"|"+string(in)+"|"+string(secret)+"|"+s.Request.Env["SCSTATION_X"])
		io.WriteString(s.Stderr(), "noTTY="+boolText(errors.Is(noTTY, ErrNoTerminal)))
		return 3
	})
	c, err := DialControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	prompts := 0
	// Standard input larger than one chunk arrives whole.
	stdin := strings.Repeat("0123456789", 20000)
	code, err := Forward(c, &ControlRequest{Args: []string{"ca", "list"}, Cwd: "/tmp", Env: ControlEnv([]string{"SCSTATION_X=y", "HOME=/root"})},
		ForwardIO{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Prompt: func(text string) ([]byte, error) {
			prompts++
			if prompts == 1 {
				return []byte("s3cret"), nil
			}
			return nil, ErrNoTerminal
		}})
	if err != nil || code != 3 {
		t.Fatalf("Forward: %d %v", code, err)
	}
	if want := "ca list|" + stdin + "|s3cret|y"; out.String() != want {
		t.Errorf("stdout %.80q..., want %.80q...", out.String(), want)
	}
	if errb.String() != "noTTY=true" {
		t.Errorf("stderr %q", errb.String())
	}
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// TestControlClientGone: a client that goes away cancels its command.
func TestControlClientGone(t *testing.T) {
	cancelled := make(chan error, 1)
	dir := serveTestControl(t, func(ctx context.Context, s *ControlSession) int {
		_, err := s.Prompt("PIN: ")
		cancelled <- err
		return 0
	})
	c, err := DialControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(ControlRequest{Version: ControlVersion, Args: []string{"x"}, Cwd: "/"})
	c.WriteFrame(FrameRequest, req)
	if f, err := c.ReadFrame(); err != nil || f.Type != FramePrompt {
		t.Fatalf("got %q %v, want a prompt", f.Type, err)
	}
	c.Close()
	if err := <-cancelled; err == nil {
		t.Fatal("the prompt did not fail when the client went away")
	}
}

// TestControlBadRequests: wrong version, relative cwd, garbage, a frame
// too large: each ends that one session with a message or a close.
func TestControlBadRequests(t *testing.T) {
	var ran atomic.Bool
	dir := serveTestControl(t, func(ctx context.Context, s *ControlSession) int { ran.Store(true); return 0 })
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"version", frame(FrameRequest, `{"version":99,"args":["x"],"cwd":"/"}`), "protocol version 99"},
		{"cwd", frame(FrameRequest, `{"version":1,"args":["x"],"cwd":"rel"}`), "absolute working directory"},
		{"garbage", frame(FrameRequest, `{{{`), "malformed"},
		{"not a request", frame(FrameStdout, `x`), ""},
		{"too large", []byte{FrameRequest, 0x7f, 0, 0, 0}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DialControl(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.c.Write(tc.raw)
			var stderr bytes.Buffer
			for {
				f, err := c.ReadFrame()
				if err != nil {
					if tc.want != "" {
						t.Fatalf("closed without an answer: %v", err)
					}
					return
				}
				switch f.Type {
				case FrameStderr:
					stderr.Write(f.Data)
				case FrameExit:
					if f.Data[0] != 2 || !strings.Contains(stderr.String(), tc.want) {
						t.Fatalf("exit %d, stderr %q; want 2 and %q", f.Data[0], stderr.String(), tc.want)
					}
					return
				}
			}
		})
	}
	if ran.Load() {
		t.Error("a bad request ran the handler")
	}
}

// TestStationConcurrent: the services and forwarded commands use one
// station from many goroutines; borrowed views share its databases,
// closing them closes nothing, and each must unlock the CA itself.
func TestStationConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "st")
	pass := func(bool) ([]byte, error) { return []byte("correct horse"), nil }
	st, err := Init(dir, InitOptions{Domain: "example.test", CA: CAOptions{Passphrase: pass}})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CA(pass); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			b := st.Borrow(nil)
			defer b.Close()
			if _, err := b.CADB(); err != nil {
				t.Error(err)
			}
			if _, err := b.Directory(); err != nil {
				t.Error(err)
			}
			if _, err := b.KDCStore(); err != nil {
				t.Error(err)
			}
			if i > 1 {
				return
			}
			// Unlocking the key is slow on purpose: two tries suffice.
			if i == 0 {
				wrong := func(bool) ([]byte, error) { return []byte("wrong"), nil }
				if _, err := b.PublishCRL(wrong); !errors.Is(err, ErrPassphrase) {
					t.Errorf("borrowed station with a wrong passphrase: %v", err)
				}
			} else if _, err := b.PublishCRL(pass); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := st.CA(nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	db, err := st.CADB()
	if err != nil {
		t.Fatal(err)
	}
	// Still open after the borrowed views were closed.
	if _, err := db.List(pki.Query{}); err != nil {
		t.Fatal(err)
	}
	a, _ := st.KDCStore()
	b, _ := st.Borrow(nil).KDCStore()
	if a != b {
		t.Error("the KDC store is not shared")
	}
}
