#!/usr/bin/env bash
# Installs @cashu/cashu-ts (pinned in package-lock.json) and checks the obol
# test mint with it.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
cd ../../..
go test ./payment/mint -run TestCashuTS -count=1 -v
