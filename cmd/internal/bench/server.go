package bench

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"
)

// server is the local HTTP server every scenario fetches from: /bytes/N
// answers N pseudo-random bytes.
type server struct {
	srv  *http.Server
	port uint16
}

func startServer() (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{port: uint16(ln.Addr().(*net.TCPAddr).Port)}
	s.srv = &http.Server{Handler: http.HandlerFunc(serveBytes), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(int(s.port)) }

func (s *server) Close() error { return s.srv.Close() }

func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Path[len("/bytes/"):])
	if err != nil || n < 0 {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(n))
	rng := rand.NewChaCha8([32]byte{7})
	buf := make([]byte, 64<<10)
	for n > 0 {
		k := min(n, len(buf))
		rng.Read(buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return
		}
		n -= k
	}
}

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
