package socks

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadHTTPConnect(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    RequestHTTP
		wantErr error
	}{
		{"plain", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", RequestHTTP{Target: tgtHost("example.com", 443)}, nil},
		{"bare LF", "CONNECT example.com:443 HTTP/1.0\n\n", RequestHTTP{Target: tgtHost("example.com", 443)}, nil},
		{"ipv4", "CONNECT 1.2.3.4:80 HTTP/1.1\r\n\r\n", RequestHTTP{Target: tgtIP("1.2.3.4", 80)}, nil},
		{"ipv6", "CONNECT [2001:db8::1]:80 HTTP/1.1\r\n\r\n", RequestHTTP{Target: tgtIP("2001:db8::1", 80)}, nil},
		{"auth", "CONNECT a.test:80 HTTP/1.1\r\nproxy-authorization: Basic YWxpY2U6czpz\r\n\r\n", RequestHTTP{Target: tgtHost("a.test", 80), User: "alice", Pass: "s:s", HasAuth: true}, nil},
		{"get", "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", RequestHTTP{}, ErrCommandNotSupported},
		{"no port", "CONNECT a.test HTTP/1.1\r\n\r\n", RequestHTTP{}, ErrMalformed},
		{"bad port", "CONNECT a.test:99999 HTTP/1.1\r\n\r\n", RequestHTTP{}, ErrMalformed},
		{"signed port", "CONNECT a.test:+80 HTTP/1.1\r\n\r\n", RequestHTTP{}, ErrMalformed},
		{"bad version", "CONNECT a.test:80 HTTP/2\r\n\r\n", RequestHTTP{}, ErrMalformed},
		{"bad line", "CONNECT  a.test:80 HTTP/1.1\r\n\r\n", RequestHTTP{}, ErrMalformed},
		{"bad header", "CONNECT a.test:80 HTTP/1.1\r\nnocolon\r\n\r\n", RequestHTTP{}, ErrMalformed},
		{"bad auth scheme", "CONNECT a.test:80 HTTP/1.1\r\nProxy-Authorization: Digest x\r\n\r\n", RequestHTTP{}, ErrMalformed},
		{"bad base64", "CONNECT a.test:80 HTTP/1.1\r\nProxy-Authorization: Basic !!\r\n\r\n", RequestHTTP{}, ErrMalformed},
		{"two auths", "CONNECT a.test:80 HTTP/1.1\r\nProxy-Authorization: Basic YTpi\r\nProxy-Authorization: Basic YTpi\r\n\r\n", RequestHTTP{}, ErrMalformed},
		{"truncated", "CONNECT a.test:80 HTTP/1.1\r\nHost: a", RequestHTTP{}, ErrMalformed},
		{"empty line first", "\r\n", RequestHTTP{}, ErrMalformed},
		{"long line", "CONNECT a.test:80 HTTP/1.1\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n", RequestHTTP{}, ErrMalformed},
		{"many lines", "CONNECT a.test:80 HTTP/1.1\r\n" + strings.Repeat("X: y\r\n", maxHTTPLines) + "\r\n", RequestHTTP{}, ErrMalformed},
		{"empty", "", RequestHTTP{}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadHTTPConnect(br([]byte(tt.in)))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadHTTPConnectLeavesData(t *testing.T) {
	r := br([]byte("CONNECT a.test:80 HTTP/1.1\r\n\r\nhello"))
	if _, err := ReadHTTPConnect(r); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "hello" {
		t.Fatalf("rest = %q", rest)
	}
}

func TestHTTPStatus(t *testing.T) {
	for err, want := range map[error]int{
		nil: 200, ErrNotAllowed: 403, ErrTTLExpired: 504, ErrMalformed: 400,
		ErrCommandNotSupported: 405, ErrConnRefused: 502, ErrHostUnreachable: 502, io.ErrClosedPipe: 502,
	} {
		if got := HTTPStatus(err); got != want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", err, got, want)
		}
	}
}
