#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs (Go modules,
# the test servers and storage emulators, built once into a cache outside the
# repository), then runs every Go test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

export REWIND_TEST_CACHE="${REWIND_TEST_CACHE:-$HOME/.cache/rewind-test}"
mkdir -p "$REWIND_TEST_CACHE"

step() { printf '\n==> %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

step "checking the toolchain"
command -v go >/dev/null || { echo "go is not installed: install Go 1.26 or newer" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm is not installed (Azurite needs it): apt-get install -y nodejs npm" >&2; exit 1; }
go version

step "downloading Go modules"
go mod download
(cd cmd/rewind-testserver && go mod download)
(cd scripts/deploytools && go mod download)

step "building the test servers into $REWIND_TEST_CACHE (reused on later runs)"
scripts/install-test-servers.sh
go run ./internal/testserver/cmd/ensure-testserver

step "checking formatting, go.mod and static analysis"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change these files (run gofmt -w):" >&2
	echo "$unformatted" >&2
	exit 1
fi
go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy" >&2; exit 1; }
(cd cmd/rewind-testserver && go mod tidy -diff) || { echo "cmd/rewind-testserver: run go mod tidy there" >&2; exit 1; }
(cd scripts/deploytools && go mod tidy -diff) || { echo "scripts/deploytools: run go mod tidy there" >&2; exit 1; }
go vet ./...
(cd cmd/rewind-testserver && go vet ./...)
(cd scripts/deploytools && go vet ./...)
"$REWIND_TEST_CACHE/bin/staticcheck" ./...

step "checking the Helm chart against the Kubernetes schemas and building the OCI image"
scripts/check-deploy.sh

step "running the tests"
# -p 2: the machine has two cores; the integration tests start real servers.
go test -p 2 -timeout 45m -count=1 "$@" ./...
(cd cmd/rewind-testserver && go test -count=1 ./...)

step "soak: 3 minutes of faults, restores checked by the oracle (scripts/soak.sh --minutes 3)"
scripts/soak.sh --minutes 3
step "all tests passed"
