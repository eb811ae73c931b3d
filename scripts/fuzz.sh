#!/usr/bin/env bash
# Runs fuzz targets one after another for FUZZTIME each, for `make fuzz`.
#
#   scripts/fuzz.sh [-seeds] [./package:FuzzName ...]
#
# With no targets it runs every one scripts/fuzz-targets.sh lists. Every
# target runs even if an earlier one fails; a table of outcomes (time, corpus
# entries found in the run, seeds added, result) is printed at the end and the
# exit status is non-zero if any target failed.
#
# After each target, the corpus the fuzzer has found (kept in Go's fuzz cache,
# $(go env GOCACHE)/fuzz/<import path>/<FuzzName>/, across runs) is copied
# into the package's testdata/fuzz/<FuzzName>/, where `go test` runs it as
# seeds. To keep that seed corpus small, a target gets at most FUZZ_SEED_MAX
# files there (files already present are kept and count towards it), the
# smallest entries go first, and entries over FUZZ_SEED_MAX_BYTES are skipped.
# With -seeds only that copy is done, without fuzzing (e.g. after running
# `go test -fuzz` by hand).
#
# A failing input that `go test -fuzz` writes to testdata/fuzz is reported as
# a crash: it makes `go test` fail until the bug it shows is fixed, after
# which it stays as a regression seed.
#
# Environment: GO (go), FUZZTIME (2m), FUZZ_PARALLEL (1, passed as -parallel:
# fuzz workers per target), FUZZ_SEED_MAX (64), FUZZ_SEED_MAX_BYTES (65536).
set -uo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-2m}
FUZZ_PARALLEL=${FUZZ_PARALLEL:-1}
FUZZ_SEED_MAX=${FUZZ_SEED_MAX:-64}
FUZZ_SEED_MAX_BYTES=${FUZZ_SEED_MAX_BYTES:-65536}

seeds_only=0
if [ "${1:-}" = -seeds ]; then
	seeds_only=1
	shift
fi
if [ $# -gt 0 ]; then
	targets=("$@")
else
	mapfile -t targets < <(./scripts/fuzz-targets.sh)
fi
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets" >&2
	exit 1
fi

cache=$("$GO" env GOCACHE)/fuzz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Sorted file names (not paths) in directory $1, empty if it is missing.
names() {
	if [ -d "$1" ]; then
		find "$1" -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort
	fi
}

fmt_secs() {
	printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}

rows=()
failed=0
for t in "${targets[@]}"; do
	pkg=${t%%:*}
	name=${t##*:}
	if [ "$pkg" = "$t" ] || [ -z "$name" ]; then
		echo "fuzz: $t: want ./package:FuzzName" >&2
		rows+=("$t|-|-|-|-|bad target")
		failed=1
		continue
	fi
	if [ "$seeds_only" = 0 ]; then
		echo "== $pkg $name ($FUZZTIME, -parallel $FUZZ_PARALLEL)"
	fi
	start=$(date +%s)

	if ! importpath=$("$GO" list "$pkg"); then
		rows+=("$t|-|-|-|-|FAIL: go list")
		failed=1
		continue
	fi
	cachedir=$cache/$importpath/$name
	seeddir=$pkg/testdata/fuzz/$name
	names "$cachedir" >"$tmp/cache.before"
	names "$seeddir" >"$tmp/seeds.before"

	rc=0
	if [ "$seeds_only" = 0 ]; then
		"$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" \
			-parallel "$FUZZ_PARALLEL" "$pkg"
		rc=$?
	fi
	secs=$(($(date +%s) - start))

	# Inputs go test wrote to testdata/fuzz during the run are crashers.
	names "$seeddir" >"$tmp/seeds.after"
	crashers=$(LC_ALL=C comm -13 "$tmp/seeds.before" "$tmp/seeds.after")

	# Corpus entries the fuzzer found in this run.
	names "$cachedir" >"$tmp/cache.after"
	LC_ALL=C comm -13 "$tmp/cache.before" "$tmp/cache.after" >"$tmp/new"
	found=$(wc -l <"$tmp/new")

	# Copy the smallest cached entries not yet seeds, up to the cap. Names
	# are hashes of the contents, so a name already in seeddir is a copy.
	have=$(wc -l <"$tmp/seeds.after")
	room=$((FUZZ_SEED_MAX - have))
	LC_ALL=C comm -23 "$tmp/cache.after" "$tmp/seeds.after" >"$tmp/candidates"
	added=0
	if [ "$room" -gt 0 ] && [ -s "$tmp/candidates" ]; then
		while read -r size f; do
			[ "$added" -lt "$room" ] || break
			[ "$size" -le "$FUZZ_SEED_MAX_BYTES" ] || continue
			mkdir -p "$seeddir"
			cp "$cachedir/$f" "$seeddir/$f" && added=$((added + 1))
		done < <(while read -r f; do
			printf '%s %s\n' "$(stat -c %s "$cachedir/$f")" "$f"
		done <"$tmp/candidates" | sort -n -k1,1 -k2,2)
	fi

	if [ -n "$crashers" ]; then
		result="CRASH: $(echo "$crashers" | sed "s#^#$seeddir/#" | paste -sd' ')"
		failed=1
	elif [ "$rc" -ne 0 ]; then
		result="FAIL (exit $rc)"
		failed=1
	elif [ "$seeds_only" = 1 ]; then
		result="seeds only"
	else
		result=ok
	fi
	seeds=$(names "$seeddir" | wc -l)
	echo "== $pkg $name: $result, $(fmt_secs "$secs"), $found new corpus entries, $added added to $seeddir ($seeds seeds)"
	rows+=("$t|$(fmt_secs "$secs")|$found|$added|$seeds|$result")
done

echo
if [ "$seeds_only" = 1 ]; then
	echo "fuzz seeds summary"
else
	echo "fuzz summary (FUZZTIME=$FUZZTIME, -parallel $FUZZ_PARALLEL)"
fi
{
	echo "TARGET|TIME|NEW CORPUS|SEEDS ADDED|SEEDS|RESULT"
	printf '%s\n' "${rows[@]}"
} | column -t -s '|'
exit "$failed"
