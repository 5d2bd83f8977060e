package restore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
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
	clock  bool          // restore to the RFC 3339 second of the mark, not its timestamp
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
	cases = append(cases, clockCases(t, fx, sh, rng.Perm(len(restorable)), restorable, 5)...)
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
			out = append(out, restoreCase{mark: m, kind: "whole", filter: oracle.Filter{Include: dbs}})
		case 1:
			out = append(out, restoreCase{mark: m, kind: "database", filter: oracle.Filter{Include: []string{db}}, onSrc: false})
		case 2:
			out = append(out, restoreCase{mark: m, kind: "collection", filter: oracle.Filter{Include: []string{ns.String()}}, onSrc: false})
		case 3:
			out = append(out, restoreCase{mark: m, kind: "renamed database", filter: oracle.Filter{Include: []string{db}, Rename: map[string]string{db: fx.srv.DB(k)}}, onSrc: true})
		case 4:
			out = append(out, restoreCase{mark: m, kind: "renamed collection", filter: oracle.Filter{Include: []string{ns.String()}, Rename: map[string]string{ns.String(): fx.srv.DB(k) + ".c" + k}}, onSrc: true})
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
	if c.clock {
		w, err := restore.ParseWhen(c.mark.TS.Time().Format(time.RFC3339))
		must(t, err)
		req.To = w
		c.kind += " (time)"
	}
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

// clockCases picks marks that are the last state of their second (the next
// oplog entry, read from the repository, is in a later second, or there is
// none: then the second ends at the last captured entry), so a restore to
// that RFC 3339 time must reproduce them.
func clockCases(t *testing.T, fx *fixture, sh catalog.Shard, order []int, restorable []oracle.Mark, n int) []restoreCase {
	t.Helper()
	var all []optime.Timestamp
	for _, tl := range sh.Timelines {
		for _, seg := range tl.Segments {
			es, err := fx.repo.ReadSegment(context.Background(), seg)
			must(t, err)
			for _, e := range es {
				ts, err := optime.OfEntry(e)
				must(t, err)
				all = append(all, ts)
			}
		}
	}
	dbs := workload.Databases(fx.cfg)
	var out []restoreCase
	for _, i := range order {
		if len(out) == n {
			break
		}
		m := restorable[i]
		j := sort.Search(len(all), func(k int) bool { return all[k].After(m.TS) })
		if j < len(all) && all[j].T == m.TS.T {
			continue
		}
		// The second must also start inside a window.
		if !sh.Windows[0].Contains(optime.Timestamp{T: m.TS.T}) && !sh.Windows[len(sh.Windows)-1].Contains(optime.Timestamp{T: m.TS.T}) {
			continue
		}
		out = append(out, restoreCase{mark: m, kind: "whole", clock: true, filter: oracle.Filter{Include: dbs}})
	}
	if len(out) == 0 {
		t.Fatal("no mark is the last state of its second: cannot test RFC 3339 restore points")
	}
	return out
}
