#!/usr/bin/env bash
# The soak (issue 17): for N minutes (default 30) a workload writes while
# `rewind agent` captures it, snapshots every minute, prunes and compacts;
# random faults are injected (kill -9, SIGSTOP pauses, network latency,
# bandwidth, resets and blackholes between the agent and its source) and
# random restore points are restored and checked against the oracle. It
# prints a summary: writes, restores checked, faults injected, losses (must
# be 0), the agent's RSS by minute (must stay flat). Exit 1 on any loss.
#
#   scripts/soak.sh [--minutes N] [--seed S]
#
# Needs what scripts/test.sh installs (the test server is built into
# $REWIND_TEST_CACHE on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=30 seed=""
while [ $# -gt 0 ]; do
	case "$1" in
	--minutes) minutes="${2:?--minutes needs a number}"; shift 2 ;;
	--minutes=*) minutes="${1#*=}"; shift ;;
	--seed) seed="${2:?--seed needs a number}"; shift 2 ;;
	--seed=*) seed="${1#*=}"; shift ;;
	-h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
if ! [[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]] || [ "$(awk "BEGIN{print ($minutes > 0)}")" != 1 ]; then
	echo "soak.sh: --minutes must be a positive number of minutes, got '$minutes'" >&2
	exit 2
fi

export REWIND_TEST_CACHE="${REWIND_TEST_CACHE:-$HOME/.cache/rewind-test}"
summary=$(mktemp)
log="${TMPDIR:-/tmp}/rewind-soak-$(date -u +%Y%m%dT%H%M%SZ).log"
trap 'rm -f "$summary"' EXIT
timeout_min=$(awk "BEGIN{print int($minutes + 15)}")
status=0
REWIND_SOAK_MINUTES="$minutes" REWIND_SOAK_SUMMARY="$summary" REWIND_SOAK_SEED="$seed" \
	go test -count=1 -v -run '^TestSoak$' -timeout "${timeout_min}m" ./internal/agent >"$log" 2>&1 || status=$?
if [ -s "$summary" ]; then
	cat "$summary"
fi
echo "the soak's full log: $log"
if [ "$status" -ne 0 ]; then
	echo "soak failed (exit $status); the end of its log:" >&2
	tail -n 80 "$log" >&2
fi
exit "$status"
