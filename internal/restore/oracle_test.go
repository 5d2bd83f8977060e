package restore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// envInt reads an integer test knob, or returns def.
func envInt(t *testing.T, name string, def int64) int64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: want an integer", name, v)
	}
	return n
}

// restoreCase is one restore point and what to restore.
type restoreCase struct {
	mark   oracle.Mark
	kind   string
	filter oracle.Filter // what the oracle compares (source names, rename)
	onSrc  bool          // restore into the source server (renamed), else the second server
}

// TestOracle captures a workload with snapshots taken while it runs, then
// restores to many points chosen at random across the window (whole
// deployment, one database, one collection, renamed database or collection)
// and compares each with the oracle's mark: every one must be exact.
// REWIND_ORACLE_SEED replays a run; REWIND_ORACLE_POINTS sets how many.
func TestOracle(t *testing.T) {
	seed := uint64(envInt(t, "REWIND_ORACLE_SEED", time.Now().UnixNano()%1e9))
	points := int(envInt(t, "REWIND_ORACLE_POINTS", 50))
	t.Logf("oracle seed %d (REWIND_ORACLE_SEED=%d replays this run), %d restore points", seed, seed, points)
	fx := newFixture(t, fixtureOptions{seed: seed, ops: 600, snapshotsAt: []int{100, 350}, every: 1})
	ctx := context.Background()
	cat, err := catalog.Load(ctx, fx.repo)
	must(t, err)
	if len(cat.Shards) != 1 || len(cat.Shards[0].Windows) < 2 {
		t.Fatalf("want one shard with two windows, got %+v", cat.Shards)
	}
	sh := cat.Shards[0]
	var restorable, inCopy []oracle.Mark
	second := sh.Snapshots[1]
	for _, m := range fx.marks {
		for _, w := range sh.Windows {
			if w.Contains(m.TS) {
				restorable = append(restorable, m)
				break
			}
		}
		if !m.TS.Before(second.Start) && m.TS.Before(second.End) {
			inCopy = append(inCopy, m)
		}
	}
	t.Logf("%d marks, %d restorable, %d inside snapshot %s's copy (%s..%s); windows %+v",
		len(fx.marks), len(restorable), len(inCopy), second.ID, second.Start, second.End, sh.Windows)
	if len(restorable) < 10 {
		t.Fatalf("only %d marks are restorable", len(restorable))
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	cases := pickCases(fx, rng, restorable, inCopy, points)
	srv2 := testserver.Start(t)
	start := time.Now()
	for i, c := range cases {
		runCase(t, fx, srv2, i, c)
	}
	el := time.Since(start)
	t.Logf("%d restores exact in %s (%s each)", len(cases), el.Round(time.Millisecond), (el / time.Duration(len(cases))).Round(time.Millisecond))
}

func pickCases(fx *fixture, rng *rand.Rand, restorable, inCopy []oracle.Mark, n int) []restoreCase {
	dbs := workload.Databases(fx.cfg)
	nss := workload.Namespaces(fx.cfg)
	var out []restoreCase
	for i := range n {
		m := restorable[rng.IntN(len(restorable))]
		if i < len(inCopy) && i < 3 {
			m = inCopy[i] // a point inside a snapshot's copy is served by the one before
		}
		if i == 0 {
			m = restorable[len(restorable)-1]
		}
		db := dbs[rng.IntN(len(dbs))]
		ns := nss[rng.IntN(len(nss))]
		k := fmt.Sprintf("p%d", i)
		switch i % 5 {
		case 0:
			out = append(out, restoreCase{m, "whole", oracle.Filter{Include: dbs}, false})
		case 1:
			out = append(out, restoreCase{m, "database", oracle.Filter{Include: []string{db}}, false})
		case 2:
			out = append(out, restoreCase{m, "collection", oracle.Filter{Include: []string{ns.String()}}, false})
		case 3:
			out = append(out, restoreCase{m, "renamed database",
				oracle.Filter{Include: []string{db}, Rename: map[string]string{db: fx.srv.DB(k)}}, true})
		case 4:
			out = append(out, restoreCase{m, "renamed collection",
				oracle.Filter{Include: []string{ns.String()}, Rename: map[string]string{ns.String(): fx.srv.DB(k) + ".c" + k}}, true})
		}
	}
	return out
}

func runCase(t *testing.T, fx *fixture, srv2 *testserver.Server, i int, c restoreCase) {
	t.Helper()
	target := srv2
	if c.onSrc {
		target = fx.srv
	}
	req := restore.Request{To: at(c.mark.TS), Include: c.filter.Include, Rename: c.filter.Rename}
	if c.kind == "whole" {
		req.Include = nil
	}
	began := time.Now()
	p, rep, err := fx.restoreTo(t, target.Client(), req, false)
	if err != nil {
		t.Fatalf("point %d (%s at mark %d, %s): restore: %v", i, c.kind, c.mark.N, c.mark.TS, err)
	}
	if err := oracle.Compare(context.Background(), target.Client(), c.mark, c.filter); err != nil {
		t.Fatalf("point %d (%s at mark %d, %s, snapshot %s): %v", i, c.kind, c.mark.N, c.mark.TS, p.Snapshot.ID, err)
	}
	t.Logf("point %2d: %-18s mark %3d at %s from snapshot %s: %d docs, %d entries, exact (%s)",
		i, c.kind, c.mark.N, c.mark.TS, p.Snapshot.ID, rep.Documents, rep.Entries, time.Since(began).Round(time.Millisecond))
	var drop []string
	for _, col := range p.Collections {
		drop = append(drop, col.Target.DB)
	}
	dropDBs(t, target.Client(), drop...)
}
