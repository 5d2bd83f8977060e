package retention_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/retention"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/verify"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestFortyDays runs 40 simulated days of capture (a segment an hour, a
// snapshot every six hours, a gap on day 25) with a 7-day window and
// hourly/daily/weekly/monthly tiers, pruning after every day. After every
// prune each promised restore point must still be whole; every tenth day
// its data is read back and checked against the model; the oplog kept must
// stop growing once the window is full. At the end, promised points are
// restored into the real test server and compared with the model.
func TestFortyDays(t *testing.T) {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	s := newSim(t, start, 3)
	p := retention.Policy{RestoreWindow: 7 * 24 * time.Hour, Hourly: 4, Daily: 7, Weekly: 4, Monthly: 2}
	lock, err := s.r.Lock(s.ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "test"})
	must(t, err)
	defer lock.Unlock(context.Background())
	oplogAt := map[int]int64{}
	var res retention.Result
	for day := 1; day <= 40; day++ {
		if day == 25 { // capture was down and the oplog rolled over
			s.now = s.now.Add(6 * time.Hour)
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
		if res, err = retention.Prune(s.ctx, s.r, lock, p, s.now, quiet); err != nil {
			t.Fatalf("day %d: prune: %v", day, err)
		}
		cat := s.catalog()
		for _, pt := range promisedPoints(res) {
			if err := s.checkStructure(cat, pt); err != nil {
				t.Fatalf("day %d: promised %v", day, err)
			}
			if day%10 == 0 {
				if err := s.checkData(cat, pt); err != nil {
					t.Fatalf("day %d: promised %v", day, err)
				}
			}
		}
		if day%10 == 0 {
			rep, err := verify.Run(s.ctx, s.r, verify.Options{ReadData: true})
			must(t, err)
			if !rep.Healthy() || len(rep.Findings) > 0 {
				t.Fatalf("day %d: verify after prune: %+v", day, rep.Findings)
			}
		}
		oplogAt[day] = s.storedBytes("oplog/")
		if day%5 == 0 {
			t.Logf("day %2d: %d promised points; %d bytes stored (oplog %d); pruned %d snapshots, %d segments; copied %d segments",
				day, len(promisedPoints(res)), s.storedBytes(""), oplogAt[day], res.DeletedSnapshots, res.DeletedSegments, res.CopiedSegments)
		}
	}
	// Once the window is full (day 8 on) the oplog kept is the window plus
	// the tiers' copy ranges: it must not grow with the days.
	if oplogAt[40] > oplogAt[15]*13/10 {
		t.Fatalf("oplog bytes grew from %d (day 15) to %d (day 40): retention does not bound it", oplogAt[15], oplogAt[40])
	}
	restorePromised(t, s, res)
}

// restorePromised restores the oldest promised point (a tier snapshot), the
// start of the restore window and the newest point into the real server and
// checks each holds exactly the documents the model says.
func restorePromised(t *testing.T, s *sim, res retention.Result) {
	pts := promisedPoints(res)
	oldest, newest := pts[0], pts[0]
	var windowStart optime.Timestamp
	for _, d := range res.Decisions {
		for _, pr := range d.Promises {
			if pr.Rule == "restore window" && (windowStart.IsZero() || pr.From.After(windowStart)) {
				windowStart = pr.From
			}
		}
	}
	for _, pt := range pts {
		if pt.Before(oldest) {
			oldest = pt
		}
		if pt.After(newest) {
			newest = pt
		}
	}
	srv := testserver.Start(t)
	cat := s.catalog()
	for i, pt := range []optime.Timestamp{oldest, windowStart, newest} {
		plan, err := restore.Build(cat, restore.Request{To: restore.When{TS: pt},
			Rename: map[string]string{"simdb": srv.DB("sim")}})
		must(t, err)
		if _, err := restore.Execute(s.ctx, s.r, srv.Client(), plan, restore.Options{Drop: true, Log: quiet}); err != nil {
			t.Fatalf("restore promised point %s: %v", pt, err)
		}
		coll := srv.Client().Database(srv.DB("sim")).Collection("c")
		n, err := coll.CountDocuments(s.ctx, bson.D{})
		must(t, err)
		over, err := coll.CountDocuments(s.ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: int64(s.want(pt))}}}})
		must(t, err)
		if n != int64(s.want(pt)) || over != 0 {
			t.Fatalf("restored point %d (%s): %d documents (%d too new), want %d", i, pt, n, over, s.want(pt))
		}
		t.Logf("restored promised point %s (%s) from snapshot %s: %d documents, as the model says",
			pt, pt.Time().Format(time.RFC3339), plan.Snapshot.ID, n)
	}
}
