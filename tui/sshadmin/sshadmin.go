// Package sshadmin serves the administrator's station over SSH: the CA,
// Cards, Directory and Audit screens of package tui, one program per
// session, for the keys listed in the data directory's authorized_keys.
//
// Only public-key authentication is offered (no password, no
// keyboard-interactive, no "none"). The key a session authenticated with
// is checked again when the session starts: a client can offer one key and
// authenticate with another (GHSA-pchf-49fh-w34r), so nothing is taken
// from the offers. Every session acts as its own borrowed view of the
// station, with the audit actor "ssh:<comment>:<fingerprint>", and its
// start and end, and every refused key, are audited.
package sshadmin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"
	wishtea "charm.land/wish/v2/bubbletea"
	gossh "golang.org/x/crypto/ssh"

	"github.com/scstation/scstation/internal/atomicfile"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/tui"
)

// Files in the data directory.
const (
	// AuthorizedKeysFile lists the administrators' public keys, in
	// OpenSSH authorized_keys format (options are not supported: a line
	// with options is ignored). It is read at every login, so an edit
	// takes effect on the next one; when it is missing nobody gets in.
	AuthorizedKeysFile = "authorized_keys"
	// HostKeyFile is the server's ed25519 host key (OpenSSH format, mode
	// 0600), made on the first start and kept.
	HostKeyFile = "ssh_host_ed25519_key"
)

// Default timeouts.
const (
	DefaultIdleTimeout = 15 * time.Minute
	DefaultMaxTimeout  = 8 * time.Hour
)

// Config says where and how to serve.
type Config struct {
	// Addr is the listening address, e.g. 127.0.0.1:2222.
	Addr string
	// Station is the open data directory; sessions borrow views of it.
	Station *station.Station
	// IdleTimeout ends a session after this long without a key press
	// (and a connection after this long without traffic), MaxTimeout a
	// session after this long in all (and a connection a minute later);
	// 0 means the default, negative none.
	IdleTimeout, MaxTimeout time.Duration
	// Log receives the server's log lines (never a secret).
	Log *slog.Logger
	// Ready is told the listening address once connections are accepted.
	Ready func(addr string)
}

// Server is an SSH server for the administrator's station.
type Server struct {
	cfg      Config
	log      *slog.Logger
	keysPath string
	srv      *ssh.Server
	// sessions are running; Serve waits for them so that the station is
	// not closed under them. Once closing is set (under sessionsMu) no
	// session starts.
	sessionsMu sync.Mutex
	closing    bool
	sessions   sync.WaitGroup
	// warnMissing logs a missing authorized_keys once per change.
	missingMu     sync.Mutex
	missingLogged bool
	// refusals bounds the audit records of refused keys.
	refusals refusalLimiter
}

// Bounds on the audit records of refused keys, per minute: a peer that is
// not let in must not make the station write (and fsync) without end.
// Refusals over them are counted and the count goes into the next record.
const (
	refusalsPerAddr   = 10
	refusalsPerMinute = 100
	refusalAddrs      = 1024
)

// refusalLimiter says whether a refusal from one address may be audited
// in the current minute.
type refusalLimiter struct {
	mu      sync.Mutex
	start   time.Time // of the current minute
	perAddr map[string]int
	total   int
	dropped int
}

// allow reports whether a refusal from host may be recorded now, and how
// many refusals were not recorded since the last one that was.
func (l *refusalLimiter) allow(now time.Time, host string) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perAddr == nil || now.Sub(l.start) >= time.Minute || now.Before(l.start) {
		l.start, l.perAddr, l.total = now, map[string]int{}, 0
	}
	n, known := l.perAddr[host]
	if l.total >= refusalsPerMinute || n >= refusalsPerAddr || !known && len(l.perAddr) >= refusalAddrs {
		l.dropped++
		return false, 0
	}
	l.perAddr[host] = n + 1
	l.total++
	dropped, l.dropped = l.dropped, 0
	return true, dropped
}

