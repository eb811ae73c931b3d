package socks

import (
	"io"
	"net"
	"testing"
)

// BenchmarkSOCKS5Connect measures one SOCKS5 connection through the
// server with a direct TCP dialer: connect, method exchange, CONNECT to an
// echo server, one byte there and back, close. It is the proxy's share of
// a request's time to first byte.
func BenchmarkSOCKS5Connect(b *testing.B) {
	echo := netipAddrPort(b, echoServerB(b))
	_, addr := startServerB(b, Config{Dialer: &directDialer{}})
	msg := append(encodeGreeting(MethodNoAuth), encodeRequest5(CmdConnect, Target{IP: echo.Addr(), Port: echo.Port()})...)
	msg = append(msg, 'x')
	buf := make([]byte, 2+10+1)
	b.ResetTimer()
	for range b.N {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Write(msg)
		if _, err := io.ReadFull(c, buf); err != nil || buf[3] != Rep5Succeeded || buf[12] != 'x' {
			b.Fatalf("%x %v", buf, err)
		}
		c.Close()
	}
}

// BenchmarkSOCKS5Bulk streams through the server to a discarding server.
func BenchmarkSOCKS5Bulk(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	_, addr := startServerB(b, Config{Dialer: &directDialer{}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	c.Write(append(encodeGreeting(MethodNoAuth), encodeRequest5(CmdConnect, Target{IP: ap.Addr(), Port: ap.Port()})...))
	io.ReadFull(c, make([]byte, 12))
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDirectConnect is BenchmarkSOCKS5Connect's baseline: the same
// byte to the same echo server, without the proxy.
func BenchmarkDirectConnect(b *testing.B) {
	echo := echoServerB(b)
	buf := make([]byte, 1)
	for range b.N {
		c, err := net.Dial("tcp", echo)
		if err != nil {
			b.Fatal(err)
		}
		c.Write([]byte{'x'})
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
