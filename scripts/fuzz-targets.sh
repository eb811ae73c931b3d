#!/usr/bin/env bash
# Prints every fuzz target of the module as ./package:FuzzName, one a line,
# for `make fuzz`.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -rE --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*\(' . |
	sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#\1:\2#' |
	sort -u