// New prepares a server: it loads the host key, making it when missing.
func New(cfg Config) (*Server, error) {
	if cfg.Station == nil {
		return nil, errors.New("sshadmin: no station")
	}
	if cfg.Addr == "" {
		return nil, errors.New("sshadmin: no address")
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxTimeout == 0 {
		cfg.MaxTimeout = DefaultMaxTimeout
	}
	s := &Server{cfg: cfg, log: cfg.Log, keysPath: filepath.Join(cfg.Station.Dir, AuthorizedKeysFile)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	hostKey, err := LoadHostKey(filepath.Join(cfg.Station.Dir, HostKeyFile))
	if err != nil {
		return nil, err
	}
	opts := []ssh.Option{
		ssh.HostKeyPEM(hostKey),
		wish.WithVersion("scstation"),
		wish.WithPublicKeyAuth(s.publicKey),
		wish.WithMiddleware(s.session),
		func(srv *ssh.Server) error {
			srv.HandshakeTimeout = 30 * time.Second
			srv.ConnectionFailedCallback = func(c net.Conn, err error) {
				s.log.Debug("ssh: connection failed", "remote", c.RemoteAddr().String(), "err", err)
			}
			if cfg.IdleTimeout > 0 {
				srv.IdleTimeout = cfg.IdleTimeout
			}
			if cfg.MaxTimeout > 0 {
				// The session ends itself at MaxTimeout and says so; the
				// connection's bound is the backstop.
				srv.MaxTimeout = cfg.MaxTimeout + time.Minute
			}
			return nil
		},
	}
	srv, err := wish.NewServer(opts...)
	if err != nil {
		return nil, fmt.Errorf("sshadmin: %w", err)
	}
	if srv.PasswordHandler != nil || srv.KeyboardInteractiveHandler != nil || srv.PublicKeyHandler == nil {
		// Without an auth handler the SSH layer lets everyone in.
		return nil, errors.New("sshadmin: public-key authentication is not the only method")
	}
	s.srv = srv
	return s, nil
}

// Serve listens on the configured address and serves until ctx ends;
// then it closes every connection and waits for the sessions to finish.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("sshadmin: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeListener(ln) }()
	select {
	case <-ctx.Done():
		err = nil
	case err = <-done:
	}
	if serr := s.Shutdown(context.Background()); err == nil {
		err = serr
	}
	return err
}

// ServeListener serves on ln until Shutdown; it returns nil after a
// Shutdown. It is Serve for a caller that listens itself (station.Serve
// runs it beside the embedded services).
func (s *Server) ServeListener(ln net.Listener) error {
	if _, err := os.Stat(s.keysPath); errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("ssh: no authorized_keys: nobody can log in until it lists an administrator's key", "path", s.keysPath)
	}
	s.log.Info("ssh ready", "addr", ln.Addr().String(), "authorized_keys", s.keysPath,
		"idle_timeout", s.cfg.IdleTimeout, "max_timeout", s.cfg.MaxTimeout)
	if s.cfg.Ready != nil {
		s.cfg.Ready(ln.Addr().String())
	}
	err := s.srv.Serve(ln)
	if errors.Is(err, ssh.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sshadmin: %w", err)
	}
	return nil
}

// Shutdown closes the listener and every connection, and waits for the
// sessions to finish (each one audits its end).
func (s *Server) Shutdown(context.Context) error {
	cerr := s.srv.Close()
	if errors.Is(cerr, net.ErrClosed) || errors.Is(cerr, ssh.ErrServerClosed) {
		cerr = nil
	}
	s.sessionsMu.Lock()
	s.closing = true
	s.sessionsMu.Unlock()
	s.sessions.Wait()
	if cerr != nil {
		return fmt.Errorf("sshadmin: %w", cerr)
	}
	return nil
}

// LoadHostKey reads the host key at path (PEM, OpenSSH format), making an
// ed25519 key there (mode 0600) when there is none. A key that others can
// read is refused, as sshd does.
func LoadHostKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		block, err := gossh.MarshalPrivateKey(priv, "scstation host key")
		if err != nil {
			return nil, err
		}
		data := pem.EncodeToMemory(block)
		if err := atomicfile.Write(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("sshadmin: writing the host key: %w", err)
		}
		return data, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sshadmin: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("sshadmin: the host key %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sshadmin: %w", err)
	}
	if _, err := gossh.ParsePrivateKey(data); err != nil {
		return nil, fmt.Errorf("sshadmin: the host key %s: %w", path, err)
	}
	return data, nil
}

// AuthorizedKey is one line of authorized_keys.
type AuthorizedKey struct {
	Key     gossh.PublicKey
	Comment string
}

// ErrNoAuthorizedKeys reports a missing authorized_keys file.
var ErrNoAuthorizedKeys = errors.New("sshadmin: no authorized_keys file")

// ParseAuthorizedKeys reads authorized_keys data. Blank lines and
// comments are skipped; a line that is not a key, or that carries options
// (which this server would not honour), is skipped and reported in bad
// by line number, so that a typo cannot let anyone in.
func ParseAuthorizedKeys(data []byte) (keys []AuthorizedKey, bad []int) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 16<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, comment, opts, rest, err := gossh.ParseAuthorizedKey(line)
		if err != nil || len(opts) > 0 || len(bytes.TrimSpace(rest)) > 0 {
			bad = append(bad, n)
			continue
		}
		keys = append(keys, AuthorizedKey{Key: k, Comment: comment})
	}
	if sc.Err() != nil {
		bad = append(bad, n+1)
	}
	return keys, bad
}

