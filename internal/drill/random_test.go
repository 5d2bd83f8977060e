package drill_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/drill"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/retention"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// sim writes 40 days of a deployment by hand under an injected clock, as
// the retention test does: a segment an hour of inserts into one
// collection, a snapshot every six hours, and for the snapshots a drill
// found exact, a reference at its point (the model's checksum: document i
// is inserted at entry i).
type sim struct {
	t    *testing.T
	ctx  context.Context
	r    *repo.Repository
	now  time.Time
	ns   [2]string // db, collection
	tl   string
	prev optime.Timestamp
	ts   []optime.Timestamp
}

const simShard = "rs0"

func (s *sim) doc(n int) bson.Raw {
	raw, err := bson.Marshal(bson.D{{Key: "_id", Value: int64(n)}, {Key: "v", Value: fmt.Sprintf("document %d", n)}})
	must(s.t, err)
	return raw
}

func (s *sim) hour() {
	var es []bson.Raw
	for k := range 3 {
		ts := optime.Timestamp{T: uint32(s.now.Add(time.Duration(k) * 20 * time.Minute).Unix()), I: 1}
		e, err := bson.Marshal(bson.D{{Key: "ts", Value: bson.Timestamp{T: ts.T, I: ts.I}}, {Key: "t", Value: int64(1)},
			{Key: "op", Value: "i"}, {Key: "ns", Value: s.ns[0] + "." + s.ns[1]}, {Key: "o", Value: s.doc(len(s.ts))}})
		must(s.t, err)
		es = append(es, e)
		s.ts = append(s.ts, ts)
	}
	_, err := s.r.WriteSegmentAfter(s.ctx, simShard, s.tl, s.prev, es)
	must(s.t, err)
	s.prev, s.now = s.ts[len(s.ts)-1], s.now.Add(time.Hour)
}

// snapshot writes a snapshot consistent at the newest entry and, when ref,
// the reference a drill right after it would have recorded.
func (s *sim) snapshot(ref bool) {
	n := len(s.ts)
	id := repo.NewSnapshotID(s.now)
	var docs []bson.Raw
	h := sha256.New()
	var size int64
	for i := range n {
		docs = append(docs, s.doc(i))
		h.Write(docs[i])
		size += int64(len(docs[i]))
	}
	ch, err := s.r.WriteChunk(s.ctx, simShard, id, "c0", 0, docs)
	must(s.t, err)
	m := repo.Manifest{ID: id, Shard: simShard, Flavor: "mongodb", Start: s.ts[n-2], End: s.ts[n-1], Started: s.now, Finished: s.now,
		Collections: []repo.CollectionManifest{{DB: s.ns[0], Name: s.ns[1], UUID: "c0", Count: ch.Count, Bytes: ch.Bytes, Chunks: []repo.ChunkRef{ch}}}}
	must(s.t, s.r.WriteManifest(s.ctx, m))
	if ref {
		must(s.t, s.r.WriteDrillReference(s.ctx, repo.DrillReference{Shard: simShard, Point: m.End, Snapshot: id, Recorded: s.now,
			Sums: []repo.DrillSum{{Namespace: s.ns[0] + "." + s.ns[1], Count: int64(n), Bytes: size, SHA256: hex.EncodeToString(h.Sum(nil))}}}))
	}
}

// TestRandomDrillsOverFortyDays: 40 simulated days (injected clock) of
// capture, snapshots every six hours (every other one with a reference)
// and daily prunes with a 7-day window and tiers. Every day, a random
// drill's candidates are all inside a restore window and have a
// reference, and there is one whenever a snapshot with a reference is in
// a window; every tenth day a random drill restores into the real test
// server and is exact against its reference. Before any reference, and
// after the references are deleted, a random drill says "no reference for
// this point" and does not pass.
func TestRandomDrillsOverFortyDays(t *testing.T) {
	ctx := context.Background()
	url := "file://" + t.TempDir()
	st, err := storage.Open(ctx, url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	r, err := repo.Init(ctx, st, repo.InitOptions{Location: url, Now: func() time.Time { return start }})
	must(t, err)
	scratchSrv := testserver.Start(t)
	s := &sim{t: t, ctx: ctx, r: r, now: start, ns: [2]string{scratchSrv.DB("sim"), "c"}, tl: repo.NewTimelineID()}
	must(t, r.WriteTimeline(ctx, repo.TimelineInfo{Shard: simShard, ID: s.tl, Flavor: "mongodb", Started: s.now}))
	d := drill.Deps{Repo: r, Scratch: scratchSrv.Client(), Log: quiet, Now: func() time.Time { return s.now }, Rand: rand.New(rand.NewPCG(40, 18))}

	s.hour()
	s.snapshot(false)
	s.hour()
	res, err := drill.Run(ctx, d, drill.Request{To: drill.Random, Record: true})
	must(t, err)
	if res.Verdict != drill.NoReference || !strings.HasPrefix(res.Problem, drill.NoReferenceMsg) || res.Passed() {
		t.Fatalf("random drill without references: %s", res.Summary())
	}

	lock, err := r.Lock(ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "test"})
	must(t, err)
	policy := retention.Policy{RestoreWindow: 7 * 24 * time.Hour, Hourly: 4, Daily: 7, Weekly: 4, Monthly: 2}
	picked := map[optime.Timestamp]bool{}
	for day := 1; day <= 40; day++ {
		for h := range 24 {
			s.hour()
			if h%6 == 5 {
				s.snapshot(h%12 == 5)
			}
		}
		_, err := retention.Prune(ctx, r, lock, policy, s.now, quiet)
		must(t, err)
		cat, err := catalog.Load(ctx, r)
		must(t, err)
		_, points, err := drill.Candidates(ctx, r, cat, nil)
		must(t, err)
		if len(points) == 0 {
			t.Fatalf("day %d: no candidate, though a snapshot with a reference was taken today", day)
		}
		for _, pt := range points {
			if !slices.ContainsFunc(cat.Shards[0].Windows, func(w catalog.Window) bool { return w.Contains(pt) }) {
				t.Fatalf("day %d: candidate %s is in no restore window", day, pt)
			}
			picked[pt] = true
		}
		if day%10 != 0 {
			continue
		}
		must(t, lock.Unlock(ctx)) // a drill's restore reads under a shared lock
		res, err := drill.Run(ctx, d, drill.Request{To: drill.Random, Record: true})
		must(t, err)
		if res.Verdict != drill.Exact || res.Against != "reference" || !slices.Contains(points, res.Point) || res.Documents == 0 {
			t.Fatalf("day %d: random drill: %s (%d documents)", day, res.Summary(), res.Documents)
		}
		lock, err = r.Lock(ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "test"})
		must(t, err)
	}
	if len(picked) < 40 {
		t.Errorf("only %d distinct candidate points over 40 days", len(picked))
	}

	// Without references (deleted by hand), a random drill does not pass.
	refs, err := r.ListDrillReferences(ctx, simShard)
	must(t, err)
	for _, pt := range refs {
		must(t, r.DeleteDrillRecord(ctx, repo.DrillPrefix(simShard)+"ref/"+pt.Key()))
	}
	must(t, lock.Unlock(ctx))
	res, err = drill.Run(ctx, d, drill.Request{To: drill.Random})
	must(t, err)
	if res.Verdict != drill.NoReference || res.Passed() {
		t.Fatalf("random drill after the references were deleted: %s", res.Summary())
	}
}
