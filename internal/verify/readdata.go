package verify

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/rewind-backup/rewind/internal/repo"
)

// job is one object to read back.
type job struct {
	key   string
	size  int64 // stored bytes
	plain int64 // plaintext bytes it holds in memory while read (estimated for segments)
	read  func(context.Context) error
	dmg   damage
	about string
}

// readData reads every segment and every chunk a manifest names: each is
// decrypted, decompressed and checked (CRC-32C, SHA-256, framing, the
// manifest's checksum and count, the segment's first and last ts). A
// segment's index is read with it and compared with what its entries give.
func (rep *Report) readData(ctx context.Context, r *repo.Repository, st *shardState, o Options) error {
	var jobs []job
	var indexed []repo.SegmentInfo // segments whose index is listed, by job
	for _, tl := range st.history.Timelines {
		for _, s := range tl.Segments {
			jobs = append(jobs, job{key: s.Key, size: s.Size, dmg: damage{segment: &s}, about: "oplog segment of timeline " + s.Timeline})
			if info, ok := st.keys[repo.IndexKey(s.Key)]; ok {
				indexed = append(indexed, s)
				rep.ReadBytes += info.Size
			} else {
				indexed = append(indexed, repo.SegmentInfo{})
			}
		}
	}
	indexErrs := make([]error, len(jobs))
	for i := range jobs {
		s, checkIndex := jobs[i].dmg.segment, indexed[i].Key != ""
		jobs[i].read = func(ctx context.Context) error {
			entries, err := r.ReadSegment(ctx, *s)
			if err == nil && checkIndex {
				indexErrs[i] = r.CheckIndex(ctx, *s, entries) // each job writes its own slot
			}
			return err
		}
	}
	for _, m := range st.manifests {
		for _, c := range m.Collections {
			for _, ch := range c.Chunks {
				if _, bad := st.damaged[ch.Key]; bad {
					continue
				}
				ch := ch
				jobs = append(jobs, job{key: ch.Key, plain: ch.Bytes, dmg: damage{snapshot: m.ID},
					about: fmt.Sprintf("chunk of %s.%s in snapshot %s", c.DB, c.Name, m.ID),
					read:  func(ctx context.Context) error { _, err := r.ReadChunk(ctx, ch); return err }})
			}
		}
	}
	for i := range jobs {
		jobs[i].size = st.keys[jobs[i].key].Size
		rep.ReadBytes += jobs[i].size
		if jobs[i].dmg.segment != nil {
			jobs[i].plain = min(repo.MaxObjectSize, segmentExpansion*jobs[i].size)
		}
	}
	start := time.Now()
	errs := runJobs(ctx, jobs, o.Parallel, o.ReadMemory)
	rep.ReadTime += time.Since(start)
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, err := range errs {
		if err == nil {
			continue
		}
		j := jobs[i]
		rep.add(Finding{Severity: Problem, Kind: kindOf(err), Object: j.key,
			Message: fmt.Sprintf("%s: %v", j.about, err)})
		st.damaged[j.key] = j.dmg
	}
	rep.readDrillRecords(ctx, r, st, o)
	for i, err := range indexErrs {
		if err != nil {
			rep.add(Finding{Severity: Problem, Kind: kindOf(err), Object: repo.IndexKey(jobs[i].key),
				Message: fmt.Sprintf("index of oplog segment %s: %v; no restore point depends on it, but `rewind oplog --summary` would count its range wrong: delete this object and summaries read the segment itself", jobs[i].key, err)})
		}
	}
	return nil
}

// segmentExpansion is how many times its stored size a segment's
// plaintext is assumed to take, for the memory budget: zstd rarely packs
// oplog entries tighter than that.
const segmentExpansion = 10

// runJobs reads with parallel workers, holding at most budget bytes of
// plaintext at once (a job larger than the budget runs alone), and returns
// each job's error.
func runJobs(ctx context.Context, jobs []job, parallel int, budget int64) []error {
	errs := make([]error, len(jobs))
	mem := semaphore.NewWeighted(budget)
	next := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for i := range next {
				w := min(max(jobs[i].plain, 1), budget)
				if err := mem.Acquire(ctx, w); err != nil {
					errs[i] = err
					continue
				}
				errs[i] = jobs[i].read(ctx)
				mem.Release(w)
			}
		})
	}
	for i := range jobs {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	return errs
}

// readDrillRecords reads back every drill record of the shard. None is
// needed to restore; a damaged reference only leaves its point without
// one, so later drills to it say "no reference for this point".
func (rep *Report) readDrillRecords(ctx context.Context, r *repo.Repository, st *shardState, o Options) {
	var jobs []job
	prefix := repo.DrillPrefix(st.id)
	for key, info := range st.keys {
		if strings.HasPrefix(key, prefix) {
			key := key
			jobs = append(jobs, job{key: key, size: info.Size, plain: segmentExpansion * info.Size, read: func(ctx context.Context) error { return r.ReadDrillRecord(ctx, key) }})
			rep.ReadBytes += info.Size
		}
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].key < jobs[j].key })
	for i, err := range runJobs(ctx, jobs, o.Parallel, o.ReadMemory) {
		if err != nil && ctx.Err() == nil {
			rep.add(Finding{Severity: Problem, Kind: kindOf(err), Object: jobs[i].key,
				Message: fmt.Sprintf("drill record: %v; no restore point depends on it: delete it, and drills to its point find no reference until a new one is recorded", err)})
		}
	}
}
