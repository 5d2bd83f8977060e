package repo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"

	"github.com/rewind-backup/rewind/internal/storage"
)

// Benchmarks of the repository's write and read paths on the file backend
// against raw file I/O of the same bytes, in the same run:
//
//	go test ./internal/repo -run '^$' -bench . -benchtime 20x
//
// "raw-writefile" is os.WriteFile (no fsync); "raw-fsync" adds the fsync
// the file backend does for durability, so the gap between it and "plain"
// is the format's own cost. "zstd" is the level new repositories get
// (DefaultLevel).

var benchSizes = []struct {
	name string
	size int
}{
	{"segment-256KiB", 256 << 10},
	{"chunk-16MiB", 16 << 20},
}

// benchPayload is size bytes of ~1 KiB random BSON documents.
func benchPayload(size int) []byte {
	rng := rand.New(rand.NewPCG(9, 9))
	out := make([]byte, 0, size+2048)
	for len(out) < size {
		out = append(out, randomDoc(rng, 1000)...)
	}
	return out
}

func benchRepo(b *testing.B, mode string) *Repository {
	b.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, "file://"+b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	o := InitOptions{Compression: CompressionNone}
	var id *age.X25519Identity
	if mode == "zstd" || mode == "zstd+age" {
		o.Compression = CompressionZstd
	}
	if mode == "age" || mode == "zstd+age" {
		id = newIdentity(b)
		o.Recipient = id.Recipient().String()
	}
	if _, err := Init(ctx, st, o); err != nil {
		b.Fatal(err)
	}
	oo := OpenOptions{}
	if id != nil {
		oo.Identities = []age.Identity{id}
	}
	r, err := Open(ctx, st, oo)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

var benchModes = []string{"plain", "zstd", "age", "zstd+age"}

func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	for _, sz := range benchSizes {
		payload := benchPayload(sz.size)
		b.Run(sz.name+"/raw-writefile", func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "obj")
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if err := os.WriteFile(path, payload, 0o600); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(sz.name+"/raw-fsync", func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "obj")
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				writeSynced(b, path, payload)
			}
		})
		for _, mode := range benchModes {
			b.Run(sz.name+"/"+mode, func(b *testing.B) {
				r := benchRepo(b, mode)
				b.SetBytes(int64(len(payload)))
				var stored int64
				for b.Loop() {
					n, err := r.putObject(ctx, "data/rs0/s1/c1/00000000", KindChunk, payload)
					if err != nil {
						b.Fatal(err)
					}
					stored = n
				}
				b.ReportMetric(float64(stored)/float64(len(payload)), "stored/plain")
			})
		}
	}
}

func writeSynced(b *testing.B, path string, payload []byte) {
	f, err := os.Create(path)
	if err == nil {
		_, err = f.Write(payload)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	for _, sz := range benchSizes {
		payload := benchPayload(sz.size)
		b.Run(sz.name+"/raw-iocopy", func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "obj")
			if err := os.WriteFile(path, payload, 0o600); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(payload)))
			var buf bytes.Buffer
			for b.Loop() {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				if _, err := io.Copy(&buf, f); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
		for _, mode := range benchModes {
			b.Run(sz.name+"/"+mode, func(b *testing.B) {
				r := benchRepo(b, mode)
				key := "data/rs0/s1/c1/00000000"
				if _, err := r.putObject(ctx, key, KindChunk, payload); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(payload)))
				for b.Loop() {
					got, _, err := r.getObject(ctx, key, KindChunk)
					if err != nil || len(got) != len(payload) {
						b.Fatal(fmt.Errorf("get: %d bytes, %v", len(got), err))
					}
				}
			})
		}
	}
}

// BenchmarkEncodeOnly is the CPU cost of the envelope alone (no store), at
// each zstd level.
func BenchmarkEncodeOnly(b *testing.B) {
	for _, sz := range benchSizes {
		payload := benchPayload(sz.size)
		codecs := []struct {
			name string
			c    *codec
		}{{"plain", &codec{}}}
		for _, l := range Levels {
			zl, _ := zstdLevel(l)
			codecs = append(codecs, struct {
				name string
				c    *codec
			}{"zstd-" + l, &codec{compress: true, level: zl}})
		}
		for _, c := range codecs {
			b.Run(sz.name+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(len(payload)))
				var n int
				for b.Loop() {
					obj, err := c.c.encode(KindChunk, payload)
					if err != nil {
						b.Fatal(err)
					}
					n = len(obj)
				}
				b.ReportMetric(float64(n)/float64(len(payload)), "stored/plain")
			})
		}
	}
}
