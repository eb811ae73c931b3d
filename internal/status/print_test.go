package status

import (
	"strings"
	"testing"
)

func TestPrintBuildTimes(t *testing.T) {
	for _, tc := range []struct {
		b    BuildTimes
		want string
	}{
		{BuildTimes{BoundsMs: []float64{50, 200}, Counts: []uint64{1, 3, 1}, Count: 5, TimedOut: 2}, "circuit builds  5, median ≤ 200 ms, 2 timed out"},
		{BuildTimes{BoundsMs: []float64{50, 200}, Counts: []uint64{0, 0, 3}, Count: 3}, "median > 200 ms"},
		{BuildTimes{BoundsMs: []float64{50}, Counts: []uint64{0, 0}, TimedOut: 1}, "circuit builds  0, median -, 1 timed out"},
	} {
		var sb strings.Builder
		Print(&sb, Snapshot{Node: Node{Kind: KindProxy}, Builds: &tc.b})
		if !strings.Contains(sb.String(), tc.want) {
			t.Errorf("%+v printed\n%s\nwant %q", tc.b, sb.String(), tc.want)
		}
	}
}
