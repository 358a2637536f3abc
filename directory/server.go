package directory

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Limits are the server's hard limits; clients cannot raise them. Zero
// fields take the defaults.
type Limits struct {
	// MaxConns bounds open connections (default 256). Past it, a new
	// connection gets a notice of disconnection (busy) and is closed.
	MaxConns int
	// MaxOpsPerConn bounds operations in progress on one connection
	// (default 16); more are answered busy.
	MaxOpsPerConn int
	// MaxPDU bounds one request in bytes (default and ceiling 1 MiB, the
	// asn1-ber limit this package sets).
	MaxPDU int
	// MaxElements bounds the BER elements of one request (default 16384),
	// which bounds the memory its decoding takes.
	MaxElements int
	// MaxSizeLimit bounds the entries of a search without paging (default
	// 1000); a paged search returns at most MaxPageSize per page (default
	// 1000, as Active Directory) and may walk the whole directory.
	MaxSizeLimit int
	MaxPageSize  int
	// MaxTimeLimit bounds one operation (default 60 s).
	MaxTimeLimit time.Duration
	// IdleTimeout closes a connection with no request for this long
	// (default 15 min); ReadTimeout bounds the rest of a request once it
	// has begun (default 30 s); WriteTimeout bounds one write (30 s).
	IdleTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
}

func (l *Limits) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxConns, 256)
	def(&l.MaxOpsPerConn, 16)
	def(&l.MaxPDU, DefaultMaxPDU)
	if int64(l.MaxPDU) > ber.MaxPacketLengthBytes {
		l.MaxPDU = int(ber.MaxPacketLengthBytes)
	}
	def(&l.MaxElements, 16384)
	def(&l.MaxSizeLimit, 1000)
	def(&l.MaxPageSize, 1000)
	defd(&l.MaxTimeLimit, 60*time.Second)
	defd(&l.IdleTimeout, 15*time.Minute)
	defd(&l.ReadTimeout, 30*time.Second)
	defd(&l.WriteTimeout, 30*time.Second)
}

// Config configures a Server.
type Config struct {
	Store *Store
	// TLSConfig enables LDAPS (ServeTLS) and StartTLS; nil turns both off.
	// The station passes one with a certificate from its CA.
	TLSConfig *tls.Config
	Limits    Limits
	// Log receives connection and operation events; never passwords.
	Log *slog.Logger
	// AllowInsecureBind permits simple binds and password changes in the
	// clear from peers that are not on loopback. By default they need TLS.
	AllowInsecureBind bool
	// ClientCAs turns on SASL EXTERNAL: TLS handshakes ask for (but do
	// not require) a client certificate, which must chain to one of these
	// CAs (the station CA), and an EXTERNAL bind maps it to a user
	// (Store.CertificateUser).
	ClientCAs *x509.CertPool
	// Revocation, when set, is asked about a client certificate before an
	// EXTERNAL bind accepts it; an error refuses the bind too.
	Revocation func(*x509.Certificate) (revoked bool, reason string, err error)
	// Realm is the Kerberos realm of id-pkinit-san names in client
	// certificates (default: the domain in upper case).
	Realm string
}

// Server is an LDAP v3 server over a Store.
type Server struct {
	store  *Store
	tls    *tls.Config
	limits Limits
	log    *slog.Logger
	insec  bool
	secret [32]byte // keys paged-results cookies
	// external: SASL EXTERNAL is offered (TLS with client CAs).
	external bool
	revoked  func(*x509.Certificate) (bool, string, error)
	realm    string

	mu        sync.Mutex
	listeners map[net.Listener]bool
	conns     map[*conn]bool
	closed    bool
	nconns    atomic.Int64
	wg        sync.WaitGroup
}

// NewServer makes a server; it listens once Serve or ServeTLS is called.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("directory: server without a store")
	}
	s := &Server{store: cfg.Store, limits: cfg.Limits, log: cfg.Log, insec: cfg.AllowInsecureBind,
		revoked: cfg.Revocation, realm: cfg.Realm,
		listeners: map[net.Listener]bool{}, conns: map[*conn]bool{}}
	s.limits.defaults()
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.TLSConfig != nil {
		s.tls = cfg.TLSConfig.Clone()
		if s.tls.MinVersion < tls.VersionTLS12 {
			s.tls.MinVersion = tls.VersionTLS12
		}
		if cfg.ClientCAs != nil {
			// Asked for, not required: password binds work without one.
			s.tls.ClientCAs = cfg.ClientCAs
			s.tls.ClientAuth = tls.VerifyClientCertIfGiven
			s.external = true
		}
	}
	if _, err := rand.Read(s.secret[:]); err != nil {
		return nil, err
	}
	return s, nil
}

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("directory: server closed")

