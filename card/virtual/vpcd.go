package virtual

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultVPCDAddr is vpcd's port for the first virtual reader slot.
const DefaultVPCDAddr = "127.0.0.1:35963"

// vpcd control messages.
const (
	vpcdPowerOff = 0x00
	vpcdPowerOn  = 0x01
	vpcdReset    = 0x02
	vpcdGetATR   = 0x04
)

// ServeVPCD inserts the card into a vsmartcard virtual reader: it connects
// to vpcd at addr (DefaultVPCDAddr when empty) and answers its requests
// until ctx is cancelled, when it returns nil. A refused or dropped
// connection (pcscd not yet started, restarted) is retried with backoff.
// It returns ErrClosed when the card is closed. Closing the connection is
// how the card leaves the reader.
func (c *Card) ServeVPCD(ctx context.Context, addr string, log *slog.Logger) error {
	if addr == "" {
		addr = DefaultVPCDAddr
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("vpcd", addr)
	const minBackoff, maxBackoff = 50 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	var lastErr string
	for {
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-c.done:
			return ErrClosed
		default:
		}
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			log.Info("card inserted into virtual reader")
			lastErr = ""
			err = c.serveConn(ctx, conn.(*net.TCPConn), log)
			c.Reset() // out of the reader: no power
			switch {
			case ctx.Err() != nil:
				log.Info("card removed from virtual reader")
				return nil
			case errors.Is(err, ErrClosed):
				log.Info("card closed, removed from virtual reader")
				return ErrClosed
			}
			log.Warn("virtual reader connection lost, reconnecting", "err", err)
			backoff = minBackoff
		} else if msg := err.Error(); msg != lastErr {
			// Logged once per distinct error, not on every retry.
			log.Warn("cannot reach vpcd, retrying", "err", err)
			lastErr = msg
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-c.done:
			t.Stop()
			return ErrClosed
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// serveConn answers vpcd on one connection until it fails or ctx ends.
func (c *Card) serveConn(ctx context.Context, conn *net.TCPConn, log *slog.Logger) error {
	stop := make(chan struct{})
	defer close(stop)
	closedByCard := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-c.done:
			close(closedByCard)
		case <-stop:
		}
		conn.Close()
	}()
	defer conn.Close()
	conn.SetNoDelay(true)
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	setQuickAck := func() {
		// TCP_QUICKACK before each read: vpcd writes a frame's length and
		// payload separately, and with delayed ACKs on our side its
		// Nagle-held second write waits ~40 ms.
		if c.noQuickAck.Load() {
			return
		}
		raw.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
		})
	}
	var hdr [2]byte
	buf := make([]byte, 0xFFFF)
	out := make([]byte, 0, 2+0xFFFF)
	for {
		setQuickAck()
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return c.connErr(closedByCard, err)
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		msg := buf[:n]
		setQuickAck()
		if _, err := io.ReadFull(conn, msg); err != nil {
			return c.connErr(closedByCard, err)
		}
		if n == 1 {
			log.Debug("vpcd control", "code", msg[0])
		}
		var reply []byte
		switch {
		case n == 1 && msg[0] == vpcdPowerOff, n == 1 && msg[0] == vpcdPowerOn, n == 1 && msg[0] == vpcdReset:
			c.Reset()
			continue
		case n == 1 && msg[0] == vpcdGetATR:
			reply = c.ATR()
		case n == 1:
			continue // unknown control message: no reply expected
		default:
			r, err := c.Transmit(msg)
			if err != nil {
				return err
			}
			reply = r
			if log.Enabled(ctx, slog.LevelDebug) && len(msg) >= 4 && len(r) >= 2 {
				// Header and status only: command data may hold a PIN.
				log.Debug("apdu", "cmd", fmt.Sprintf("%X", msg[:4]), "lc", len(msg)-4,
					"sw", fmt.Sprintf("%X", r[len(r)-2:]), "resp", len(r)-2)
			}
		}
		if len(reply) > 0xFFFF {
			return fmt.Errorf("virtual: response of %d bytes does not fit a vpcd frame", len(reply))
		}
		out = binary.BigEndian.AppendUint16(out[:0], uint16(len(reply)))
		out = append(out, reply...)
		if _, err := conn.Write(out); err != nil {
			return c.connErr(closedByCard, err)
		}
	}
}

func (c *Card) connErr(closedByCard chan struct{}, err error) error {
	select {
	case <-closedByCard:
		return ErrClosed
	default:
		return err
	}
}
