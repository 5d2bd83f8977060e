package restore

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// buildCluster plans a sharded cluster's restore to one cluster time T,
// merged into one deployment: T must be at most the cluster's last
// restorable point (the least, over its shards, of how far each one's
// windows reach: its covered-through time on its newest timeline), and
// every shard is planned to T on its own (its newest snapshot ending at or
// before T on a timeline that reaches T) as a Part. The plan then holds
// every shard's collections, one per namespace, with the chunks of all the
// shards that hold it. The config server's shard is not restored: it holds
// routing metadata, not user data (an 8.0 config shard, which does hold
// user data, is among cat.Cluster and restored as a shard).
func buildCluster(cat catalog.Catalog, req Request) (Plan, error) {
	if req.WithUsersAndRoles {
		return Plan{}, fmt.Errorf("plan restore: %w", invalid("with_users_and_roles",
			"a sharded cluster's users and roles live on its config server, which a cluster restore does not read yet; restore without it and create the users on the target"))
	}
	target, err := clusterTarget(cat, req.To)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Shard: strings.Join(cat.Cluster, ","), Request: req.To, Target: target}
	at := When{TS: target, Text: req.To.Text}
	for _, id := range cat.Cluster {
		sh, _ := cat.Shard(id)
		sh.Windows = sh.Reach()
		part, err := buildShard(sh, at)
		if err != nil {
			return Plan{}, fmt.Errorf("shard %s: %w", id, err)
		}
		p.Parts = append(p.Parts, part)
	}
	if err := p.mergeParts(); err != nil {
		return Plan{}, err
	}
	return p, nil
}

// clusterTarget is the cluster time a restore goes to: when's timestamp,
// the cluster's last restorable point for latest (or for a wall-clock
// second that holds it). A point after it, or a shard with no window at
// all, is refused naming the shard.
func clusterTarget(cat catalog.Catalog, when When) (optime.Timestamp, error) {
	var least optime.Timestamp
	holder := ""
	for _, id := range cat.Cluster {
		sh, _ := cat.Shard(id)
		ws := sh.Reach()
		if len(ws) == 0 {
			return optime.Zero, fmt.Errorf("%w: shard %s of the cluster has no restore window yet (it needs a snapshot and the oplog after it); take a snapshot of shard %s and run `rewind list` to check",
				ErrOutsideWindows, id, id)
		}
		var reach optime.Timestamp
		for _, w := range ws {
			if w.To.After(reach) {
				reach = w.To
			}
		}
		if holder == "" || reach.Before(least) {
			least, holder = reach, id
		}
	}
	t := when.TS
	switch {
	case when.Latest, when.Clock && t.After(least) && t.T == least.T:
		return least, nil
	case t.After(least):
		return optime.Zero, fmt.Errorf("%w: %s is after the cluster's last restorable point %s (%s): shard %s's oplog is known complete only through it; choose an earlier point or wait for its capture to catch up, and run `rewind list` to see the cluster windows",
			ErrOutsideWindows, when, least.Time().Format("2006-01-02T15:04:05Z"), least, holder)
	}
	return t, nil
}

// mergeParts fills the plan from its parts: one manifest holding every
// shard's collections (a namespace several shards hold is one collection,
// loaded from all their chunks, with the first shard's options and
// indexes) and views, the snapshot range that spans them, the window they
// share, and all their segments.
func (p *Plan) mergeParts() error {
	var ids []string
	var m repo.Manifest
	colls := map[Namespace]int{}
	views := map[Namespace]bool{}
	p.Window = catalog.Window{Shard: p.Shard}
	for i, part := range p.Parts {
		s := part.Snapshot
		ids = append(ids, part.Shard+":"+s.ID)
		if i == 0 || s.Start.Before(m.Start) {
			m.Start = s.Start
		}
		if s.End.After(m.End) {
			m.End = s.End
		}
		if part.Window.From.After(p.Window.From) {
			p.Window.From = part.Window.From
		}
		if i == 0 || part.Window.To.Before(p.Window.To) {
			p.Window.To = part.Window.To
		}
		for _, c := range s.Manifest.Collections {
			ns := Namespace{c.DB, c.Name}
			if j, ok := colls[ns]; ok {
				mc := &m.Collections[j]
				mc.Chunks = append(mc.Chunks, c.Chunks...)
				mc.Count += c.Count
				mc.Bytes += c.Bytes
				continue
			}
			c.Chunks = slices.Clone(c.Chunks)
			colls[ns] = len(m.Collections)
			m.Collections = append(m.Collections, c)
		}
		for _, v := range s.Manifest.Views {
			if ns := (Namespace{v.DB, v.Name}); !views[ns] {
				views[ns] = true
				m.Views = append(m.Views, v)
			}
		}
		p.Segments = append(p.Segments, part.Segments...)
		switch {
		case p.Flavor == "":
			p.Flavor = part.Flavor
		case part.Flavor != "" && part.Flavor != p.Flavor:
			return fmt.Errorf("plan restore: shard %s was captured from %s and shard %s from %s: a cluster restore replays one flavor",
				p.Parts[0].Shard, p.Flavor, part.Shard, part.Flavor)
		}
	}
	m.ID, m.Shard, m.Flavor = strings.Join(ids, " "), p.Shard, string(p.Flavor)
	p.Snapshot = catalog.NewSnapshot(m)
	p.Window.Snapshot = m.ID
	p.ReplayFrom = m.Start
	return nil
}
