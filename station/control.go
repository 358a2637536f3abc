package station

// The control socket. A bbolt file belongs to one process, so while serve
// (or the TUI) holds a data directory, every other scstation command on it
// is run by the holder on the caller's behalf: the caller sends its
// invocation (arguments, working directory, SCSTATION_* environment) over
// DIR/control.sock and relays standard input, output, error and terminal
// prompts until the holder sends the exit code.
//
// Security: the socket is mode 0600 in the data directory, and both ends
// check the peer's uid with SO_PEERCRED, so only the owner's processes talk
// to each other; secrets (passphrases, PINs, passwords on stdin) cross only
// this socket and are never logged.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ControlSocket is the control socket's name in the data directory;
// controlLock is the file whose lock (flock) marks the live holder.
const (
	ControlSocket = "control.sock"
	controlLock   = "control.lock"
)

// ControlVersion is the version of the control protocol.
const ControlVersion = 1

// MaxControlFrame bounds one control message's payload. Larger frames are
// refused before anything is allocated for them.
const MaxControlFrame = 1 << 20

// Limits within a frame: a chunk of standard input, an answer to a prompt.
const (
	maxStdinChunk  = 64 << 10
	maxPromptReply = 4 << 10
	maxSessions    = 16
	requestTimeout = 10 * time.Second
)

// Frame types. Client to holder: the request, standard input (in answer to
// a read request; empty means end of file), and the answer to a prompt (or
// "no terminal"). Holder to client: output, a read request, a prompt, and
// the exit code, which ends the session.
const (
	FrameRequest    byte = 'Q'
	FrameStdin      byte = 'I'
	FrameAnswer     byte = 'A'
	FrameNoTerminal byte = 'N'
	FrameStdout     byte = 'O'
	FrameStderr     byte = 'E'
	FrameRead       byte = 'R'
	FramePrompt     byte = 'P'
	FrameExit       byte = 'X'
)

// Errors of the control socket.
var (
	// ErrHeld: another live process holds the data directory.
	ErrHeld = errors.New("station: the data directory is held by another scstation process")
	// ErrNoHolder: nobody is listening on the data directory's control
	// socket; the caller may open the directory itself.
	ErrNoHolder = errors.New("station: no process holds the data directory")
	// ErrNoTerminal: the client has no terminal to answer a prompt on.
	ErrNoTerminal = errors.New("station: no terminal to ask on")
	// ErrFrameTooLarge: a control frame exceeds MaxControlFrame.
	ErrFrameTooLarge = errors.New("station: control frame too large")
	// ErrProtocol: the peer broke the control protocol.
	ErrProtocol = errors.New("station: control protocol violation")
)

// HeldError says which process holds a data directory.
type HeldError struct {
	Dir string
	PID int // 0 when unknown (the holder is starting)
}

func (e *HeldError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("station: %s is held by another scstation process (serve or the station)", e.Dir)
	}
	return fmt.Sprintf("station: %s is held by another scstation process (pid %d: serve or the station)", e.Dir, e.PID)
}

func (e *HeldError) Unwrap() error { return ErrHeld }

// Frame is one control message.
type Frame struct {
	Type byte
	Data []byte
}

// ReadFrame reads one frame: a type byte, a 4-byte big-endian length and
// the payload. It refuses lengths above MaxControlFrame without reading on.
func ReadFrame(r io.Reader) (Frame, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, fmt.Errorf("%w: truncated frame header", ErrProtocol)
		}
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxControlFrame {
		return Frame{}, fmt.Errorf("%w (%d bytes, limit %d)", ErrFrameTooLarge, n, MaxControlFrame)
	}
	f := Frame{Type: hdr[0], Data: make([]byte, n)}
	if _, err := io.ReadFull(r, f.Data); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, fmt.Errorf("%w: truncated frame", ErrProtocol)
		}
		return Frame{}, err
	}
	return f, nil
}

