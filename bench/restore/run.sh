#!/usr/bin/env bash
# Compares `rewind restore` with `mongorestore --archive` (100.11.0) and a
# raw driver insertMany ceiling on the same data (REWIND_BENCH_MB, default
# 32 MiB in 10 collections, one 5x larger), each into a fresh FerretDB test
# server, whole and one collection; then rewind's restore pipeline without a
# server (read + decrypt + decompress + split chunks from a file repository).
# mongodump/mongorestore are built into $REWIND_TEST_CACHE/mongo-tools if
# missing (~2 min).
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench 'Restore$' -benchtime 1x -timeout 60m -v ./bench/restore/ 2>&1 | grep -v '"level"'
go test -run '^$' -bench 'Pipeline' -benchtime 5x -benchmem ./bench/restore/
