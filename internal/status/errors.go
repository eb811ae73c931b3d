package status

import (
	"context"
	"log/slog"
	"maps"
	"sync"
)

// maxErrorKinds bounds the kinds an ErrorCounter tracks; later kinds are
// counted as "other". Log messages are constant strings, so this is a
// guard, not a limit anyone should meet.
const maxErrorKinds = 100

// ErrorCounter counts errors by kind. Wrapping a log handler with Handler
// counts every record at warning level or above by its message, so the
// node's logs are its error taxonomy; Add counts other kinds.
type ErrorCounter struct {
	mu     sync.Mutex // guards counts
	counts map[string]uint64
}

// NewErrorCounter returns an empty counter.
func NewErrorCounter() *ErrorCounter {
	return &ErrorCounter{counts: map[string]uint64{}}
}

// Add counts one error of kind.
func (c *ErrorCounter) Add(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.counts[kind]; !ok && len(c.counts) >= maxErrorKinds {
		kind = "other"
	}
	c.counts[kind]++
}

// Counts returns a copy of the counts.
func (c *ErrorCounter) Counts() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// Handler returns a handler that counts records of level warn and above
// by message, then passes every record on to h.
func (c *ErrorCounter) Handler(h slog.Handler) slog.Handler {
	return countingHandler{h, c}
}

type countingHandler struct {
	slog.Handler
	c *ErrorCounter
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.c.Add(r.Message)
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// Enabled lets warnings through even when the wrapped handler drops
// them, so they are counted at any log level.
func (h countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.Handler.Enabled(ctx, l)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(as), h.c}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(name), h.c}
}
