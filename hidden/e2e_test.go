package hidden_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"testing"
	"time"
)

// HTTP over a hidden service arrives byte-exact, on two streams of one
// session and again from a second client.
func TestHTTPOverHiddenService(t *testing.T) {
	tn := newTestNet(t, 6)
	l, _ := tn.listen(newKey(t))
	body := make([]byte, 300_000)
	rand.Read(body)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	})}
	go srv.Serve(l)
	defer srv.Close()
	for i := range 2 {
		c, _ := tn.client()
		hc := &http.Client{Transport: &http.Transport{DialContext: c.Dial, DisableKeepAlives: true}}
		for j := range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+l.Address()+"/", nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("client %d request %d: %v", i, j, err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("client %d request %d: %d bytes, err %v", i, j, len(got), err)
			}
		}
	}
}
