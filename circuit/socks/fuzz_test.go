package socks

import (
	"bytes"
	"testing"
)

func FuzzReadGreeting(f *testing.F) {
	f.Add(encodeGreeting(0))
	f.Add(encodeGreeting(0, 2))
	f.Add([]byte{5, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadGreeting(bytes.NewReader(in))
		if err != nil {
			return
		}
		again, err := ReadGreeting(bytes.NewReader(encodeGreeting(m...)))
		if err != nil || !bytes.Equal(m, again) {
			t.Fatalf("round trip %x: %x, %v", m, again, err)
		}
		_ = ChooseMethod(m)
	})
}

func FuzzReadUserPass(f *testing.F) {
	f.Add(encodeUserPass("alice", "secret"))
	f.Add(encodeUserPass("", ""))
	f.Fuzz(func(t *testing.T, in []byte) {
		u, p, err := ReadUserPass(bytes.NewReader(in))
		if err != nil {
			return
		}
		u2, p2, err := ReadUserPass(bytes.NewReader(encodeUserPass(u, p)))
		if err != nil || u != u2 || p != p2 {
			t.Fatalf("round trip %q %q: %q %q %v", u, p, u2, p2, err)
		}
	})
}

func FuzzReadRequest5(f *testing.F) {
	f.Add(encodeRequest5(CmdConnect, tgtIP("93.184.216.34", 80)))
	f.Add(encodeRequest5(CmdConnect, tgtIP("2001:db8::1", 443)))
	f.Add(encodeRequest5(CmdConnect, tgtHost("example.com", 443)))
	f.Add(encodeRequest5(CmdUDPAssociate, tgtHost("127.0.0.1", 1)))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ReadRequest5(bytes.NewReader(in))
		if err != nil {
			return
		}
		if r.Target.IP.IsValid() == (r.Target.Host != "") {
			t.Fatalf("target %+v: want exactly one of IP and Host", r.Target)
		}
		again, err := ReadRequest5(bytes.NewReader(encodeRequest5(r.Cmd, r.Target)))
		if err != nil || again != r {
			t.Fatalf("round trip %+v: %+v, %v", r, again, err)
		}
	})
}

func FuzzReadRequest4(f *testing.F) {
	f.Add(encodeRequest4(CmdConnect, tgtIP("93.184.216.34", 80), ""))
	f.Add(encodeRequest4(CmdConnect, tgtHost("example.com", 443), "bob"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ReadRequest4(br(in))
		if err != nil {
			return
		}
		if r.Target.IP.IsValid() == (r.Target.Host != "") {
			t.Fatalf("target %+v: want exactly one of IP and Host", r.Target)
		}
		if !r.Is4a || r.Target.Host == "" {
			return // an IP literal in a 4a request re-encodes as SOCKS4
		}
		again, err := ReadRequest4(br(encodeRequest4(r.Cmd, r.Target, r.UserID)))
		if err != nil || again != r {
			t.Fatalf("round trip %+v: %+v, %v", r, again, err)
		}
	})
}

func FuzzReadHTTPConnect(f *testing.F) {
	f.Add(encodeHTTPConnect(tgtHost("example.com", 443), "", "", false))
	f.Add(encodeHTTPConnect(tgtIP("2001:db8::1", 80), "alice", "pw", true))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ReadHTTPConnect(br(in))
		if err != nil {
			return
		}
		again, err := ReadHTTPConnect(br(encodeHTTPConnect(r.Target, r.User, r.Pass, r.HasAuth)))
		if err != nil || again != r {
			t.Fatalf("round trip %+v: %+v, %v", r, again, err)
		}
	})
}
