package agent

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/drill"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/runs"
)

// driller runs restore drills (drills.*): right after each snapshot the
// agent sees appear, one to that snapshot's consistent point (compared
// with the live source, it records the reference checksums there), and
// every drills.every a round of drills.points. Every drill is recorded in
// the repository by drill.Run and as a run (metrics, drill_failed); a
// drill that fails never stops capture.
type driller struct {
	w        *writer
	cfg      config.Drills
	parallel int
	log      *slog.Logger
	now      func() time.Time
	runs     *runs.Recorder
	poll     time.Duration
}

func (a *Agent) driller(w *writer) *driller {
	return &driller{w: w, cfg: a.Config.Drills, parallel: a.Config.Snapshot.Parallel, log: a.Log, now: time.Now,
		runs: a.runs, poll: min(max(a.Config.Drills.Every.Std()/4, time.Second), 10*time.Second)}
}

// run drills until ctx ends.
func (d *driller) run(ctx context.Context) error {
	if d.cfg.Every <= 0 {
		return nil
	}
	if !d.w.canRead {
		d.log.Warn("drills off: the repository is encrypted and the agent has no identity to restore from it (set `identity:`)")
		return nil
	}
	if _, err := restore.NewMapper(d.cfg.NS, nil); err != nil {
		d.log.Error("drills off: drills.ns is not valid", "err", err)
		return nil
	}
	seen := d.newestSnapshot(ctx) // snapshots taken before the agent started are not drilled at their point
	lastRound := d.lastRound(ctx)
	for {
		if id, end, ok := d.newSnapshot(ctx, seen); ok {
			seen = id
			d.drill(ctx, drill.Request{To: end, Snapshot: id, Include: d.cfg.NS, Record: true})
		}
		if d.now().Sub(lastRound) >= d.cfg.Every.Std() {
			lastRound = d.now()
			for _, p := range d.cfg.Points {
				d.drill(ctx, drill.Request{To: p, Include: d.cfg.NS, Record: true})
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d.poll):
		}
	}
}

// drill runs one drill into the scratch deployment and records the run.
func (d *driller) drill(ctx context.Context, req drill.Request) {
	if ctx.Err() != nil {
		return
	}
	started := time.Now()
	t, err := restore.Connect(ctx, d.cfg.Scratch.Reveal(), restore.DefaultConnectTimeout)
	var res drill.Result
	if err == nil {
		res, err = drill.Run(ctx, drill.Deps{Repo: d.w.repo, Scratch: t.Client, Source: d.w.src, Parallel: d.parallel,
			Log: d.log, Now: d.now}, req)
		t.Close(ctx)
	}
	switch {
	case ctx.Err() != nil:
		return // stopped: neither a success nor a failure
	case errors.Is(err, restore.ErrOutsideWindows):
		d.log.Info("drill skipped: nothing is restorable yet", "to", req.To, "err", err)
		return
	case err != nil:
		d.log.Error("restore drill could not run", "to", req.To, "err", err)
	case !res.Passed():
		err = errors.New(res.Summary())
		d.log.Error("restore drill FAILED", "summary", res.Summary())
	default:
		d.log.Info("restore drill passed", "summary", res.Summary(), "against", res.Against,
			"seconds", res.Seconds, "rto_seconds_per_gb", res.RTO)
	}
	d.runs.Record(runs.Drill, started, err)
}

// newestSnapshot is the id of the shard's newest snapshot, "" if none or
// the listing failed.
func (d *driller) newestSnapshot(ctx context.Context) string {
	refs, err := d.w.repo.ListSnapshots(ctx, d.w.shard)
	if err != nil || len(refs) == 0 {
		return ""
	}
	return refs[len(refs)-1].ID
}

// newSnapshot reports a snapshot newer than seen, with its consistent
// point as a drill's --to.
func (d *driller) newSnapshot(ctx context.Context, seen string) (id, end string, ok bool) {
	id = d.newestSnapshot(ctx)
	if id == "" || id == seen {
		return "", "", false
	}
	m, err := d.w.repo.ReadManifest(ctx, d.w.shard, id)
	if err != nil {
		d.log.Warn("read the new snapshot's manifest failed; its point is not drilled", "snapshot", id, "err", err)
		return id, "", false
	}
	return id, m.End.String(), true
}

// lastRound is when the newest recorded drill started, so that a restarted
// agent does not drill again at once.
func (d *driller) lastRound(ctx context.Context) time.Time {
	refs, err := d.w.repo.ListDrillResults(ctx, d.w.shard)
	if err != nil || len(refs) == 0 {
		return time.Time{}
	}
	return refs[len(refs)-1].Started
}
