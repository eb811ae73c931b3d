// Package netemu emulates a wide-area network on one Linux host for
// measuring obol's processes as processes: every node lives in a network
// namespace of its own, reached through a TUN device whose other end the
// Forwarder holds. The Forwarder reads each IPv4 packet a node sends,
// finds the node that owns the destination address and writes the packet
// to that node's device after the link's one-way delay. Each directed
// link (from one node to another) delays by a constant and keeps its
// packets in order, so TCP's slow start and QUIC's congestion control see
// a real round trip; nothing is lost unless a link's queue overflows,
// which the Forwarder counts.
//
// The kernel's netem would do the same per link, but it is not always
// there; TUN devices and namespaces are. Namespaces, devices and the
// Forwarder's goroutines are the caller's to end: Net.Close removes
// everything Create made.
package netemu
