package retention_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/retention"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/verify"
)

// failingStore fails every Delete after the first n: a prune killed
// halfway.
type failingStore struct {
	storage.Store
	left atomic.Int64
}

var errKilled = errors.New("killed")

func (f *failingStore) Delete(ctx context.Context, key string) error {
	if f.left.Add(-1) < 0 && strings.HasPrefix(key, "locks/") == false {
		return errKilled
	}
	return f.Store.Delete(ctx, key)
}

// TestInterruptedPrune stops a prune after n deletions, for several n, and
// checks the repository verify sees is healthy and every point the policy
// promised is still whole; a second prune then finishes the job.
func TestInterruptedPrune(t *testing.T) {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	s := newSim(t, start, 3)
	for day := 1; day <= 12; day++ {
		if day == 6 {
			s.now = s.now.Add(3 * time.Hour)
			must(t, s.r.RecordGap(s.ctx, repo.Gap{Shard: shard, Before: s.ts[len(s.ts)-1],
				After: optime.Timestamp{T: uint32(s.now.Unix()), I: 1}, Detected: s.now}))
			s.newTimeline()
		}
		for h := 0; h < 24; h++ {
			s.hour()
			if h%6 == 5 {
				s.snapshot()
			}
		}
	}
	p := retention.Policy{RestoreWindow: 3 * 24 * time.Hour, Daily: 3, Weekly: 1}
	plan, err := retention.Plan(s.ctx, s.r, p, s.now)
	must(t, err)
	src := strings.TrimPrefix(s.url, "file://")
	for _, n := range []int64{0, 1, 3, 10, 30, 60, 100} {
		t.Run(fmt.Sprint("after ", n, " deletions"), func(t *testing.T) {
			dir := t.TempDir()
			must(t, os.CopyFS(dir, os.DirFS(src)))
			c := s.reopen(t, "file://"+dir)
			fs := &failingStore{Store: c.store}
			fs.left.Store(n)
			wr, err := repo.Open(s.ctx, fs, repo.OpenOptions{})
			must(t, err)
			lock, err := wr.Lock(s.ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "prune"})
			must(t, err)
			_, err = retention.Prune(s.ctx, wr, lock, p, s.now, quiet)
			if !errors.Is(err, errKilled) {
				t.Fatalf("prune with %d deletions allowed: %v; want it killed", n, err)
			}
			_ = lock.Unlock(s.ctx)
			c.checkAfterPrune(t, plan)
			lock, err = c.r.Lock(s.ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "prune"})
			must(t, err)
			defer lock.Unlock(s.ctx)
			res, err := retention.Prune(s.ctx, c.r, lock, p, s.now, quiet)
			must(t, err)
			c.checkAfterPrune(t, plan)
			t.Logf("second prune deleted %d snapshots, %d segments, %d orphans", res.DeletedSnapshots, res.DeletedSegments, res.DeletedOrphans)
		})
	}
}

// reopen returns a sim over a copy of the repository, sharing the model.
func (s *sim) reopen(t *testing.T, url string) *sim {
	st, err := storage.Open(s.ctx, url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	r, err := repo.Open(s.ctx, st, repo.OpenOptions{})
	must(t, err)
	c := *s
	c.t, c.url, c.store, c.r = t, url, st, r
	return &c
}

// checkAfterPrune: verify finds the repository healthy (orphans are notes)
// and every promised point is whole, its data read back.
func (s *sim) checkAfterPrune(t *testing.T, plan retention.Result) {
	t.Helper()
	rep, err := verify.Run(s.ctx, s.r, verify.Options{ReadData: true})
	must(t, err)
	if !rep.Healthy() {
		t.Fatalf("verify after an interrupted prune: %+v", rep.Problems())
	}
	cat := s.catalog()
	for _, pt := range promisedPoints(plan) {
		if err := s.checkData(cat, pt); err != nil {
			t.Fatalf("promised %v", err)
		}
	}
}

// TestPruneConcurrent prunes again and again while capture appends
// segments and snapshots, and while readers (shared locks, as restore and
// verify take) restore random points of the windows they list. A reader
// must never find a listed point broken; at the end every promised point
// must be whole.
func TestPruneConcurrent(t *testing.T) {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	s := newSim(t, start, 2)
	for h := 0; h < 24*4; h++ {
		s.hour()
		if h%6 == 5 {
			s.snapshot()
		}
	}
	p := retention.Policy{RestoreWindow: 24 * time.Hour, Hourly: 2, Daily: 2, Grace: time.Hour}
	var mu sync.Mutex // guards the model (s.ts, s.now)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
		cancel()
	}
	var prunes, reads, refused atomic.Int64
	wg.Add(1)
	go func() { // capture: model first, then the object
		defer wg.Done()
		for h := 0; ctx.Err() == nil; h++ {
			mu.Lock()
			s.hour()
			if h%6 == 5 {
				s.snapshot()
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for rd := 0; rd < 2; rd++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, seed))
			for ctx.Err() == nil {
				if err := readOnce(ctx, s, &mu, rng); err != nil {
					if ctx.Err() == nil { // not just the end of the test
						fail(err)
					}
					return
				}
				reads.Add(1)
			}
		}(uint64(rd))
	}
	lock, err := s.r.Lock(s.ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "agent", SettleDelay: 10 * time.Millisecond})
	must(t, err)
	defer lock.Unlock(context.Background())
	var last retention.Result
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		mu.Lock()
		now := s.now
		mu.Unlock()
		res, err := retention.Prune(ctx, s.r, lock, p, now, quiet)
		switch {
		case errors.Is(err, repo.ErrLocked):
			refused.Add(1) // a reader holds a shared lock: try again
		case err != nil && ctx.Err() == nil:
			fail(fmt.Errorf("prune: %w", err))
		case err == nil:
			prunes.Add(1)
			last = res
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d prunes (%d refused while readers read), %d reads, %d entries captured", prunes.Load(), refused.Load(), reads.Load(), len(s.ts))
	if prunes.Load() < 3 || reads.Load() < 3 {
		t.Fatalf("too little happened: %d prunes, %d reads", prunes.Load(), reads.Load())
	}
	cat := s.catalog()
	for _, pt := range promisedPoints(last) {
		if err := s.checkData(cat, pt); err != nil {
			t.Fatalf("promised by the last prune: %v", err)
		}
	}
}

// readOnce takes a shared lock, lists the windows and reads back a random
// point of a random window, checking it against the model.
func readOnce(ctx context.Context, s *sim, mu *sync.Mutex, rng *rand.Rand) error {
	lock, err := s.r.Lock(ctx, repo.LockOptions{Kind: repo.LockShared, Purpose: "restore", SettleDelay: 10 * time.Millisecond, Wait: 5 * time.Second})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("reader lock: %w", err)
	}
	defer lock.Unlock(context.Background())
	cat, err := catalog.Load(ctx, s.r)
	if err != nil {
		return fmt.Errorf("reader list: %w", err)
	}
	if len(cat.Shards) == 0 || len(cat.Shards[0].Windows) == 0 {
		return nil
	}
	ws := cat.Shards[0].Windows
	w := ws[rng.IntN(len(ws))]
	pt := w.From
	if rng.IntN(2) == 0 {
		pt = w.To
	}
	mu.Lock()
	model := *s
	model.ts = append([]optime.Timestamp(nil), s.ts...)
	mu.Unlock()
	if err := model.checkData(cat, pt); err != nil {
		return fmt.Errorf("reader: listed point broken: %w", err)
	}
	return nil
}
