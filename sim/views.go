package sim

import (
	"github.com/libp2p/go-libp2p/core/peer"
)

// ViewSnapshot compares the clients' views at one moment.
type ViewSnapshot struct {
	AtMinutes float64 `json:"at_min"`
	Live      int     `json:"live_relays"`
	// Completeness is the share of live relays a client knows (mean
	// and least over clients); Stale the share of a client's view that
	// are relays no longer running (mean).
	Completeness    float64 `json:"completeness_mean"`
	CompletenessMin float64 `json:"completeness_min"`
	Stale           float64 `json:"stale_mean"`
	// Agreement is the mean Jaccard index of two clients' views (1:
	// everyone holds the same set, as a consensus gives).
	Agreement float64 `json:"agreement"`
}

// snapshot measures the views of clients against the live relays.
func snapshot(views []map[peer.ID]bool, live map[peer.ID]bool) ViewSnapshot {
	var comp, stale []float64
	for _, v := range views {
		in, dead := 0, 0
		for id := range v {
			if live[id] {
				in++
			} else {
				dead++
			}
		}
		comp = append(comp, ratio(in, len(live)))
		stale = append(stale, ratio(dead, len(v)))
	}
	return ViewSnapshot{Live: len(live), Completeness: round3(mean(comp)), CompletenessMin: round3(minOf(comp)),
		Stale: round3(mean(stale)), Agreement: round3(agreement(views))}
}

// agreement is the mean pairwise Jaccard index, over at most 400 pairs.
func agreement(views []map[peer.ID]bool) float64 {
	var js []float64
	step := max(1, len(views)*(len(views)-1)/2/400)
	k := 0
	for i := range views {
		for j := i + 1; j < len(views); j++ {
			if k++; k%step != 0 {
				continue
			}
			js = append(js, jaccard(views[i], views[j]))
		}
	}
	if len(js) == 0 {
		return 1
	}
	return mean(js)
}

func jaccard(a, b map[peer.ID]bool) float64 {
	inter := 0
	for id := range a {
		if b[id] {
			inter++
		}
	}
	union := len(a) + len(b) - inter
	if union == 0 {
		return 1
	}
	return float64(inter) / float64(union)
}

// anonymitySet counts the clients whose view holds every relay of path:
// the clients an observer who knows every client's view, and sees the
// path, cannot tell apart (Danezis and Clayton's route fingerprinting).
// With guards, it also counts those whose guard set holds the first hop.
func anonymitySet(path []peer.ID, views []map[peer.ID]bool, guards []map[peer.ID]bool) (byView, byViewAndGuard int) {
	for i, v := range views {
		ok := true
		for _, id := range path {
			if !v[id] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		byView++
		if guards[i][path[0]] {
			byViewAndGuard++
		}
	}
	return byView, byViewAndGuard
}
