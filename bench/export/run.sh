#!/usr/bin/env bash
# Compares `rewind export --format archive` with `mongodump --archive`
# (100.11.0) of the same state (REWIND_BENCH_MB, default 32 MiB in 4
# collections, then 1,500 changes captured after the snapshot), and checks
# mongorestore of rewind's archive; then the export pipeline without a
# server (file repository to io.Discard or local files). mongodump and
# mongorestore are built into $REWIND_TEST_CACHE/mongo-tools if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench 'Export$' -benchtime 1x -timeout 60m -v ./bench/export/ 2>&1 | grep -v '"level"'
go test -run '^$' -bench 'Pipeline' -benchtime 3x -benchmem ./bench/export/
