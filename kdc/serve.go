package kdc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
)

// Listen binds the configured UDP and TCP addresses. With port 0 on both,
// TCP picks a free port and UDP takes the same one.
func (k *KDC) Listen() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return net.ErrClosed
	}
	if k.tcp != nil || k.udp != nil {
		return errors.New("kdc: already listening")
	}
	if k.cfg.TCP == "" && k.cfg.UDP == "" {
		return errors.New("kdc: no listen address")
	}
	for attempt := 0; ; attempt++ {
		tcp, udp, err := k.bind()
		if err == nil {
			k.tcp, k.udp = tcp, udp
			return nil
		}
		if attempt >= 5 || !samePortZero(k.cfg.TCP, k.cfg.UDP) {
			return err
		}
	}
}

func samePortZero(tcp, udp string) bool {
	th, tp, err1 := net.SplitHostPort(tcp)
	uh, up, err2 := net.SplitHostPort(udp)
	return err1 == nil && err2 == nil && th == uh && tp == "0" && up == "0"
}

func (k *KDC) bind() (net.Listener, net.PacketConn, error) {
	var tcp net.Listener
	var err error
	if k.cfg.TCP != "" {
		if tcp, err = net.Listen("tcp", k.cfg.TCP); err != nil {
			return nil, nil, fmt.Errorf("kdc: %w", err)
		}
	}
	udpAddr := k.cfg.UDP
	if tcp != nil && samePortZero(k.cfg.TCP, k.cfg.UDP) {
		host, _, _ := net.SplitHostPort(k.cfg.UDP)
		udpAddr = net.JoinHostPort(host, fmt.Sprint(tcp.Addr().(*net.TCPAddr).Port))
	}
	var udp net.PacketConn
	if udpAddr != "" {
		if udp, err = net.ListenPacket("udp", udpAddr); err != nil {
			if tcp != nil {
				tcp.Close()
			}
			return nil, nil, fmt.Errorf("kdc: %w", err)
		}
	}
	return tcp, udp, nil
}

// TCPAddr and UDPAddr are the bound addresses (nil before Listen or when
// that transport is off).
func (k *KDC) TCPAddr() net.Addr {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.tcp == nil {
		return nil
	}
	return k.tcp.Addr()
}

// UDPAddr is the bound UDP address.
func (k *KDC) UDPAddr() net.Addr {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.udp == nil {
		return nil
	}
	return k.udp.LocalAddr()
}

// Serve answers requests on the listeners until ctx ends or Close is
// called; it calls Listen first if needed. It returns nil after a Close
// or a cancelled ctx.
func (k *KDC) Serve(ctx context.Context) error {
	k.mu.Lock()
	bound := k.tcp != nil || k.udp != nil
	k.mu.Unlock()
	if !bound {
		if err := k.Listen(); err != nil {
			return err
		}
	}
	k.mu.Lock()
	tcp, udp := k.tcp, k.udp
	k.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
			k.Close()
		case <-k.done:
		}
	}()
	k.log.Info("kdc: serving", "tcp", addrString(tcp), "udp", packetAddrString(udp),
		"pkinit", k.cfg.Key != nil, "strong_mapping", k.cfg.StrongMapping.String())
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	if tcp != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- k.serveTCP(ctx, tcp) }()
	}
	if udp != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- k.serveUDP(ctx, udp) }()
	}
	wg.Wait()
	k.serving.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func addrString(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

func packetAddrString(p net.PacketConn) string {
	if p == nil {
		return ""
	}
	return p.LocalAddr().String()
}

// Close stops the listeners and open connections. Requests being processed
// finish first.
func (k *KDC) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	close(k.done)
	var errs []error
	if k.tcp != nil {
		errs = append(errs, k.tcp.Close())
	}
	if k.udp != nil {
		errs = append(errs, k.udp.Close())
	}
	for c := range k.conns {
		c.Close()
	}
	k.mu.Unlock()
	return errors.Join(errs...)
}

