#!/usr/bin/env bash
# Where a bulk transfer's CPU goes when obol runs as processes: three
# `obol relay` processes (every one a guard and an exit) and one
# `obol proxy` on loopback, a Go file server, and curl through SOCKS.
# Prints the transfer rates (direct and through a 3-hop circuit), a CPU
# profile of the four obol processes during one transfer (perf, call
# graphs by frame pointer), and the syscalls the proxy and one relay make
# per MiB (strace -c). Needs perf and strace (Debian: linux-perf, strace);
# run as root or with perf_event_paranoid ≤ 1.
#
#   scripts/profile-loopback.sh [size-MiB]    (default 256)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-256}
dir=$(mktemp -d /tmp/obol-profile.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

go build -o "$dir/obol" ./cmd/obol
cat >"$dir/srv.go" <<'EOF'
package main

import (
	"net/http"
	"os"
)

func main() { http.ListenAndServe(os.Args[1], http.FileServer(http.Dir(os.Args[2]))) }
EOF
(cd "$dir" && go mod init srv >/dev/null 2>&1 && go build -o srv srv.go)
mkdir "$dir/www"
head -c $((size << 20)) /dev/urandom >"$dir/www/file"

base=$((20000 + RANDOM % 20000))
"$dir/srv" "127.0.0.1:$base" "$dir/www" &
pids+=($!)
common=(--allow-loopback --skip-reach-check --roles relay,guard,exit --log-level warn)
"$dir/obol" relay --data-dir "$dir/r0" --listen "/ip4/127.0.0.1/udp/$((base + 1))/quic-v1,/ip4/127.0.0.1/tcp/$((base + 1))" "${common[@]}" >"$dir/r0.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
	id=$(grep -o '12D3Koo[A-Za-z0-9]*' "$dir/r0.log" | head -1 || true)
	[ -n "$id" ] && break
	sleep 0.2
done
boot="/ip4/127.0.0.1/udp/$((base + 1))/quic-v1/p2p/$id"
for i in 1 2; do
	"$dir/obol" relay --data-dir "$dir/r$i" --bootstrap "$boot" "${common[@]}" \
		--listen "/ip4/127.0.0.1/udp/$((base + 1 + i))/quic-v1,/ip4/127.0.0.1/tcp/$((base + 1 + i))" >"$dir/r$i.log" 2>&1 &
	pids+=($!)
done
sleep 3
socks="127.0.0.1:$((base + 9))"
"$dir/obol" proxy --data-dir "$dir/p" --bootstrap "$boot" --allow-same-subnet --min-guard-age 0 --min-exit-age 0 \
	--socks "$socks" --log-level warn >"$dir/p.log" 2>&1 &
proxy=$!
pids+=($proxy)
for _ in $(seq 100); do
	grep -q 'listening' "$dir/p.log" && break
	sleep 0.2
done
url="http://127.0.0.1:$base/file"
get() { curl -s -o /dev/null --socks5-hostname "$socks" -U "$1:x" -w '%{speed_download}' "$url"; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "direct:      $(curl -s -o /dev/null -w '%{speed_download}' "$url" | awk '{printf "%.1f MB/s", $1/1e6}')"
for i in 1 2 3; do
	echo "3-hop circuit, run $i: $(get "run$i" | awk '{printf "%.1f MB/s", $1/1e6}')"
done

obol=$(pgrep -d, -f "$dir/obol")
get profiled >"$dir/rate" &
sleep 0.5
perf record -q -F 999 --call-graph fp -p "$obol" -o "$dir/perf.data" -- sleep 5 2>/dev/null
wait %%
echo "profiled transfer: $(awk '{printf "%.1f MB/s", $1/1e6}' "$dir/rate")"
echo "CPU of the four obol processes, by function alone (top 25):"
perf report -i "$dir/perf.data" --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -25 || true
echo "the same, by function and its callees (top 60):"
perf report -i "$dir/perf.data" --children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -60 || true

relay=$(pgrep -f "$dir/obol relay --data-dir $dir/r0")
mib=64
for who in proxy relay; do
	pid=${!who}
	strace -c -f -p "$pid" -o "$dir/strace-$who" &
	st=$!
	sleep 1
	curl -s -o /dev/null -r "0-$((mib * 1048576 - 1))" --socks5-hostname "$socks" -U "strace-$who:x" "$url"
	sleep 0.5
	kill -INT "$st"
	wait "$st" 2>/dev/null || true
	echo "syscalls of the $who per MiB carried (strace -c, $mib MiB; strace slows it):"
	awk -v mib=$mib '/^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ {printf "  %-14s %7.1f\n", $NF, $4 / mib}' "$dir/strace-$who" | head -12 || true
done