// Serve accepts plain LDAP connections (StartTLS available when the server
// has a TLS configuration) until the listener fails or the server closes.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts LDAPS connections.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.tls == nil {
		return errors.New("directory: LDAPS needs a TLS configuration")
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, useTLS bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(nc, useTLS)
		if c == nil {
			continue
		}
		go c.serve()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) newConn(nc net.Conn, useTLS bool) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		nc.Close()
		return nil
	}
	if len(s.conns) >= s.limits.MaxConns {
		s.log.Warn("LDAP connection refused: too many connections", "remote", nc.RemoteAddr().String(), "max", s.limits.MaxConns)
		go func() {
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			nc.Write(noticeOfDisconnection(ResultBusy, "too many connections"))
			nc.Close()
		}()
		return nil
	}
	c := &conn{srv: s, raw: nc, nc: nc, ops: map[int64]context.CancelFunc{}, startTLS: useTLS, work: make(chan func()), done: make(chan struct{})}
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		c.loopback = true
	} else if _, ok := nc.RemoteAddr().(*net.UnixAddr); ok {
		c.loopback = true
	}
	s.conns[c] = true
	s.wg.Add(1)
	return c
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	if s.conns[c] {
		delete(s.conns, c)
		s.wg.Done()
	}
	s.mu.Unlock()
}

// Close stops the listeners and closes every connection at once, telling
// clients the server is unavailable.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.abort(ResultUnavailable, "the server is shutting down")
	}
	return nil
}

// Shutdown stops accepting, lets operations in progress finish (until ctx
// ends), then closes every connection.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for _, c := range conns {
			c.opsWG.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	s.Close()
	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ---- connections ---------------------------------------------------------------

type conn struct {
	srv      *Server
	loopback bool
	startTLS bool // LDAPS: handshake first

	// raw is the accepted connection; nc is raw or TLS over it. The
	// reader goroutine owns br and replaces nc (StartTLS) under wmu.
	raw net.Conn
	nc  net.Conn
	br  *bufio.Reader
	wmu sync.Mutex
	bw  *bufio.Writer

	// work hands operations to an idle worker (idle counts them, under
	// mu); done closes with the connection.
	work chan func()
	done chan struct{}
	idle int

	mu     sync.Mutex
	bindDN string
	tlsOn  bool
	// peer is the client certificate TLS verified (nil: none).
	peer   *x509.Certificate
	ops    map[int64]context.CancelFunc
	closed bool
	opsWG  sync.WaitGroup

	// testHookBusy, set only by tests, is called when an operation is
	// refused for MaxOpsPerConn, before the refusal is sent.
	testHookBusy func()
}

func (c *conn) identity() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bindDN, c.tlsOn
}

// verifiedPeer is the client certificate of a TLS connection, if it
// presented one and it verified.
func verifiedPeer(tc *tls.Conn) *x509.Certificate {
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return nil
	}
	return st.VerifiedChains[0][0]
}

