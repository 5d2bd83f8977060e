package scalebench

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testbin"
)

// BenchmarkVerifyMemory asks where `verify --read-data`'s peak memory
// goes as the data grows, with the server taken out: a snapshot of each
// data size (4 collections, benchtool.GenCollection, 8 MiB chunks) is
// written straight into a file repository, then verify reads it back,
// once with the default garbage collector and once with GOGC=off and
// GOMEMLIMIT=60MiB (collect only when the heap reaches 60 MiB). It prints
// the peak RSS and the largest heap the collector saw before a cycle
// (GODEBUG=gctrace=1). Use -benchtime 1x.
func BenchmarkVerifyMemory(b *testing.B) {
	ctx := context.Background()
	rewind := testbin.Rewind(b)
	for range b.N {
		var lines []string
		for _, mb := range dataSizes[:steps()] {
			url := "file://" + b.TempDir()
			writeSnapshot(ctx, b, url, int(mb))
			for _, env := range [][]string{{}, {"GOGC=off", "GOMEMLIMIT=60MiB"}} {
				argv := append(append([]string{"env", "GODEBUG=gctrace=1"}, env...), rewind, "verify", "--repo", url, "--read-data")
				r := benchtool.MeasurePeak(ctx, b, "verify --read-data", argv...)
				heap, cycles := gcTrace(r.Stderr)
				gc := "default GC"
				if len(env) > 0 {
					gc = strings.Join(env, " ")
				}
				lines = append(lines, fmt.Sprintf("| %d MiB | %s | %.1f MiB | %d MB | %d | %.2f s |", mb, gc, mib(r.MaxRSS), heap, cycles, r.Elapsed.Seconds()))
			}
		}
		b.Logf("verify --read-data, server taken out:\n| data | collector | peak RSS | largest heap before a GC | GC cycles | time |\n| --- | --- | --- | --- | --- | --- |\n%s", strings.Join(lines, "\n"))
	}
}

// writeSnapshot stores mb MiB of documents as one snapshot of shard rs0
// in a new repository at url, with the repository package's writer.
func writeSnapshot(ctx context.Context, b *testing.B, url string, mb int) {
	st, err := storage.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Init(ctx, st, repo.InitOptions{Location: url})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	ts := optime.Timestamp{T: uint32(now.Unix()), I: 1}
	m := repo.Manifest{ID: repo.NewSnapshotID(now), Shard: "rs0", Start: ts, End: ts, Started: now, Finished: now}
	for c := range colls {
		docs := benchtool.GenCollection(c, mb<<20/colls)
		cm := repo.CollectionManifest{DB: "bench", Name: fmt.Sprint("c", c), UUID: fmt.Sprint("u", c), Count: int64(len(docs))}
		for n, chunk := range benchtool.Chunks(docs, 8<<20) {
			ref, err := r.WriteChunk(ctx, m.Shard, m.ID, cm.UUID, n, chunk)
			if err != nil {
				b.Fatal(err)
			}
			cm.Chunks = append(cm.Chunks, ref)
			cm.Bytes += ref.Bytes
		}
		m.Collections = append(m.Collections, cm)
	}
	if err := r.WriteManifest(ctx, m); err != nil {
		b.Fatal(err)
	}
}

// gcLine is one gctrace line's heap sizes: before, after, live (MB).
var gcLine = regexp.MustCompile(`(?m)^gc \d+ .* (\d+)->(\d+)->(\d+) MB`)

// gcTrace is the largest heap before a collection and the number of
// collections in a GODEBUG=gctrace=1 stderr.
func gcTrace(stderr string) (largest, cycles int) {
	for _, m := range gcLine.FindAllStringSubmatch(stderr, -1) {
		n, _ := strconv.Atoi(m[1])
		largest = max(largest, n)
		cycles++
	}
	return largest, cycles
}
