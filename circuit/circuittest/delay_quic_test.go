package circuittest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// selfSignedTLS returns a server config with a fresh self-signed
// certificate and a client config that trusts it.
func selfSignedTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), DNSNames: []string{"delay.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}}, NextProtos: []string{"delay-test"}}
	client = &tls.Config{RootCAs: pool, ServerName: "delay.test", NextProtos: []string{"delay-test"}}
	return server, client
}

// TestDelayUDPCarriesQUIC runs a real QUIC connection through the
// forwarder: the handshake takes at least one emulated round trip, and a
// stream carries 4 MiB intact.
func TestDelayUDPCarriesQUIC(t *testing.T) {
	const oneWay = 10 * time.Millisecond
	stls, ctls := selfSignedTLS(t)
	ln, err := quic.ListenAddr("127.0.0.1:0", stls, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- sumServer(ctx, ln) }()

	f := newDelayUDP(t, ln.Addr().String(), oneWay)
	start := time.Now()
	conn, err := quic.DialAddr(ctx, f.Addr().String(), ctls, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	if hs := time.Since(start); hs < 2*oneWay {
		t.Fatalf("QUIC handshake took %v < one round trip %v", hs, 2*oneWay)
	}
	data := make([]byte, 4<<20)
	rand.Read(data)
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write(data); err != nil {
		t.Fatal(err)
	}
	str.Close()
	sum, err := io.ReadAll(str)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(data); string(sum) != string(want[:]) {
		t.Fatalf("server saw other bytes than were sent")
	}
	conn.CloseWithError(0, "done")
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// sumServer accepts one connection and one stream and answers with the
// SHA-256 of everything the stream carried.
func sumServer(ctx context.Context, ln *quic.Listener) error {
	conn, err := ln.Accept(ctx)
	if err != nil {
		return err
	}
	str, err := conn.AcceptStream(ctx)
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, str); err != nil {
		return err
	}
	if _, err := str.Write(h.Sum(nil)); err != nil {
		return err
	}
	str.Close()
	<-conn.Context().Done() // the client closes first
	return nil
}