func (k *KDC) isClosed() bool {
	select {
	case <-k.done:
		return true
	default:
		return false
	}
}

// acquire takes a processing slot, waiting while MaxInFlight requests are
// being processed.
func (k *KDC) acquire(ctx context.Context) bool {
	select {
	case k.inflight <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	case <-k.done:
		return false
	}
}

func (k *KDC) release() { <-k.inflight }

func (k *KDC) serveUDP(ctx context.Context, pc net.PacketConn) error {
	buf := make([]byte, MaxMessageSize+1)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if k.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("kdc: udp: %w", err)
		}
		if n == 0 || n > MaxMessageSize {
			continue // dropped
		}
		if !k.acquire(ctx) {
			return nil
		}
		req := append([]byte(nil), buf[:n]...)
		k.serving.Add(1)
		go func() {
			defer k.serving.Done()
			defer k.release()
			reply := k.handle(ctx, req, addr.String())
			if len(reply) > maxUDPReply {
				reply = k.tooBig()
			}
			pc.WriteTo(reply, addr)
		}()
	}
}

// tooBig is KRB_ERR_RESPONSE_TOO_BIG: the client retries over TCP.
func (k *KDC) tooBig() []byte {
	now := k.now()
	ke := messages.KRBError{PVNO: 5, MsgType: msgtype.KRB_ERROR, STime: now.Truncate(time.Second), Susec: now.Nanosecond() / 1000,
		ErrorCode: ErrResponseTooBig, Realm: k.realm, SName: k.krbtgtName}
	b, _ := ke.Marshal()
	return b
}

func (k *KDC) serveTCP(ctx context.Context, l net.Listener) error {
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if k.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("kdc: tcp: %w", err)
		}
		delay = 0
		k.mu.Lock()
		if len(k.conns) >= k.cfg.MaxConnections || k.closed {
			k.mu.Unlock()
			k.log.Warn("kdc: too many connections, closing one", "peer", c.RemoteAddr().String())
			c.Close()
			continue
		}
		k.conns[c] = struct{}{}
		k.serving.Add(1)
		k.mu.Unlock()
		go func() {
			defer k.serving.Done()
			defer func() {
				k.mu.Lock()
				delete(k.conns, c)
				k.mu.Unlock()
				c.Close()
			}()
			k.serveConn(ctx, c)
		}()
	}
}

// serveConn answers requests on one TCP connection (RFC 4120 §7.2.2: a
// 4-byte big-endian length, then the message), one at a time, until the
// client closes it or is idle for ReadTimeout.
func (k *KDC) serveConn(ctx context.Context, c net.Conn) {
	peer := c.RemoteAddr().String()
	var hdr [4]byte
	for {
		c.SetReadDeadline(time.Now().Add(k.cfg.ReadTimeout))
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n&0x80000000 != 0 {
			// The high bit asks for extensions (RFC 5021), which we do
			// not have: four zero bytes, then close.
			c.SetWriteDeadline(time.Now().Add(k.cfg.ReadTimeout))
			c.Write([]byte{0, 0, 0, 0})
			return
		}
		if n == 0 || n > MaxMessageSize {
			k.log.Warn("kdc: refused: TCP message length out of bounds", "peer", peer, "length", n)
			k.writeTCP(c, k.errorReply(nil, refuse(ErrFieldTooLong, "message of %d bytes is too long", n)))
			return
		}
		req := make([]byte, n)
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		if !k.acquire(ctx) {
			return
		}
		reply := k.handle(ctx, req, peer)
		k.release()
		if !k.writeTCP(c, reply) {
			return
		}
	}
}

func (k *KDC) writeTCP(c net.Conn, reply []byte) bool {
	c.SetWriteDeadline(time.Now().Add(k.cfg.ReadTimeout))
	out := make([]byte, 4+len(reply))
	binary.BigEndian.PutUint32(out, uint32(len(reply)))
	copy(out[4:], reply)
	_, err := c.Write(out)
	return err == nil
}
