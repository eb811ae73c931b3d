package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
)

// WebAddr is the address of the simulated web server that exits connect
// to. It is public, so exits' real policies accept it.
const WebAddr = "93.184.216.34:80"

// web is the simulated internet behind the exits: an exit's TCP connect
// to WebAddr reaches an in-memory server that answers "GET <n>\n" with n
// bytes. The exit-to-server leg is not on the simulated links: in the
// real network it is the exit's own fast connection.
type web struct {
	served atomic.Int64 // bytes sent to exits
}

var errNoRoute = errors.New("sim: no route to host")

// dial is every exit router's Config.Dial.
func (w *web) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != WebAddr || !strings.HasPrefix(network, "tcp") {
		return nil, fmt.Errorf("%w %s", errNoRoute, addr)
	}
	exit, server := net.Pipe()
	go w.serve(server)
	return exit, nil
}

// maxResponse bounds a response.
const maxResponse = 64 << 20

func (w *web) serve(c net.Conn) {
	defer c.Close()
	line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
	if err != nil {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "GET ")))
	if err != nil || n < 0 || n > maxResponse {
		return
	}
	buf := make([]byte, 16<<10)
	for n > 0 {
		k, err := c.Write(buf[:min(n, len(buf))])
		w.served.Add(int64(k))
		if err != nil {
			return
		}
		n -= k
	}
}

// fetch asks the server, through conn, for n bytes and reads them all.
func fetch(conn net.Conn, n int) error {
	if _, err := fmt.Fprintf(conn, "GET %d\n", n); err != nil {
		return err
	}
	got, err := io.Copy(io.Discard, conn)
	if err != nil {
		return err
	}
	if got != int64(n) {
		return fmt.Errorf("sim: fetched %d bytes of %d", got, n)
	}
	return nil
}
