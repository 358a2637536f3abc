package virtual

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// fakeVPCD plays vpcd's side of the protocol.
type fakeVPCD struct {
	t    *testing.T
	conn net.Conn
}

func (f fakeVPCD) send(msg []byte) {
	f.t.Helper()
	// Length and payload in two writes, as vpcd 3.3 does.
	if _, err := f.conn.Write(binary.BigEndian.AppendUint16(nil, uint16(len(msg)))); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.conn.Write(msg); err != nil {
		f.t.Fatal(err)
	}
}

func (f fakeVPCD) recv() []byte {
	f.t.Helper()
	f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(f.conn, hdr[:]); err != nil {
		f.t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(f.conn, b); err != nil {
		f.t.Fatal(err)
	}
	return b
}

func accept(t *testing.T, ln net.Listener) fakeVPCD {
	t.Helper()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return fakeVPCD{t, conn}
}

func TestServeVPCDProtocolAndReconnect(t *testing.T) {
	// Find a free port, and leave it closed: the card starts first and
	// must keep retrying ("connection refused").
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	st, _ := NewState(1)
	c := New(st, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.ServeVPCD(ctx, addr, nil) }()
	time.Sleep(200 * time.Millisecond)

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	v := accept(t, ln)
	v.send([]byte{vpcdPowerOn})
	v.send([]byte{vpcdGetATR})
	if got := v.recv(); !bytes.Equal(got, c.ATR()) {
		t.Fatalf("ATR %x", got)
	}
	v.send(hx("00A4040005A000000308"))
	if got := v.recv(); !bytes.Equal(got, withSW(applicationTemplate, swOK)) {
		t.Fatalf("SELECT %x", got)
	}
	v.send(padVerify("123456"))
	if got := v.recv(); !bytes.Equal(got, []byte{0x90, 0x00}) {
		t.Fatalf("VERIFY %x", got)
	}
	v.send([]byte{vpcdReset}) // no reply; PIN state gone
	v.send(hx("00A4040005A000000308"))
	v.recv()
	v.send(hx("0020008000"))
	if got := v.recv(); !bytes.Equal(got, []byte{0x63, 0xC3}) {
		t.Fatalf("after reset %x", got)
	}
	v.send(nil) // a zero-length frame is an (empty) APDU
	if got := v.recv(); !bytes.Equal(got, []byte{0x67, 0x00}) {
		t.Fatalf("empty frame %x", got)
	}

	// pcscd goes away: the card reconnects.
	v.conn.Close()
	v = accept(t, ln)
	v.send([]byte{vpcdGetATR})
	if got := v.recv(); !bytes.Equal(got, c.ATR()) {
		t.Fatalf("ATR after reconnect %x", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeVPCD after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeVPCD did not return")
	}
	// The connection is closed: that is how the card leaves the reader.
	v.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := v.conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection not closed: %v", err)
	}

	// Close ends ServeVPCD with ErrClosed.
	go func() { done <- c.ServeVPCD(context.Background(), addr, nil) }()
	v = accept(t, ln)
	c.Close()
	select {
	case err := <-done:
		if err != ErrClosed {
			t.Fatalf("ServeVPCD after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeVPCD did not return after Close")
	}
}

func padVerify(pin string) []byte {
	return append(hx("0020008008"), padded8([]byte(pin))...)
}
