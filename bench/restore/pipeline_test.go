package restorebench

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"filippo.io/age"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// BenchmarkPipeline is rewind's restore pipeline with the server taken
// out: the data set's 8 MiB chunks read from a file repository by
// `parallel` workers, checked, decrypted (encrypted repository),
// decompressed and split into documents, exactly as restore's load phase
// does before it inserts. MB/s is of BSON (plaintext).
func BenchmarkPipeline(b *testing.B) {
	d := generate(dataMB())
	for _, mode := range []string{"zstd", "zstd+age"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			r, refs, stored := writeChunks(ctx, b, d, mode == "zstd+age")
			b.SetBytes(d.size)
			b.ResetTimer()
			for range b.N {
				if n := readAll(ctx, b, r, refs); n != int64(d.docs) {
					b.Fatalf("read %d documents, want %d", n, d.docs)
				}
			}
			b.ReportMetric(mib(stored), "stored-MiB") // after ResetTimer, which clears metrics
		})
	}
}

// writeChunks stores the data set as snapshot chunks of at most 8 MiB
// (the snapshot's default) and reopens the repository as a restore does.
func writeChunks(ctx context.Context, b *testing.B, d dataset, encrypt bool) (*repo.Repository, []repo.ChunkRef, int64) {
	dir := b.TempDir()
	url := "file://" + dir
	st, err := storage.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	var ids []age.Identity
	o := repo.InitOptions{Location: url}
	if encrypt {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			b.Fatal(err)
		}
		ids, o.Recipient = []age.Identity{id}, id.Recipient().String()
	}
	w, err := repo.Init(ctx, st, o)
	if err != nil {
		b.Fatal(err)
	}
	var refs []repo.ChunkRef
	for c, docs := range d.colls {
		for n, start := 0, 0; start < len(docs); n++ {
			end, size := start, 0
			for end < len(docs) && size+len(docs[end]) <= 8<<20 {
				size += len(docs[end])
				end++
			}
			ref, err := w.WriteChunk(ctx, "bench", "s1", "c"+strconv.Itoa(c), n, docs[start:end])
			if err != nil {
				b.Fatal(err)
			}
			refs = append(refs, ref)
			start = end
		}
	}
	r, err := repo.Open(ctx, st, repo.OpenOptions{Location: url, Identities: ids})
	if err != nil {
		b.Fatal(err)
	}
	return r, refs, diskBytes(b, filepath.Join(dir, "data"))
}

// readAll reads every chunk, parallel at a time, and counts documents.
func readAll(ctx context.Context, b *testing.B, r *repo.Repository, refs []repo.ChunkRef) int64 {
	jobs := make(chan repo.ChunkRef)
	var docs atomic.Int64
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for ref := range jobs {
				got, err := r.ReadChunk(ctx, ref)
				if err != nil {
					b.Error(err)
					continue
				}
				docs.Add(int64(len(got)))
			}
		})
	}
	for _, ref := range refs {
		jobs <- ref
	}
	close(jobs)
	wg.Wait()
	return docs.Load()
}
