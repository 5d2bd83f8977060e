#!/usr/bin/env bash
# rewind's main job end to end, on local defaults: start a test server, back it
# up continuously, take a snapshot, break the data, and restore it to a chosen
# second, then prove the restored state is exactly the state at that second.
# Everything happens under one temporary directory; nothing is left running,
# unless REWIND_DEMO_KEEP=1: then the server and the agent stay up at the end,
# with the dashboard's address and token printed, until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

export REWIND_TEST_CACHE="${REWIND_TEST_CACHE:-$HOME/.cache/rewind-test}"
work="$(mktemp -d "${TMPDIR:-/tmp}/rewind-demo.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "(demo files kept in $work)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "building rewind, the workload generator and the test server (first run: a few minutes)"
command -v go >/dev/null || { echo "go is not installed: install Go 1.26 or newer" >&2; exit 1; }
mkdir -p "$work/bin"
go build -o "$work/bin/rewind" ./cmd/rewind
go build -o "$work/bin/rewind-workload" ./cmd/rewind-workload
server_bin="$(go run ./internal/testserver/cmd/ensure-testserver)"
export PATH="$work/bin:$PATH"

say "starting a test server (FerretDB with an oplog) in $work/db"
"$server_bin" --addr 127.0.0.1:0 --dir "$work/db" >"$work/server.out" 2>"$work/server.err" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/server.out" ] && break; sleep 0.1; done
uri="$(head -n1 "$work/server.out")"
[ -n "$uri" ] || { echo "the test server did not start:" >&2; cat "$work/server.err" >&2; exit 1; }
echo "server: $uri"
repo="file://$work/repo"

say "creating a repository and starting the agent (continuous oplog capture)"
run rewind init --repo "$repo" --source "$uri"
# The API and dashboard on a free local port, with a token made up for the demo.
REWIND_API_TOKEN="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export REWIND_API_TOKEN
rewind agent --source "$uri" --repo "$repo" --spool-dir "$work/spool" --api-listen 127.0.0.1:0 >"$work/agent.log" 2>&1 &
agent=$!
pids+=($agent)
sleep 1

say "the application starts writing; the workload records marks (state hashes at oplog timestamps)"
printf '$ rewind-workload --uri %s --seed 2 --ops 500 --rate 50 --prefix app_ --mark-every 4 --marks marks.json &\n' "$uri"
rewind-workload --uri "$uri" --seed 2 --ops 500 --rate 50 --prefix app_ --large-every 0 --mark-every 4 --marks "$work/marks.json" >"$work/workload.out" 2>&1 &
workload=$!
pids+=($workload)
sleep 3

say "taking a snapshot while the application writes"
run rewind snapshot --source "$uri" --repo "$repo"
wait "$workload"
cat "$work/workload.out"
sleep 2
run rewind status --repo "$repo"

# A mark recorded after the snapshot: "mark 4: ts 1795625989:1328, after 320 operations"
mark=4
to="$(awk -v m="mark $mark:" '$1" "$2 == m { sub(",", "", $4); print $4 }' "$work/workload.out")"
[ -n "$to" ] || { echo "mark $mark was not recorded" >&2; exit 1; }

say "disaster: someone drops the app_ databases"
run rewind-workload drop --uri "$uri" --prefix app_
echo "the deployment no longer matches mark $mark:"
run rewind-workload compare --uri "$uri" --marks "$work/marks.json" --mark "$mark" || true

say "the restore windows"
run rewind list --repo "$repo"

say "restoring the whole deployment to mark $mark (oplog timestamp $to), replacing what is there"
run rewind restore --repo "$repo" --target "$uri" --to "$to" --drop

say "checking the restored state against mark $mark, document by document"
run rewind-workload compare --uri "$uri" --marks "$work/marks.json" --mark "$mark"

say "done: the deployment is exactly as it was at $to"

api="$(sed -n 's/.*msg="api listening" addr=\([^ ]*\).*/\1/p' "$work/agent.log" | head -n1)"
if [ -n "$api" ]; then
  echo "the agent's dashboard: http://$api/  (token: $REWIND_API_TOKEN)"
fi
if [ "${REWIND_DEMO_KEEP:-}" = 1 ]; then
  echo "the test server ($uri) and the agent keep running; Ctrl-C stops them"
  wait "$agent" || true
fi
