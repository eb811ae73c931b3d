package circuittest

import (
	"net"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn reads and writes many datagrams per system call (recvmmsg,
// sendmmsg). ipv4.Message and ipv6.Message are the same type.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func newBatchConn(c *net.UDPConn) batchConn {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() != nil {
		return ipv4.NewPacketConn(c)
	}
	return ipv6.NewPacketConn(c)
}

// batchReader reads datagrams in batches into fixed buffers.
type batchReader struct {
	c  batchConn
	ms []ipv4.Message
}

func newBatchReader(c batchConn, n int) *batchReader {
	r := &batchReader{c: c, ms: make([]ipv4.Message, n)}
	for i := range r.ms {
		r.ms[i].Buffers = [][]byte{make([]byte, maxDatagram)}
	}
	return r
}

// read returns the next batch; each message's payload is
// ms[i].Buffers[0][:ms[i].N] and its sender ms[i].Addr. The buffers are
// reused by the next call.
func (r *batchReader) read() ([]ipv4.Message, error) {
	n, err := r.c.ReadBatch(r.ms, 0)
	if err != nil {
		return nil, err
	}
	return r.ms[:n], nil
}

// writeBatch sends every item to addr (nil on a connected socket). A
// datagram the kernel refuses (e.g. after an ICMP error) is skipped, as a
// network would lose it.
func writeBatch(c batchConn, batch []item, addr net.Addr) {
	ms := make([]ipv4.Message, len(batch))
	for i, it := range batch {
		ms[i] = ipv4.Message{Buffers: [][]byte{it.b}, Addr: addr}
	}
	for len(ms) > 0 {
		n, err := c.WriteBatch(ms, 0)
		if err != nil {
			n = 1
		}
		ms = ms[max(n, 1):]
	}
}