// AppendFrame appends the encoding of a frame to b.
func AppendFrame(b []byte, typ byte, payload []byte) ([]byte, error) {
	if len(payload) > MaxControlFrame {
		return b, ErrFrameTooLarge
	}
	b = append(b, typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[len(b)-4:], uint32(len(payload)))
	return append(b, payload...), nil
}

// ControlRequest is a command invocation sent to the holder.
type ControlRequest struct {
	Version int `json:"version"`
	// Args are the command's arguments (without the program name).
	Args []string `json:"args"`
	// Cwd is the client's working directory: relative paths resolve
	// against it, never against the holder's.
	Cwd string `json:"cwd"`
	// Dir is the data directory the client resolved.
	Dir string `json:"dir"`
	// Env holds the client's SCSTATION_* variables (see ForwardedEnv).
	Env map[string]string `json:"env,omitempty"`
	// StdinTerminal says the client's standard input is a terminal.
	StdinTerminal bool `json:"stdin_terminal,omitempty"`
}

// ForwardedEnv reports whether an environment variable travels with a
// forwarded command: the station's own variables, SCSTATION_*, do (the
// passphrase in SCSTATION_CA_PASSPHRASE among them); nothing else does.
func ForwardedEnv(name string) bool { return strings.HasPrefix(name, "SCSTATION_") }

// ControlEnv collects the forwarded variables from environ (os.Environ's
// form).
func ControlEnv(environ []string) map[string]string {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && ForwardedEnv(k) {
			env[k] = v
		}
	}
	return env
}

// ControlConn is one end of a control connection, peer-checked.
type ControlConn struct {
	c   *net.UnixConn
	r   *bufio.Reader
	wmu sync.Mutex
	// PeerPID is the process at the other end.
	PeerPID int
}

// WriteFrame sends one frame; it is safe for concurrent use.
func (c *ControlConn) WriteFrame(typ byte, payload []byte) error {
	b, err := AppendFrame(make([]byte, 0, 5+len(payload)), typ, payload)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err = c.c.Write(b)
	clear(b) // it may hold a secret
	return err
}

// ReadFrame receives one frame.
func (c *ControlConn) ReadFrame() (Frame, error) { return ReadFrame(c.r) }

// Close closes the connection.
func (c *ControlConn) Close() error { return c.c.Close() }

func newControlConn(c *net.UnixConn) (*ControlConn, error) {
	cred, err := peerCred(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := CheckPeer(cred, os.Getuid()); err != nil {
		c.Close()
		return nil, err
	}
	return &ControlConn{c: c, r: bufio.NewReader(c), PeerPID: int(cred.Pid)}, nil
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, fmt.Errorf("station: control socket peer credentials: %w", cerr)
	}
	return cred, nil
}

// CheckPeer admits a control-socket peer only when it runs as uid, the
// owner of this process: the socket carries secrets and acts with the
// owner's full rights on the data directory.
func CheckPeer(cred *unix.Ucred, uid int) error {
	if cred == nil {
		return fmt.Errorf("%w: no peer credentials", ErrProtocol)
	}
	if int(cred.Uid) != uid {
		return fmt.Errorf("station: control socket peer (pid %d) runs as uid %d, not %d: refused", cred.Pid, cred.Uid, uid)
	}
	return nil
}

// socketPath returns an address for dir's control socket. Unix socket
// addresses are limited to 107 bytes; a longer path is reached through
// /proc/self/fd and an open handle on the directory, which the caller
// closes once the socket is bound or connected.
func socketPath(dir string) (addr string, done func(), err error) {
	p := filepath.Join(dir, ControlSocket)
	if len(p) < 100 {
		return p, func() {}, nil
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", fd, ControlSocket), func() { unix.Close(fd) }, nil
}

// DialControl connects to the holder of dir. It returns ErrNoHolder when
// no live process listens there (no socket, or a stale one), and a
// connection only to a holder running as the same user.
func DialControl(dir string) (*ControlConn, error) {
	addr, done, err := socketPath(dir)
	if err != nil {
		return nil, err
	}
	defer done()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOTDIR) {
			return nil, ErrNoHolder
		}
		return nil, fmt.Errorf("station: control socket %s: %w", filepath.Join(dir, ControlSocket), err)
	}
	return newControlConn(c)
}