// authorized finds key in authorized_keys, read afresh.
func (s *Server) authorized(key ssh.PublicKey) (AuthorizedKey, bool) {
	data, err := os.ReadFile(s.keysPath)
	s.missingMu.Lock()
	if errors.Is(err, fs.ErrNotExist) {
		if !s.missingLogged {
			s.log.Warn("ssh: no authorized_keys: nobody can log in", "path", s.keysPath)
		}
		s.missingLogged = true
	} else {
		s.missingLogged = false
	}
	s.missingMu.Unlock()
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("ssh: cannot read authorized_keys: nobody can log in", "path", s.keysPath, "err", err)
		}
		return AuthorizedKey{}, false
	}
	keys, bad := ParseAuthorizedKeys(data)
	if len(bad) > 0 {
		s.log.Warn("ssh: authorized_keys lines skipped (not a plain OpenSSH public key)", "path", s.keysPath, "lines", bad)
	}
	found, ok := AuthorizedKey{}, false
	for _, k := range keys {
		// KeysEqual compares in constant time; go through every line.
		if ssh.KeysEqual(key, k.Key) && !ok {
			found, ok = k, true
		}
	}
	return found, ok
}

// refusedKey is the context key of the fingerprints already audited as
// refused on one connection.
type refusedKey struct{}

// publicKey is the authentication callback. It is called for keys a
// client only offers as well as for the one it signs with, so it decides
// nothing but "is this key listed"; the session checks again which key
// was used.
func (s *Server) publicKey(ctx ssh.Context, key ssh.PublicKey) bool {
	if _, ok := s.authorized(key); ok {
		return true
	}
	fp := gossh.FingerprintSHA256(key)
	// One record per unknown key and connection: a client retrying does
	// not flood the log (the SSH layer caps the attempts).
	seen, _ := ctx.Value(refusedKey{}).(map[string]bool)
	if seen == nil {
		seen = map[string]bool{}
		ctx.SetValue(refusedKey{}, seen)
	}
	if !seen[fp] {
		seen[fp] = true
		host := ctx.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		ok, dropped := s.refusals.allow(time.Now(), host)
		if !ok {
			s.log.Debug("ssh: key refused, not audited (too many refusals this minute)", "fingerprint", fp, "remote", ctx.RemoteAddr().String())
			return false
		}
		s.log.Warn("ssh: key refused", "fingerprint", fp, "user", ctx.User(), "remote", ctx.RemoteAddr().String())
		detail := fmt.Sprintf("key %s not in authorized_keys, from %s", fp, ctx.RemoteAddr())
		if dropped > 0 {
			detail += fmt.Sprintf("; %d earlier refusals not recorded (over %d per address or %d per minute)", dropped, refusalsPerAddr, refusalsPerMinute)
		}
		s.record(audit.Record{Actor: Actor(ctx.User(), "", key), Action: "ssh.refused", Outcome: audit.Refused, Detail: detail})
	}
	return false
}

// Actor is the audit actor of a session: "ssh:", the key's comment in
// authorized_keys (the SSH user name when it has none), ":" and the key's
// SHA256 fingerprint as ssh-keygen -l prints it.
func Actor(user, comment string, key ssh.PublicKey) string {
	name := comment
	if name == "" {
		name = user
	}
	return "ssh:" + clean(name) + ":" + gossh.FingerprintSHA256(key)
}

