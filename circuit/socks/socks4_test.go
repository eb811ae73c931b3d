package socks

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadRequest4(t *testing.T) {
	long := strings.Repeat("x", maxField4)
	tests := []struct {
		name    string
		in      []byte
		want    Request4
		wantErr error
	}{
		{"socks4", encodeRequest4(CmdConnect, tgtIP("93.184.216.34", 80), ""), Request4{CmdConnect, tgtIP("93.184.216.34", 80), "", false}, nil},
		{"socks4 user", encodeRequest4(CmdConnect, tgtIP("1.2.3.4", 80), "bob"), Request4{CmdConnect, tgtIP("1.2.3.4", 80), "bob", false}, nil},
		{"socks4a", encodeRequest4(CmdConnect, tgtHost("example.com", 443), "bob"), Request4{CmdConnect, tgtHost("example.com", 443), "bob", true}, nil},
		{"socks4a literal", encodeRequest4(CmdConnect, tgtHost("::1", 443), ""), Request4{CmdConnect, tgtIP("::1", 443), "", true}, nil},
		{"socks4 0.0.0.0 is not 4a", encodeRequest4(CmdConnect, tgtIP("0.0.0.0", 80), ""), Request4{CmdConnect, tgtIP("0.0.0.0", 80), "", false}, nil},
		{"long fields", encodeRequest4(CmdConnect, tgtHost(long, 1), long), Request4{CmdConnect, tgtHost(long, 1), long, true}, nil},
		{"user too long", encodeRequest4(CmdConnect, tgtIP("1.2.3.4", 80), long+"x"), Request4{}, ErrMalformed},
		{"host too long", encodeRequest4(CmdConnect, tgtHost(long+"x", 80), ""), Request4{}, ErrMalformed},
		{"empty 4a host", []byte{4, 1, 0, 80, 0, 0, 0, 1, 0, 0}, Request4{}, ErrMalformed},
		{"no nul", []byte{4, 1, 0, 80, 1, 2, 3, 4, 'a'}, Request4{}, ErrMalformed},
		{"4a no host nul", []byte{4, 1, 0, 80, 0, 0, 0, 1, 0, 'a'}, Request4{}, ErrMalformed},
		{"truncated", []byte{4, 1, 0}, Request4{}, ErrMalformed},
		{"bad version", []byte{5, 1, 0, 80, 1, 2, 3, 4, 0}, Request4{}, ErrMalformed},
		{"empty", nil, Request4{}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadRequest4(br(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
