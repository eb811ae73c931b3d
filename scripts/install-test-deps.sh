#!/usr/bin/env bash
# Installs the Debian packages the tests use: real third-party clients and
# servers that talk to obol (curl through the SOCKS proxy, ssh and sshd
# through circuits, nc, chromium for the status page), iproute2 and
# nftables for the namespace tests' links and NATs, and gcc for the race
# detector. Packages already present are left alone; `apt-get update`
# runs only when an install cannot find a package in the current lists.
#
# Add a package here when a test starts to use it.
set -euo pipefail

packages=(
	chromium
	curl
	gcc
	iproute2
	netcat-openbsd
	nftables
	openssh-client
	openssh-server
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	sudo=(sudo)
fi

# The third-party Cashu wallet that checks the test mint, pinned in its
# package-lock.json and installed from npm's registry.
install_cashu_ts() {
	local interop
	interop="$(dirname "$0")/../payment/mint/interop"
	[ -d "$interop/node_modules/@cashu/cashu-ts" ] && return 0
	if ! command -v npm >/dev/null; then
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
	fi
	echo "test dependencies: installing @cashu/cashu-ts"
	(cd "$interop" && npm ci --no-audit --no-fund --loglevel=error)
}

if [ ${#missing[@]} -eq 0 ]; then
	echo "test dependencies: all present"
	install_cashu_ts
	exit 0
fi
apt_install() {
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}"
}

echo "test dependencies: installing ${missing[*]}"
if ! apt_install; then
	echo "test dependencies: refreshing the package lists"
	"${sudo[@]}" apt-get update -q
	apt_install
fi
install_cashu_ts
