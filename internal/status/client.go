package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxBody bounds a status answer (thousands of circuits fit).
const maxBody = 64 << 20

// Fetch asks the node whose status server listens on addr (host:port, or
// a URL) for a snapshot.
func Fetch(ctx context.Context, addr string) (Snapshot, error) {
	url := strings.TrimSuffix(addr, "/")
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/status", nil)
	if err != nil {
		return Snapshot{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Snapshot{}, fmt.Errorf("no status server at %s (is the node running with --status?): %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return Snapshot{}, fmt.Errorf("status server at %s answered %s: %s", addr, resp.Status, strings.TrimSpace(string(msg)))
	}
	var s Snapshot
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&s); err != nil {
		return Snapshot{}, fmt.Errorf("status server at %s: %w", addr, err)
	}
	return s, nil
}
