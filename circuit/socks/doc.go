// Package socks is obol's local proxy front end: a SOCKS5 (RFC 1928, with
// RFC 1929 username/password), SOCKS4, SOCKS4a and HTTP CONNECT server
// that hands every CONNECT request to a Dialer, which opens the stream
// through a circuit.
//
// The server never resolves names: a domain name in a request reaches the
// Dialer as a name, to be resolved by the exit. Credentials are not
// checked; they are stream-isolation keys (see IsolationKey). Destinations
// and credentials are never logged.
//
// The wire formats are read by pure functions over an io.Reader
// (ReadGreeting, ReadUserPass, ReadRequest5, ReadRequest4,
// ReadHTTPConnect); Server adds sockets, deadlines and lifetimes. The
// behaviour is specified in specs/08-socks.md.
package socks