// clean keeps a name that came over the wire (or from a file) short and
// printable, so that it cannot forge lines or fields in the audit log.
func clean(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 64 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("._-@+", r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// record writes an audit record the server makes itself; a failure is
// logged (there is nobody else to tell).
func (s *Server) record(r audit.Record) error {
	err := s.cfg.Station.Record(r)
	if err != nil {
		s.log.Error("ssh: audit record not written", "action", r.Action, "err", err)
	}
	return err
}

// session runs the station for one SSH session.
func (s *Server) session(ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		s.sessionsMu.Lock()
		if s.closing {
			s.sessionsMu.Unlock()
			wish.Fatalln(sess, "scstation: the server is stopping")
			return
		}
		s.sessions.Add(1)
		s.sessionsMu.Unlock()
		defer s.sessions.Done()
		remote := sess.RemoteAddr().String()
		// The key the connection authenticated with, as the SSH layer
		// recorded it after the signature was checked: not one that was
		// merely offered. Check it is still listed.
		key := sess.PublicKey()
		if key == nil {
			s.log.Error("ssh: session without a public key refused", "remote", remote)
			wish.Fatalln(sess, "scstation: not authenticated with a public key")
			return
		}
		ak, ok := s.authorized(key)
		if !ok {
			s.record(audit.Record{Actor: Actor(sess.User(), "", key), Action: "ssh.refused", Outcome: audit.Refused,
				Detail: fmt.Sprintf("key %s not in authorized_keys at session start, from %s", gossh.FingerprintSHA256(key), remote)})
			wish.Fatalln(sess, "scstation: this key is not authorized")
			return
		}
		pty, winch, ok := sess.Pty()
		if !ok {
			wish.Fatalln(sess, "scstation: the station is full-screen and needs a terminal: connect with ssh -t, without a command")
			return
		}
		if len(sess.RawCommand()) > 0 {
			wish.Fatalln(sess, "scstation: no commands over SSH: connect without one to open the station")
			return
		}
		actor := Actor(sess.User(), ak.Comment, key)
		fp := gossh.FingerprintSHA256(key)
		v := s.cfg.Station.Borrow(s.log)
		v.Actor = actor
		defer v.Close()
		start := time.Now()
		if err := v.Record(audit.Record{Action: "ssh.login", Outcome: audit.OK,
			Detail: fmt.Sprintf("key %s from %s, user %s", fp, remote, clean(sess.User()))}); err != nil {
			// Nothing is done unrecorded.
			wish.Fatalln(sess, "scstation: the audit log is not available; try later")
			return
		}
		s.log.Info("ssh: login", "actor", actor, "remote", remote)
		ended := "" // why the server ended the session, if it did
		defer func() {
			d := time.Since(start).Round(time.Second)
			detail := fmt.Sprintf("key %s from %s after %s", fp, remote, d)
			if ended != "" {
				detail += ": " + ended
			}
			v.Record(audit.Record{Action: "ssh.logout", Outcome: audit.OK, Detail: detail})
			s.log.Info("ssh: logout", "actor", actor, "remote", remote, "after", d, "ended", ended)
		}()

		m, err := tui.New(tui.Options{Station: v, Remote: true, NoColor: noColor(sess.Environ())})
		if err != nil {
			wish.Fatalln(sess, "scstation:", err)
			return
		}
		defer m.Close()
		ctx, cancel := context.WithCancel(sess.Context())
		defer cancel()
		// Idle means no key pressed: the screen may keep drawing, and a
		// client's keepalives are not the administrator at work.
		var in io.Reader = sess
		var idled, expired atomic.Bool
		if limit := s.cfg.MaxTimeout; limit > 0 {
			timer := time.AfterFunc(limit, func() { expired.Store(true); cancel() })
			defer timer.Stop()
		}
		if idle := s.cfg.IdleTimeout; idle > 0 {
			timer := time.AfterFunc(idle, func() { idled.Store(true); cancel() })
			defer timer.Stop()
			in = readFunc(func(b []byte) (int, error) {
				n, err := sess.Read(b)
				if n > 0 {
					timer.Reset(idle)
				}
				return n, err
			})
		}
		w, h := pty.Window.Width, pty.Window.Height
		if w <= 0 || h <= 0 {
			// ssh -tt without a terminal reports no size.
			w, h = 80, 24
		}
		p := tea.NewProgram(m, append(wishtea.MakeOptions(sess), tea.WithContext(ctx), tea.WithWindowSize(w, h), tea.WithInput(in))...)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case w := <-winch:
					// The pty request's size comes here too: a client
					// that reported none keeps 80×24.
					if w.Width > 0 && w.Height > 0 {
						p.Send(tea.WindowSizeMsg{Width: w.Width, Height: w.Height})
					}
				}
			}
		}()
		if _, err := p.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
			s.log.Warn("ssh: session ended with an error", "actor", actor, "err", err)
		}
		p.Kill()
		switch {
		case expired.Load():
			ended = fmt.Sprintf("the maximum session time (%s) is over", s.cfg.MaxTimeout)
		case idled.Load():
			ended = fmt.Sprintf("no key pressed for %s", s.cfg.IdleTimeout)
		}
		if ended != "" {
			fmt.Fprintf(sess.Stderr(), "\r\nscstation: session closed: %s\r\n", ended)
		}
		sess.Exit(0)
	}
}

// readFunc is an io.Reader made of a function.
type readFunc func([]byte) (int, error)

func (f readFunc) Read(b []byte) (int, error) { return f(b) }

// noColor says whether the client sent NO_COLOR (ssh -o SendEnv=NO_COLOR).
func noColor(env []string) bool {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "NO_COLOR="); ok && v != "" {
			return true
		}
	}
	return false
}
