#!/usr/bin/env bash
# The agent's memory over time, without faults: a test server, `rewind
# agent` with a snapshot every minute and GODEBUG=gctrace=1, and the soak's
# workload (30 writes/s) for N minutes (default 6). Prints the agent's RSS
# every 10 s, the medians of the first and last thirds, and the live heap
# after each garbage collection (gctrace's third heap figure): a leak
# raises the live heap, a high collector goal only the RSS.
#
#   scripts/agent-rss.sh [--minutes N]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=6
case "${1:-}" in
--minutes) minutes="${2:?--minutes needs a number}" ;;
"") ;;
*) echo "agent-rss.sh: unknown argument $1 (see the header)" >&2; exit 2 ;;
esac
d=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$d"' EXIT
go build -o "$d/rewind" ./cmd/rewind
go build -o "$d/rewind-workload" ./cmd/rewind-workload
server=$(go run ./internal/testserver/cmd/ensure-testserver)
"$server" --dir "$d/srv" >"$d/uri" 2>"$d/srv.err" &
for _ in $(seq 100); do [ -s "$d/uri" ] && break; sleep 0.1; done
uri=$(head -1 "$d/uri")
"$d/rewind" init --repo "file://$d/repo" >/dev/null
cat >"$d/rewind.yaml" <<YAML
source: "$uri"
repo: "file://$d/repo"
api:
  listen: ""
capture:
  spool_dir: "$d/spool"
snapshot:
  every: 1m
YAML
GODEBUG=gctrace=1 "$d/rewind" agent --config "$d/rewind.yaml" 2>"$d/agent.err" &
agent=$!
"$d/rewind-workload" --uri "$uri" --duration "${minutes}m" --rate 30 --seed 7 >"$d/workload.out" 2>&1 &
workload=$!
t0=$(date +%s)
while kill -0 "$workload" 2>/dev/null; do
	echo "$(($(date +%s) - t0)) $(awk '/VmRSS/ {print int($2/1024)}' "/proc/$agent/status")" >>"$d/rss"
	sleep 10
done
echo "agent RSS, MiB, every 10 s: $(awk '{printf "%s:%s ", $1, $2}' "$d/rss")"
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
third=$(($(wc -l <"$d/rss") / 3))
echo "median RSS, first third $(head -n "$third" "$d/rss" | cut -d' ' -f2 | median) MiB, last third $(tail -n "$third" "$d/rss" | cut -d' ' -f2 | median) MiB"
echo "snapshots: $(grep -c 'snapshot complete' "$d/agent.err")"
echo "live heap after each collection, MB: $(awk '/^gc / {split($11, h, "->"); printf "%s ", h[3]}' "$d/agent.err")"