// ControlListener is the holder's end of the control socket. Holding it
// holds the data directory: a second ListenControl on the same directory,
// from any process, fails with a HeldError.
type ControlListener struct {
	ln   *net.UnixListener
	lock *os.File
	path string
}

// ListenControl takes the data directory's holder lock and listens on its
// control socket (mode 0600). A socket left by a crashed holder is
// replaced; a live holder's never is.
func ListenControl(dir string) (*ControlListener, error) {
	lock, err := os.OpenFile(filepath.Join(dir, controlLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	// The lock, not the socket, says who holds the directory: the kernel
	// drops it when its process dies, so a holder that crashed never
	// blocks the next one, and two starting at once cannot both win.
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			held := &HeldError{Dir: dir}
			if c, err := DialControl(dir); err == nil {
				held.PID = c.PeerPID
				c.Close()
			}
			return nil, held
		}
		return nil, err
	}
	l, err := listenLocked(dir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	l.lock = lock
	return l, nil
}

func listenLocked(dir string) (*ControlListener, error) {
	path := filepath.Join(dir, ControlSocket)
	// Under the lock, whatever socket is there is stale.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("station: %s exists and is not a socket; remove it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	// Bind under a temporary name, restrict it, then give it its name, so
	// that no client ever finds the socket with looser permissions.
	tmpName := fmt.Sprintf(".control.%d.sock", os.Getpid())
	tmp := filepath.Join(dir, tmpName)
	os.Remove(tmp)
	addr, done, err := socketPath(dir)
	if err != nil {
		return nil, err
	}
	addr = filepath.Join(filepath.Dir(addr), tmpName)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	done()
	if err != nil {
		return nil, fmt.Errorf("station: control socket: %w", err)
	}
	// The name changes below: remove the socket by hand on Close.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	return &ControlListener{ln: ln, path: path}, nil
}

// Path is the socket's path.
func (l *ControlListener) Path() string { return l.path }

// Accept waits for the next peer running as the same user; others are
// turned away (and logged by ServeControl).
func (l *ControlListener) Accept() (*ControlConn, error) {
	c, err := l.ln.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return newControlConn(c)
}

// Close stops listening, removes the socket and releases the directory.
func (l *ControlListener) Close() error {
	err := l.ln.Close()
	os.Remove(l.path)
	if l.lock != nil {
		l.lock.Close()
	}
	return err
}

// ControlHandler runs one forwarded command and returns its exit code.
// ctx ends when the client goes away or the holder stops.
type ControlHandler func(ctx context.Context, s *ControlSession) int

// ServeControl accepts control connections on l and runs each request with
// h, until ctx ends; then it closes l, cancels the running commands and
// waits for them.
func ServeControl(ctx context.Context, l *ControlListener, h ControlHandler, log *slog.Logger) error {
	log = logger(log)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		l.ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, maxSessions)
	var backoff time.Duration
	for {
		uc, err := l.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors, say: wait a little, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("control socket accept", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		c, err := newControlConn(uc)
		if err != nil {
			log.Warn("control connection refused", "err", err)
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			c.WriteFrame(FrameStderr, []byte("scstation: the holder of this data directory is busy with too many commands; try again\n"))
			c.WriteFrame(FrameExit, []byte{2})
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			serveSession(ctx, c, h, log)
		}()
	}
}

func serveSession(ctx context.Context, c *ControlConn, h ControlHandler, log *slog.Logger) {
	defer c.Close()
	c.c.SetReadDeadline(time.Now().Add(requestTimeout))
	f, err := c.ReadFrame()
	if errors.Is(err, io.EOF) {
		// A client that only looked who holds the directory.
		log.Debug("control connection closed without a request", "pid", c.PeerPID)
		return
	}
	if err != nil || f.Type != FrameRequest {
		log.Warn("control connection without a request", "pid", c.PeerPID, "err", err)
		return
	}
	c.c.SetReadDeadline(time.Time{})
	var req ControlRequest
	fail := func(msg string) {
		c.WriteFrame(FrameStderr, []byte("scstation: "+msg+"\n"))
		c.WriteFrame(FrameExit, []byte{2})
	}
	if err := json.Unmarshal(f.Data, &req); err != nil {
		fail("malformed control request")
		return
	}
	if req.Version != ControlVersion {
		fail(fmt.Sprintf("control protocol version %d, the running scstation speaks %d: use the same scstation binary", req.Version, ControlVersion))
		return
	}
	if !filepath.IsAbs(req.Cwd) {
		fail("control request without an absolute working directory")
		return
	}
	for k := range req.Env {
		if !ForwardedEnv(k) {
			delete(req.Env, k)
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &ControlSession{Request: &req, PeerPID: c.PeerPID, conn: c, ctx: sctx,
		stdin: make(chan []byte), answers: make(chan answer)}
	go s.readLoop(cancel)
	start := time.Now()
	code := h(sctx, s)
	if code < 0 || code > 255 {
		code = 2
	}
	c.WriteFrame(FrameExit, []byte{byte(code)})
	// Only the command's name is logged: its arguments and environment are
	// the client's business (and the environment may hold a passphrase).
	log.Info("forwarded command", "command", commandName(req.Args), "pid", c.PeerPID, "exit", code, "took", time.Since(start).Round(time.Millisecond))
}

// commandName is the leading words of args that are not flags, at most
// two ("ca revoke"), for the log.
func commandName(args []string) string {
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") || len(words) == 2 {
			break
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}

type answer struct {
	data []byte
	err  error
}

// ControlSession is one forwarded command on the holder's side: the
// request, and the client's standard streams and terminal.
type ControlSession struct {
	Request *ControlRequest
	PeerPID int

	conn    *ControlConn
	ctx     context.Context
	stdin   chan []byte
	answers chan answer

	readMu  sync.Mutex // one stdin read at a time
	eof     bool
	pending []byte

	promptMu sync.Mutex // one prompt at a time
}

// readLoop receives the client's frames for the session's lifetime; the
// client closing the connection cancels the command.
func (s *ControlSession) readLoop(cancel context.CancelFunc) {
	defer cancel()
	for {
		f, err := s.conn.ReadFrame()
		if err != nil {
			return
		}
		switch f.Type {
		case FrameStdin:
			if len(f.Data) > maxStdinChunk {
				return
			}
			select {
			case s.stdin <- f.Data:
			case <-s.ctx.Done():
				return
			}
		case FrameAnswer, FrameNoTerminal:
			a := answer{data: f.Data}
			if f.Type == FrameNoTerminal || len(f.Data) > maxPromptReply {
				clear(f.Data)
				a = answer{err: ErrNoTerminal}
			}
			select {
			case s.answers <- a:
			case <-s.ctx.Done():
				clear(f.Data)
				return
			}
		default:
			return
		}
	}
}

// Stdin is the client's standard input, read on demand.
func (s *ControlSession) Stdin() io.Reader { return sessionStdin{s} }

type sessionStdin struct{ s *ControlSession }

func (r sessionStdin) Read(p []byte) (int, error) {
	s := r.s
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if len(s.pending) == 0 {
		if s.eof {
			return 0, io.EOF
		}
		n := min(len(p), maxStdinChunk)
		if err := s.conn.WriteFrame(FrameRead, binary.BigEndian.AppendUint32(nil, uint32(n))); err != nil {
			return 0, err
		}
		select {
		case data := <-s.stdin:
			if len(data) == 0 {
				s.eof = true
				return 0, io.EOF
			}
			s.pending = data
		case <-s.ctx.Done():
			return 0, fmt.Errorf("station: standard input: %w", context.Cause(s.ctx))
		}
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// Stdout and Stderr write to the client's standard output and error.
func (s *ControlSession) Stdout() io.Writer { return sessionWriter{s, FrameStdout} }
func (s *ControlSession) Stderr() io.Writer { return sessionWriter{s, FrameStderr} }

type sessionWriter struct {
	s   *ControlSession
	typ byte
}

func (w sessionWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxStdinChunk)
		if err := w.s.conn.WriteFrame(w.typ, p[:n]); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// Prompt asks on the client's terminal, without echo, and returns the
// answer (which the caller wipes). It fails with ErrNoTerminal when the
// client has none.
func (s *ControlSession) Prompt(text string) ([]byte, error) {
	s.promptMu.Lock()
	defer s.promptMu.Unlock()
	if err := s.conn.WriteFrame(FramePrompt, []byte(text)); err != nil {
		return nil, err
	}
	select {
	case a := <-s.answers:
		return a.data, a.err
	case <-s.ctx.Done():
		return nil, fmt.Errorf("station: prompt: %w", context.Cause(s.ctx))
	}
}

// ForwardIO is the client's side of a forwarded command.
type ForwardIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Prompt asks on the terminal without echo; it returns ErrNoTerminal
	// when there is none.
	Prompt func(text string) ([]byte, error)
}

// ErrHolderGone: the holder closed the connection before the command
// finished; whether it took effect is unknown.
var ErrHolderGone = errors.New("station: the process holding the data directory went away before the command finished; check whether it took effect")

// Forward sends a command to the holder over c, relays the streams and
// prompts, and returns the command's exit code. It closes c.
func Forward(c *ControlConn, req *ControlRequest, fio ForwardIO) (int, error) {
	defer c.Close()
	if fio.Stdout == nil {
		fio.Stdout = io.Discard
	}
	if fio.Stderr == nil {
		fio.Stderr = io.Discard
	}
	req.Version = ControlVersion
	data, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	err = c.WriteFrame(FrameRequest, data)
	clear(data) // the environment may hold a passphrase
	if err != nil {
		return 0, err
	}
	buf := make([]byte, maxStdinChunk)
	for {
		f, err := c.ReadFrame()
		if errors.Is(err, io.EOF) {
			return 0, ErrHolderGone
		}
		if err != nil {
			return 0, err
		}
		switch f.Type {
		case FrameStdout:
			fio.Stdout.Write(f.Data)
		case FrameStderr:
			fio.Stderr.Write(f.Data)
		case FrameRead:
			if len(f.Data) != 4 {
				return 0, fmt.Errorf("%w: read request of %d bytes", ErrProtocol, len(f.Data))
			}
			n := min(int(binary.BigEndian.Uint32(f.Data)), len(buf))
			var got int
			if fio.Stdin != nil && n > 0 {
				got, err = fio.Stdin.Read(buf[:n])
				if got == 0 && err == nil {
					// A reader may return nothing without an error; ask again.
					got, _ = fio.Stdin.Read(buf[:n])
				}
			}
			werr := c.WriteFrame(FrameStdin, buf[:got])
			clear(buf[:got])
			if werr != nil {
				return 0, werr
			}
		case FramePrompt:
			var ans []byte
			perr := ErrNoTerminal
			if fio.Prompt != nil {
				ans, perr = fio.Prompt(string(f.Data))
			}
			if perr != nil {
				err = c.WriteFrame(FrameNoTerminal, nil)
			} else {
				err = c.WriteFrame(FrameAnswer, ans)
				clear(ans)
			}
			if err != nil {
				return 0, err
			}
		case FrameExit:
			if len(f.Data) != 1 {
				return 0, fmt.Errorf("%w: exit frame of %d bytes", ErrProtocol, len(f.Data))
			}
			return int(f.Data[0]), nil
		default:
			return 0, fmt.Errorf("%w: frame type %q", ErrProtocol, f.Type)
		}
	}
}
