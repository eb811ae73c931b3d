package socks

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Limits on an HTTP CONNECT request head. A line longer than the reader's
// buffer (4096 bytes for the server) is refused as well.
const (
	maxHTTPHeadBytes = 16 << 10
	maxHTTPLines     = 100
)

// RequestHTTP is a parsed HTTP CONNECT request.
type RequestHTTP struct {
	Target Target
	// User and Pass come from a "Proxy-Authorization: Basic" header;
	// HasAuth tells whether there was one.
	User, Pass string
	HasAuth    bool
}

// ReadHTTPConnect reads an HTTP/1.x request head from r, up to and
// including the empty line, and nothing after it:
//
//	CONNECT host:port HTTP/1.1
//	Proxy-Authorization: Basic base64(user:pass)   (optional)
//	<other headers, ignored>
//	<empty line>
//
// A method other than CONNECT yields ErrCommandNotSupported (after the
// whole head is read); a malformed head yields ErrMalformed.
func ReadHTTPConnect(r *bufio.Reader) (RequestHTTP, error) {
	lines, err := readHead(r)
	if err != nil {
		return RequestHTTP{}, err
	}
	method, target, err := parseRequestLine(lines[0])
	if err != nil {
		return RequestHTTP{}, err
	}
	var req RequestHTTP
	for _, l := range lines[1:] {
		if req, err = parseHeader(req, l); err != nil {
			return RequestHTTP{}, err
		}
	}
	if method != "CONNECT" {
		return RequestHTTP{}, fmt.Errorf("%w: HTTP method %q", ErrCommandNotSupported, method)
	}
	if req.Target, err = parseAuthority(target); err != nil {
		return RequestHTTP{}, err
	}
	return req, nil
}

// readHead returns the head's lines without line endings, excluding the
// empty line that ends it.
func readHead(r *bufio.Reader) ([]string, error) {
	var lines []string
	total := 0
	for {
		line, err := r.ReadSlice('\n')
		total += len(line)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, fmt.Errorf("%w: HTTP line too long", ErrMalformed)
		case err != nil && len(lines) == 0 && total == 0:
			return nil, err
		case err != nil:
			return nil, fmt.Errorf("%w: truncated HTTP head: %w", ErrMalformed, err)
		case total > maxHTTPHeadBytes || len(lines) == maxHTTPLines:
			return nil, fmt.Errorf("%w: HTTP head too large", ErrMalformed)
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
		if s == "" {
			if len(lines) == 0 {
				return nil, fmt.Errorf("%w: empty HTTP request line", ErrMalformed)
			}
			return lines, nil
		}
		lines = append(lines, s)
	}
}

func parseRequestLine(l string) (method, target string, err error) {
	parts := strings.Split(l, " ")
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") || parts[0] == "" {
		return "", "", fmt.Errorf("%w: bad HTTP request line", ErrMalformed)
	}
	return parts[0], parts[1], nil
}

func parseHeader(req RequestHTTP, l string) (RequestHTTP, error) {
	name, value, ok := strings.Cut(l, ":")
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return req, fmt.Errorf("%w: bad HTTP header line", ErrMalformed)
	}
	if !strings.EqualFold(name, "Proxy-Authorization") {
		return req, nil
	}
	if req.HasAuth {
		return req, fmt.Errorf("%w: repeated Proxy-Authorization", ErrMalformed)
	}
	user, pass, err := parseBasic(strings.TrimSpace(value))
	if err != nil {
		return req, err
	}
	req.User, req.Pass, req.HasAuth = user, pass, true
	return req, nil
}

func parseBasic(v string) (user, pass string, err error) {
	scheme, cred, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", fmt.Errorf("%w: Proxy-Authorization is not Basic", ErrMalformed)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", fmt.Errorf("%w: Proxy-Authorization: %w", ErrMalformed, err)
	}
	u, p, ok := bytes.Cut(raw, []byte(":"))
	if !ok {
		return "", "", fmt.Errorf("%w: Proxy-Authorization without ':'", ErrMalformed)
	}
	return string(u), string(p), nil
}

// parseAuthority reads the authority form "host:port" of a CONNECT target.
func parseAuthority(s string) (Target, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Target{}, fmt.Errorf("%w: CONNECT target: %w", ErrMalformed, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || port[0] == '+' {
		return Target{}, fmt.Errorf("%w: CONNECT port %q", ErrMalformed, port)
	}
	if len(host) > 255 {
		return Target{}, fmt.Errorf("%w: CONNECT host too long", ErrMalformed)
	}
	if err := checkHostname(host); err != nil {
		return Target{}, err
	}
	return targetFromName(host, uint16(p)), nil
}

// AppendHTTPResponse appends the response head for status.
func AppendHTTPResponse(b []byte, status int) []byte {
	if status == 200 {
		return append(b, "HTTP/1.1 200 Connection established\r\n\r\n"...)
	}
	b = fmt.Appendf(b, "HTTP/1.1 %d %s\r\n", status, httpStatusText(status))
	if status == 405 {
		b = append(b, "Allow: CONNECT\r\n"...)
	}
	return append(b, "Content-Length: 0\r\nConnection: close\r\n\r\n"...)
}

func httpStatusText(status int) string {
	switch status {
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 405:
		return "Method Not Allowed"
	case 504:
		return "Gateway Timeout"
	}
	return "Bad Gateway"
}
