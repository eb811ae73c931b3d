// Package netnstest runs obol relays in Linux network namespaces joined by
// a bridge, so that tests can cut and heal real network links between
// groups of relays. Its tests need root and `ip netns`; they skip without
// them, except under CI, where they fail. With OBOL_NETNS_LOGS set to a
// directory, every relay's whole log is copied there when it stops.
package netnstest
