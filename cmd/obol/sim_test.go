package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Bad `obol sim` flags exit 2 naming the flag, the value and why.
func TestSimFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--relays", "3"}, `invalid value "3" for flag -relays`},
		{[]string{"--sybil", "1.5"}, `a fraction is not between 0 and 1`},
		{[]string{"--crash", "-1"}, `negative churn rate`},
		{[]string{"--observe", "1s"}, `invalid value "1s" for flag -observe`},
		{[]string{"--observe", "30m", "--sybil-delay", "30m"}, `Sybil delay 30m0s is not within the observation`},
		{[]string{"--min-exit-age", "-1h"}, `negative relay age`},
	} {
		code, _, stderr := runCmd(context.Background(), append([]string{"sim"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	o, code, ok := simFlags([]string{"--relays", "300", "--clients", "50", "--observe", "30m", "--sybil", "0.1", "--realtime"},
		env{stderr: new(strings.Builder)})
	if !ok || code != 0 || o.cfg.Relays != 300 || o.cfg.Clients != 50 || o.cfg.Observe != 30*time.Minute ||
		o.cfg.SybilFraction != 0.1 || !o.realtime {
		t.Fatalf("parsed %+v, code %d", o, code)
	}
	o, _, ok = simFlags([]string{"--sybil", "0.1", "--sybil-delay", "35m", "--min-guard-age", "192h", "--min-exit-age", "72h"},
		env{stderr: new(strings.Builder)})
	if c := o.cfg; !ok || c.SybilDelay != 35*time.Minute || c.MinGuardAge != 192*time.Hour || c.MinExitAge != 72*time.Hour {
		t.Fatalf("parsed %+v", c)
	}
}
