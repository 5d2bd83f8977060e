#!/usr/bin/env bash
# Installs Debian's chromium (for the dashboard test) and builds the storage
# emulators the tests use (and staticcheck, and mongodump/mongorestore
# 100.11.0 when their source is beside the clone) into the shared test cache, one
# after another (two Go builds at once on a small machine double each one's
# time). Idempotent: what is already there at the right version is skipped.
# CI runs it before `go test`; tests also build on demand, under the same
# lock files, so running both at once never builds twice.
#
#   REWIND_TEST_CACHE   cache directory (default ~/.cache/rewind-test)
#
# The versions must match internal/storage/storagetest/servers.go.
set -euo pipefail

VERSITYGW_VERSION=v1.8.0
FAKE_GCS_VERSION=v1.56.1
AZURITE_VERSION=3.35.0
# staticcheck is not a server but is built the same way, for scripts/test.sh.
STATICCHECK_VERSION=v0.8.2

CACHE="${REWIND_TEST_CACHE:-$HOME/.cache/rewind-test}"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$CACHE/bin"
mkdir -p "$BIN"

log() { printf '%s install-test-servers: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# go_binary_version BIN prints the main module version a Go binary was built
# from, or nothing.
go_binary_version() {
	[ -x "$1" ] || return 0
	go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'
}

# install_go NAME MODULE_PATH VERSION
install_go() {
	local name=$1 pkg=$2 version=$3
	local lock="$CACHE/.lock-$name"
	(
		flock 9
		if [ "$(go_binary_version "$BIN/$name")" = "$version" ]; then
			log "$name $version already installed in $BIN"
			exit 0
		fi
		log "building $name $version (takes several minutes on 2 cores)..."
		local start tmp
		start=$(date +%s)
		# Build into a temp dir then rename, so a killed build leaves no
		# half-written binary behind.
		tmp=$(mktemp -d "$CACHE/.build-$name.XXXXXX")
		trap 'rm -rf "$tmp"' EXIT
		(cd "$CACHE" && GOBIN="$tmp" go install "$pkg@$version")
		mv -f "$tmp/$name" "$BIN/$name"
		log "built $name $version in $(( $(date +%s) - start )) s"
	) 9>"$lock"
}

install_azurite() {
	local dir="$CACHE/azurite-$AZURITE_VERSION"
	local lock="$CACHE/.lock-azurite"
	(
		flock 9
		if [ -x "$dir/node_modules/.bin/azurite-blob" ]; then
			log "azurite $AZURITE_VERSION already installed in $dir"
			exit 0
		fi
		log "installing azurite $AZURITE_VERSION with npm..."
		local start tmp
		start=$(date +%s)
		tmp=$(mktemp -d "$CACHE/.build-azurite.XXXXXX")
		trap 'rm -rf "$tmp"' EXIT
		(cd "$tmp" && echo '{"private":true}' >package.json &&
			npm install --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >&2)
		rm -rf "$dir"
		chmod 755 "$tmp" # mktemp makes it owner-only; the cache is shared
		mv "$tmp" "$dir"
		log "installed azurite $AZURITE_VERSION in $(( $(date +%s) - start )) s"
	) 9>"$lock"
}

# install_chromium installs Debian's chromium for the dashboard's browser
# test (internal/api/dashboard_test.go), unless a chromium is on PATH.
install_chromium() {
	if command -v chromium >/dev/null || [ -n "${REWIND_CHROMIUM:-}" ]; then
		log "chromium already installed"
		return
	fi
	local sudo=""
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null || { log "chromium is missing and this is not root: apt-get install chromium"; exit 1; }
		sudo="sudo"
	fi
	log "installing chromium with apt-get (about a minute)..."
	local start
	start=$(date +%s)
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
	log "installed chromium in $(( $(date +%s) - start )) s"
}

# install_mongo_tools builds mongodump and mongorestore 100.11.0 (the export
# tests restore their output with mongorestore; the benchmarks compare with
# both) offline, from the source archive in shared/ beside the clone, under
# the lock the Go tests take (bench/benchtool.BuildMongoTools). Without that
# archive, the tests that need mongorestore skip and say so.
install_mongo_tools() {
	local dir="$CACHE/mongo-tools"
	local script="${REWIND_MONGO_TOOLS_BUILD:-$ROOT/../shared/tools/mongo-tools/build.sh}"
	if [ -x "$dir/mongodump" ] && [ -x "$dir/mongorestore" ]; then
		log "mongo-tools 100.11.0 already built in $dir"
		return
	fi
	if [ ! -f "$script" ]; then
		log "no $script (shared/ is not beside the clone): the tests that restore with mongorestore will skip"
		return
	fi
	(
		flock 9
		log "building mongodump and mongorestore 100.11.0 (about 2 minutes)..."
		local start
		start=$(date +%s)
		"$script" "$dir" >&2
		log "built mongo-tools in $(( $(date +%s) - start )) s"
	) 9>"$CACHE/mongo-tools.lock"
}

# Sourced (scripts/check-deploy.sh uses install_go): define, install nothing.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
command -v npm >/dev/null || { log "npm is not on PATH (Node 20 is needed for azurite)"; exit 1; }

install_chromium
install_go versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION"
install_go fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION"
install_azurite
install_go staticcheck honnef.co/go/tools/cmd/staticcheck "$STATICCHECK_VERSION"
install_mongo_tools
log "all test servers are in $CACHE"
