package bench

import (
	"bufio"
	"fmt"
	"io"
	"net/http"

	"github.com/obolnet/obol/circuit/circuittest"
)

// server is the local HTTP server every scenario fetches from: /bytes/N
// answers N pseudo-random bytes.
type server struct {
	*circuittest.DataServer
	port uint16
}

func startServer() (*server, error) {
	s, err := circuittest.NewDataServer()
	if err != nil {
		return nil, err
	}
	return &server{DataServer: s, port: s.Port}, nil
}

func (s *server) addr() string { return s.Addr() }

// request is the HTTP/1.0 request for n bytes.
func request(n int) []byte {
	return fmt.Appendf(nil, "GET /bytes/%d HTTP/1.0\r\nHost: bench\r\n\r\n", n)
}

// firstByte waits for the first byte of the answer.
func firstByte(r io.Reader) error {
	var one [1]byte
	_, err := io.ReadFull(r, one[:])
	return err
}

// fetch sends a request for n bytes on rw and reads the whole answer,
// checking its length.
func fetch(rw io.ReadWriter, n int) error {
	if _, err := rw.Write(request(n)); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(rw, 64<<10), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if got != int64(n) {
		return fmt.Errorf("bench: answer of %d bytes, want %d", got, n)
	}
	return nil
}