func (c *conn) serve() {
	defer c.srv.removeConn(c)
	defer c.close()
	defer func() {
		if r := recover(); r != nil {
			c.srv.log.Error("LDAP connection handler panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	l := c.srv.limits
	if c.startTLS {
		tc := tls.Server(c.nc, c.srv.tls)
		tc.SetDeadline(time.Now().Add(l.ReadTimeout))
		if err := tc.Handshake(); err != nil {
			c.srv.log.Debug("LDAPS handshake failed", "remote", c.nc.RemoteAddr().String(), "err", err)
			return
		}
		tc.SetDeadline(time.Time{})
		c.mu.Lock()
		c.tlsOn = true
		c.peer = verifiedPeer(tc)
		c.mu.Unlock()
		c.wmu.Lock()
		c.nc = tc
		c.wmu.Unlock()
	}
	c.wmu.Lock()
	c.br = bufio.NewReaderSize(c.nc, 16<<10)
	c.bw = bufio.NewWriterSize(c.nc, 32<<10)
	c.wmu.Unlock()
	for {
		c.nc.SetReadDeadline(time.Now().Add(l.IdleTimeout))
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		c.nc.SetReadDeadline(time.Now().Add(l.ReadTimeout))
		pdu, err := readPDU(c.br, l.MaxPDU)
		if err != nil {
			if errors.Is(err, errMalformed) || errors.Is(err, errTooLarge) {
				c.srv.log.Info("LDAP protocol error, disconnecting", "remote", c.nc.RemoteAddr().String(), "err", err)
				c.disconnect(ResultProtocolError, err.Error())
			}
			return
		}
		m, err := decodeRequest(pdu, l.MaxElements)
		if err != nil {
			c.srv.log.Info("LDAP protocol error, disconnecting", "remote", c.nc.RemoteAddr().String(), "err", err)
			c.disconnect(ResultProtocolError, err.Error())
			return
		}
		if !c.dispatch(m) {
			return
		}
	}
}

// dispatch runs one request; false ends the connection.
func (c *conn) dispatch(m *message) bool {
	switch r := m.req.(type) {
	case unbindRequest:
		c.cancelAll()
		return false
	case *abandonRequest:
		c.mu.Lock()
		if cancel := c.ops[r.id]; cancel != nil {
			cancel()
		}
		c.mu.Unlock()
		return true
	case *bindRequest:
		// RFC 4511 §4.2.1: operations in progress finish first.
		c.opsWG.Wait()
		c.runInline(m, func(ctx context.Context) { c.handleBind(m, r) })
		return true
	case *extendedRequest:
		if r.oid == oidStartTLS {
			return c.handleStartTLS(m)
		}
	}
	c.mu.Lock()
	if _, dup := c.ops[m.id]; dup {
		c.mu.Unlock()
		c.disconnect(ResultProtocolError, "message ID already in use")
		return false
	}
	if len(c.ops) >= c.srv.limits.MaxOpsPerConn {
		c.mu.Unlock()
		if c.testHookBusy != nil {
			c.testHookBusy()
		}
		c.send(resultMessage(m, ResultBusy, "", "too many operations in progress on this connection"), true)
		return true
	}
	oc := newOpCtx(c.srv.limits.MaxTimeLimit)
	ctx, cancel := context.Context(oc), oc.cancel
	c.ops[m.id] = cancel
	c.opsWG.Add(1)
	run := func() {
		defer c.opsWG.Done()
		defer func() {
			c.mu.Lock()
			delete(c.ops, m.id)
			c.mu.Unlock()
			cancel()
		}()
		defer func() {
			if rec := recover(); rec != nil {
				c.srv.log.Error("LDAP operation panicked", "op", opNames[m.op], "panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
				c.send(resultMessage(m, ResultOperationsError, "", "internal error"), true)
			}
		}()
		c.handle(ctx, m)
	}
	// An idle worker of this connection takes it, else a new one.
	if c.idle > 0 {
		c.idle--
		c.mu.Unlock()
		select {
		case c.work <- run:
		case <-c.done:
			go run()
		}
	} else {
		c.mu.Unlock()
		go c.worker(run)
	}
	return true
}

// worker runs operations of one connection. Between operations one worker
// stays, waiting for the next: reusing it spares starting a goroutine and
// growing its stack for every request.
func (c *conn) worker(run func()) {
	for {
		run()
		c.mu.Lock()
		if c.closed || c.idle > 0 {
			c.mu.Unlock()
			return
		}
		c.idle++
		c.mu.Unlock()
		select {
		case run = <-c.work:
		case <-c.done:
			return
		}
	}
}

// opCtx is an operation's context: cancelled by an abandon or the end of
// its connection, and past its deadline after the time limit. Unlike
// context.WithTimeout it needs no timer, unless someone waits on Done.
type opCtx struct {
	deadline time.Time
	canceled atomic.Bool
	mu       sync.Mutex
	done     chan struct{}
	timer    *time.Timer
}

func newOpCtx(limit time.Duration) *opCtx { return &opCtx{deadline: time.Now().Add(limit)} }

func (c *opCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *opCtx) Value(any) any { return nil }

func (c *opCtx) Err() error {
	if c.canceled.Load() {
		return context.Canceled
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *opCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.canceled.Load() {
			close(c.done)
		} else {
			c.timer = time.AfterFunc(time.Until(c.deadline), c.closeDone)
		}
	}
	return c.done
}

func (c *opCtx) cancel() {
	if c.canceled.CompareAndSwap(false, true) {
		c.closeDone()
	}
}

func (c *opCtx) closeDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		select {
		case <-c.done:
		default:
			close(c.done)
		}
	}
	if c.timer != nil {
		c.timer.Stop()
	}
}

// runInline runs a handler on the reader goroutine with panic protection.
func (c *conn) runInline(m *message, fn func(ctx context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.limits.MaxTimeLimit)
	defer cancel()
	defer func() {
		if rec := recover(); rec != nil {
			c.srv.log.Error("LDAP operation panicked", "op", opNames[m.op], "panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
			c.send(resultMessage(m, ResultOperationsError, "", "internal error"), true)
		}
	}()
	fn(ctx)
}

func (c *conn) cancelAll() {
	c.mu.Lock()
	for _, cancel := range c.ops {
		cancel()
	}
	c.mu.Unlock()
}

// send writes one message; flush pushes it (and anything buffered) out.
func (c *conn) send(b []byte, flush bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.bw == nil {
		return io.ErrClosedPipe
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.srv.limits.WriteTimeout))
	if _, err := c.bw.Write(b); err != nil {
		c.raw.Close()
		return err
	}
	if flush {
		if err := c.bw.Flush(); err != nil {
			c.raw.Close()
			return err
		}
	}
	return nil
}

// disconnect sends a notice of disconnection and closes the connection.
func (c *conn) disconnect(code ResultCode, msg string) {
	c.wmu.Lock()
	c.writeNotice(code, msg)
	c.wmu.Unlock()
	c.close()
}

// abort is disconnect for shutdown: it does not wait for a writer stuck on
// a peer that does not read.
func (c *conn) abort(code ResultCode, msg string) {
	if c.wmu.TryLock() {
		c.writeNotice(code, msg)
		c.wmu.Unlock()
	}
	c.close()
}

// writeNotice writes a notice of disconnection; the caller holds wmu.
func (c *conn) writeNotice(code ResultCode, msg string) {
	if c.bw == nil {
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.bw.Write(noticeOfDisconnection(code, msg))
	c.bw.Flush()
}

func (c *conn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.done)
	for _, cancel := range c.ops {
		cancel()
	}
	c.mu.Unlock()
	c.raw.Close()
}

const (
	oidStartTLS       = "1.3.6.1.4.1.1466.20037"
	oidWhoAmI         = "1.3.6.1.4.1.4203.1.11.3"
	oidPasswordModify = "1.3.6.1.4.1.4203.1.11.1"
	oidNoticeOfDisc   = "1.3.6.1.4.1.1466.20036"
	oidPagedResults   = "1.2.840.113556.1.4.319"
	oidManageDsaIT    = "2.16.840.1.113730.3.4.2"
)

func noticeOfDisconnection(code ResultCode, msg string) []byte {
	r := &response{}
	r.msg = r.begin(tagSequence)
	r.integer(tagInteger, 0)
	r.op = r.begin(appTag(opExtendedResponse))
	r.result(code, "", msg)
	r.str(0x8a, oidNoticeOfDisc)
	return r.finish()
}

// responseOp is the response tag for a request.
func responseOp(op int) int {
	switch op {
	case opBindRequest:
		return opBindResponse
	case opSearchRequest:
		return opSearchDone
	case opModifyRequest:
		return opModifyResponse
	case opAddRequest:
		return opAddResponse
	case opDelRequest:
		return opDelResponse
	case opModDNRequest:
		return opModDNResponse
	case opCompareRequest:
		return opCompareResponse
	}
	return opExtendedResponse
}

func resultMessage(m *message, code ResultCode, matched, diag string, controls ...[]byte) []byte {
	r := newResponse(m.id, responseOp(m.op))
	r.result(code, matched, diag)
	return r.finish(controls...)
}

// errorResult maps an error to what goes on the wire, keeping internal
// details out of the reply (they go to the log).
func (c *conn) errorResult(m *message, err error) (ResultCode, string, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Matched, e.Message
	}
	c.srv.log.Error("LDAP operation failed", "op", opNames[m.op], "err", err)
	return ResultOperationsError, "", "internal error"
}
