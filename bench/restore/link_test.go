package restorebench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/storage/storagetest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// archiveKey is where the benchmark puts mongodump's archive in the bucket.
const archiveKey = "mongodump/bench.archive"

// BenchmarkOneCollectionOverLink restores one collection of ten when the
// backups live on object storage (versitygw's S3) behind a network link of
// REWIND_BENCH_LINK_MBPS megabytes per second (default 12.5, a 100 Mbit/s
// line), as an off-site copy would: rewind reads the collection's objects
// from its repository; mongorestore reads the mongodump archive streamed
// from the same bucket (`aws s3 cp s3://.../archive - | mongorestore
// --archive --nsInclude db.c`). Each restores into a fresh test server.
func BenchmarkOneCollectionOverLink(b *testing.B) {
	ctx := context.Background()
	f := setup(ctx, b)
	s3 := storagetest.StartS3(b)
	b.Setenv("AWS_ACCESS_KEY_ID", s3.AccessKey)
	b.Setenv("AWS_SECRET_ACCESS_KEY", s3.SecretKey)
	copyObjects(ctx, b, f.repoURL, s3.URL(), s3.Options())
	uploadArchive(ctx, b, f.archive, s3)

	mbps := linkMBps(b)
	endpoint, err := url.Parse(s3.Endpoint())
	if err != nil {
		b.Fatal(err)
	}
	l := benchtool.StartLink(b, endpoint.Host, mbps*1e6)
	remote := fmt.Sprintf("s3://%s?endpoint=http://%s&use_path_style=true&region=us-east-1", s3.Bucket, l.Addr())

	c := nearest(f.d, 5e6)
	ns := f.db + "." + collName(c)
	docs, size := len(f.d.colls[c]), f.d.bytesOf(c)
	b.ResetTimer()
	for range b.N {
		tgt := testserver.Start(b)
		before := l.Sent()
		rw := measure(ctx, b, "rewind restore --ns", f.rewind, "restore", "--repo", remote,
			"--target", tgt.URI(), "--to", "latest", "--ns", ns, "--parallel", fmt.Sprint(parallel))
		rwBytes := l.Sent() - before
		checkCounts(ctx, b, tgt, f, c)
		tgt.Kill()

		tgt = testserver.Start(b)
		before = l.Sent()
		mr := mongorestoreFrom(ctx, b, remote, s3.Options(), filepath.Join(f.tools, "mongorestore"), tgt, ns)
		mrBytes := l.Sent() - before
		checkCounts(ctx, b, tgt, f, c)
		tgt.Kill()

		b.Logf("one collection of %d over a %.1f MB/s link to S3: %s, %d documents, %.1f MiB:\n%s\n%s\nrewind/mongorestore time %.2f (mongorestore/rewind %.1fx)\nover the link: rewind %.1f MiB, mongorestore %.1f MiB",
			benchColls, mbps, ns, docs, mib(size), row(rw, docs, size), row(mr, docs, size),
			ratio(rw, mr), ratio(mr, rw), mib(rwBytes), mib(mrBytes))
		b.ReportMetric(ratio(mr, rw), "mongorestore/rewind")
	}
}

func linkMBps(b *testing.B) float64 {
	v := os.Getenv("REWIND_BENCH_LINK_MBPS")
	if v == "" {
		return 12.5
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		b.Fatalf("REWIND_BENCH_LINK_MBPS=%q: want megabytes per second, e.g. 12.5", v)
	}
	return f
}

// copyObjects copies every object of the repository at from to to: a
// repository holds no location, so the copy is the same repository.
func copyObjects(ctx context.Context, b *testing.B, from, to string, toOpts storage.Options) {
	src, err := storage.Open(ctx, from)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := storage.OpenWith(ctx, to, toOpts)
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	err = src.List(ctx, "", func(info storage.Info) error {
		r, err := src.Get(ctx, info.Key)
		if err != nil {
			return err
		}
		defer r.Close()
		return dst.Put(ctx, info.Key, r)
	})
	if err != nil {
		b.Fatalf("copy the repository to S3: %v", err)
	}
}

func uploadArchive(ctx context.Context, b *testing.B, path string, s3 *storagetest.S3Server) {
	st, err := storage.OpenWith(ctx, s3.URL(), s3.Options())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	fh, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	if err := st.Put(ctx, archiveKey, fh); err != nil {
		b.Fatalf("upload the archive: %v", err)
	}
}

// mongorestoreFrom streams the archive from the bucket at remote into
// mongorestore's standard input.
func mongorestoreFrom(ctx context.Context, b *testing.B, remote string, opts storage.Options, bin string, tgt *testserver.Server, ns string) run {
	st, err := storage.OpenWith(ctx, remote, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	rc, err := st.Get(ctx, archiveKey)
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	return benchtool.MeasureIn(ctx, b, "S3 | mongorestore --archive --nsInclude", rc, bin,
		"--quiet", "--uri", tgt.URI(), "--archive", "--nsInclude", ns)
}
