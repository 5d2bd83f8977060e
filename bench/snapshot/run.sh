#!/usr/bin/env bash
# Compares `rewind snapshot` with `mongodump --archive [--gzip]` on the same
# data (REWIND_BENCH_MB, default 64 MiB in 4 collections) against the
# FerretDB test server, then measures rewind's own encode+store cost from
# memory. mongodump is built into $REWIND_TEST_CACHE/mongo-tools if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench 'SnapshotVsMongodump' -benchtime 1x -timeout 60m -v ./bench/snapshot/ 2>&1 | grep -v '"level"'
go test -run '^$' -bench 'EncodeStore' -benchtime 3x -benchmem ./bench/snapshot/
