package circuittest

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"
)

// DataServer serves /bytes/N on loopback: N pseudo-random bytes, the
// same every time (DataSum is their hash).
type DataServer struct {
	Port uint16
	srv  *http.Server
}

// NewDataServer starts a data server; Close stops it.
func NewDataServer() (*DataServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &DataServer{Port: uint16(ln.Addr().(*net.TCPAddr).Port),
		srv: &http.Server{Handler: http.HandlerFunc(ServeBytes), ReadHeaderTimeout: 10 * time.Second}}
	go s.srv.Serve(ln)
	return s, nil
}

// Addr is the server's host:port.
func (s *DataServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(int(s.Port)) }

// Close stops the server.
func (s *DataServer) Close() error { return s.srv.Close() }

// StartDataServer starts a data server until the test ends and returns
// its port and DataSum.
func StartDataServer(t TB) (port uint16, sum func(n int) [32]byte) {
	t.Helper()
	s, err := NewDataServer()
	if err != nil {
		t.Fatalf("data server: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Port, DataSum
}

// DataSum is the hash of the answer to /bytes/n.
func DataSum(n int) [32]byte {
	h := sha256.New()
	generate(n, h)
	return [32]byte(h.Sum(nil))
}

// ServeBytes answers /bytes/N with the N bytes.
func ServeBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Path[len("/bytes/"):])
	if err != nil || n < 0 {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(n))
	generate(n, w)
}

// generate writes the n bytes of /bytes/n to w.
func generate(n int, w io.Writer) {
	r := rand.NewChaCha8([32]byte{7})
	buf := make([]byte, 64<<10)
	for n > 0 {
		k := min(n, len(buf))
		r.Read(buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return // the client went away: do not generate the rest
		}
		n -= k
	}
}

// FetchBytes fetches /bytes/n over conn with HTTP/1.0 and returns the
// body's hash; onData, if set, is told of the body bytes as they arrive.
func FetchBytes(conn net.Conn, n int, onData func(int)) ([32]byte, error) {
	if _, err := fmt.Fprintf(conn, "GET /bytes/%d HTTP/1.0\r\nHost: x\r\n\r\n", n); err != nil {
		return [32]byte{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return [32]byte{}, err
	}
	defer resp.Body.Close()
	h := sha256.New()
	var w io.Writer = h
	if onData != nil {
		w = countingWriter{h, onData}
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

type countingWriter struct {
	w      io.Writer
	onData func(int)
}

func (c countingWriter) Write(b []byte) (int, error) {
	c.onData(len(b))
	return c.w.Write(b)
}
