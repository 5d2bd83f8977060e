package restore

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
)

// CollectionPlan is one collection to load.
type CollectionPlan struct {
	Source, Target Namespace
	Manifest       repo.CollectionManifest
}

// ViewPlan is one view to create.
type ViewPlan struct {
	Source, Target Namespace
	Options        bson.Raw // viewOn, pipeline, collation; viewOn already renamed
}

// Plan is everything a restore will do, decided before any I/O.
type Plan struct {
	Shard    string
	Request  When
	Target   optime.Timestamp // replay every entry at or before this
	Window   catalog.Window
	Snapshot catalog.Snapshot
	// Flavor is how to replay: the flavor the timeline record names, else
	// the manifest's; "" when neither says (Prepare then takes the
	// repository's).
	Flavor source.Flavor

	Collections []CollectionPlan
	Views       []ViewPlan
	Users       []bson.Raw
	Roles       []bson.Raw

	// Replay entries with ReplayFrom <= ts <= Target from Segments; with
	// StartInData, ReplayFrom < ts <= Target.
	ReplayFrom optime.Timestamp
	// StartInData: the snapshot's data is sure to hold the effect of the
	// entry at ReplayFrom (its start; see startInData), so the replay
	// neither counts nor applies it: a snapshot taken while nothing wrote
	// needs no replay at all. Its segment is still read.
	StartInData bool
	Segments    []repo.SegmentInfo
	// Parts are a sharded cluster's shards, each planned to Target on its
	// own (its window, snapshot, ReplayFrom and Segments); nil for a
	// replica set. The plan itself then merges them: Snapshot's manifest
	// holds every shard's collections (chunks of one namespace from
	// several shards under one collection), Segments all their segments
	// (for the figures: the replay reads them per part, merged by ts).
	Parts []Plan

	Chunks       int   // objects to read for documents
	ChunkBytes   int64 // their plaintext bytes
	Documents    int64 // documents in those chunks
	SegmentBytes int64 // stored bytes of the segments

	Mapper Mapper
	// Filter and Merge are the request's (--filter parsed, --merge): a plan
	// with either is Staged.
	Filter bson.Raw
	Merge  Merge
	// Others are the shard's windows from other snapshots, to name a way
	// out when this snapshot's objects turn out missing or corrupt.
	Others []catalog.Window

	// Filled by Resolve, which reads the segments:
	Entries int64           // oplog entries to replay
	Late    []LateNamespace // namespaces the range writes that the snapshot does not hold
	// Orphans, for a cluster plan, says whether the load skips orphaned
	// documents (OrphansSkipped: ...) or not and why (OrphansNotSkipped:
	// ...); "" for a replica set. See prepareOrphans.
	Orphans string
	orphans *orphanFilter // nil when Orphans is not OrphansSkipped

	// only restricts a staged plan's documents, per source namespace, to
	// the _ids of a set (undo stages just the documents a range changed);
	// a namespace without a set is whole.
	only map[Namespace]idSet

	unmatched  []unmatched // names to look for in the oplog (see Resolve)
	droppedDBs []string    // selected source databases the range drops whole
	resolved   bool
}

// ErrOutsideWindows means the restore point is in no restore window.
var ErrOutsideWindows = errors.New("no restore window holds the restore point")

// Build plans a restore: the newest snapshot whose end is at or before the
// target on a timeline that reaches it, the segments from the snapshot's
// start to the target, and only the selected collections' chunks. A
// sharded cluster's repository (cat.Cluster) plans every shard to the one
// cluster time and merges them (see buildCluster).
func Build(cat catalog.Catalog, req Request) (Plan, error) {
	var p Plan
	var err error
	if len(cat.Cluster) > 0 {
		p, err = buildCluster(cat, req)
	} else {
		var sh catalog.Shard
		if sh, err = pickShard(cat); err == nil {
			p, err = buildShard(sh, req.To)
		}
	}
	if err != nil {
		return Plan{}, err
	}
	if p.Mapper, err = NewMapper(req.Include, req.Rename); err != nil {
		return Plan{}, err
	}
	p.Merge = req.Merge
	if req.Filter != "" {
		if p.Filter, err = ParseFilter("filter", req.Filter); err != nil {
			return Plan{}, err
		}
	}
	if err := p.selectNamespaces(req); err != nil {
		return Plan{}, err
	}
	for _, s := range p.Segments {
		p.SegmentBytes += s.Size
	}
	return p, nil
}

// buildShard plans one shard's part: its window, snapshot, segments and
// flavor, and its other windows for errors.
func buildShard(sh catalog.Shard, when When) (Plan, error) {
	w, target, err := pickWindow(sh, when)
	if err != nil {
		return Plan{}, err
	}
	snap, _ := sh.Snapshot(w.Snapshot)
	p := Plan{Shard: sh.ID, Request: when, Target: target, Window: w, Snapshot: snap, ReplayFrom: snap.Start,
		StartInData: startInData(snap.Manifest)}
	recorded := snap.Manifest.Flavor
	if tl, ok := sh.Timeline(w.Timeline); ok {
		if tl.Info != nil && tl.Info.Flavor != "" {
			recorded = tl.Info.Flavor
		}
		p.Segments = segmentsBetween(tl.Segments, snap.Start, target)
	}
	if recorded != "" {
		if p.Flavor, err = source.ParseFlavor(recorded); err != nil {
			return Plan{}, fmt.Errorf("plan restore: %w", err)
		}
	}
	for _, o := range sh.Windows {
		if o.Snapshot != snap.ID {
			p.Others = append(p.Others, o)
		}
	}
	return p, nil
}

// startInData reports whether a snapshot's data is sure to hold the
// effect of the oplog entry at its start, which is the newest entry logged
// before the copy began (snapshot.Take). It is on FerretDB: it logs a
// write's entry after the write's data change, and the copy reads every
// write already made (one node, no majority reads). It is not sure:
//   - on an empty oplog (FromEmptyOplog), whose start is a clock anchor:
//     an entry at it was logged after the anchor, maybe after the copy;
//   - on MongoDB, whose copy reads with readConcern "majority": the
//     newest entry may not be majority committed when the copy's read
//     begins, and the data the copy sees can lack it. The entry is then
//     replayed, idempotently, as before.
func startInData(m repo.Manifest) bool {
	return !m.FromEmptyOplog && m.Flavor == string(source.FerretDB)
}

func pickShard(cat catalog.Catalog) (catalog.Shard, error) {
	var with []catalog.Shard
	for _, sh := range cat.Shards {
		if len(sh.Windows) > 0 {
			with = append(with, sh)
		}
	}
	switch len(with) {
	case 0:
		return catalog.Shard{}, fmt.Errorf("%w: the repository has no restore window yet (it needs a snapshot and the oplog after it); take a snapshot and run `rewind list` to check", ErrOutsideWindows)
	case 1:
		return with[0], nil
	}
	ids := make([]string, len(with))
	for i, sh := range with {
		ids[i] = sh.ID
	}
	return catalog.Shard{}, fmt.Errorf("plan restore: the repository holds several shards (%s); restoring a sharded cluster is not supported yet", strings.Join(ids, ", "))
}

// pickWindow chooses the window with the newest snapshot that holds the
// restore point and returns the effective target.
func pickWindow(sh catalog.Shard, when When) (catalog.Window, optime.Timestamp, error) {
	if when.Latest {
		best := sh.Windows[0]
		for _, w := range sh.Windows[1:] {
			if w.To.After(best.To) || w.To == best.To && w.From.After(best.From) {
				best = w
			}
		}
		return best, best.To, nil
	}
	var best *catalog.Window
	target := when.TS
	for i := range sh.Windows {
		w := sh.Windows[i]
		t := when.TS
		// A wall-clock second that holds the window's last entry ends at
		// that entry: nothing later is captured yet.
		if when.Clock && t.After(w.To) && t.T == w.To.T {
			t = w.To
		}
		if w.Contains(t) && (best == nil || w.From.After(best.From)) {
			best, target = &sh.Windows[i], t
		}
	}
	if best == nil {
		return catalog.Window{}, target, outsideError(sh, when)
	}
	return *best, target, nil
}

func outsideError(sh catalog.Shard, when When) error {
	before, after := sh.Nearest(when.TS)
	var near []string
	if before != nil {
		near = append(near, "the last one before it is "+describeWindow(*before))
	}
	if after != nil {
		near = append(near, "the first one after it is "+describeWindow(*after))
	}
	return fmt.Errorf("%w: %s is in no restore window; %s; run `rewind list` to see the windows",
		ErrOutsideWindows, when, strings.Join(near, ", "))
}

func describeWindow(w catalog.Window) string {
	return fmt.Sprintf("%s (%s) .. %s (%s) from snapshot %s", w.From.Time().Format("2006-01-02T15:04:05Z"), w.From,
		w.To.Time().Format("2006-01-02T15:04:05Z"), w.To, w.Snapshot)
}

// segmentsBetween returns the segments holding entries in [from, to].
func segmentsBetween(segs []repo.SegmentInfo, from, to optime.Timestamp) []repo.SegmentInfo {
	var out []repo.SegmentInfo
	for _, s := range segs {
		if !s.Last.Before(from) && !s.First.After(to) {
			out = append(out, s)
		}
	}
	return out
}

// selectNamespaces fills collections, views, users and roles, and checks
// that every --ns and --rename names something in the snapshot and that no
// two sources land on one target.
func (p *Plan) selectNamespaces(req Request) error {
	man := p.Snapshot.Manifest
	matched := map[string]bool{}
	targets := newClaims(p.Mapper)
	for _, c := range man.Collections {
		if !p.Mapper.Match(c.DB, c.Name) {
			continue
		}
		src := Namespace{c.DB, c.Name}
		dst := p.Mapper.Target(c.DB, c.Name)
		if err := targets.claim(src, dst, false); err != nil {
			return err
		}
		p.markMatched(matched, src)
		p.Collections = append(p.Collections, CollectionPlan{Source: src, Target: dst, Manifest: c})
		p.Chunks += len(c.Chunks)
		p.ChunkBytes += c.Bytes
		p.Documents += c.Count
	}
	for _, v := range man.Views {
		if !p.Mapper.Match(v.DB, v.Name) {
			continue
		}
		src := Namespace{v.DB, v.Name}
		dst := p.Mapper.Target(v.DB, v.Name)
		if err := targets.claim(src, dst, false); err != nil {
			return err
		}
		p.markMatched(matched, src)
		p.Views = append(p.Views, ViewPlan{Source: src, Target: dst, Options: p.viewOptions(v)})
	}
	sort.Slice(p.Collections, func(a, b int) bool {
		return p.Collections[a].Source.String() < p.Collections[b].Source.String()
	})
	if err := p.checkMatched(req, matched); err != nil {
		return err
	}
	if req.WithUsersAndRoles {
		p.Users = selectByDB(man.Users, p.Mapper)
		p.Roles = selectByDB(man.Roles, p.Mapper)
	}
	return nil
}

// markMatched records which patterns and renames a namespace satisfies.
func (p *Plan) markMatched(matched map[string]bool, ns Namespace) {
	matched[ns.DB] = true
	matched[ns.String()] = true
}

// checkMatched checks every --ns and --rename names something. One the
// snapshot does not hold may name a collection created after it: Resolve
// looks for it in the oplog being replayed. Without oplog, it is an error now.
func (p *Plan) checkMatched(req Request, matched map[string]bool) error {
	for _, pat := range req.Include {
		ns := splitNS(pat)
		key := ns.DB
		if ns.Coll != "" && ns.Coll != "*" {
			key = ns.String()
		}
		if !matched[key] {
			p.unmatched = append(p.unmatched, unmatched{field: "ns", name: pat, key: key})
		}
	}
	for from := range req.Rename {
		ns := splitNS(from)
		selectable := ns.Coll != "" && p.Mapper.Match(ns.DB, ns.Coll) || ns.Coll == "" && (len(p.Mapper.include) == 0 || matchDB(p.Mapper, ns.DB))
		if !selectable {
			return fmt.Errorf("plan restore: %w", invalid("rename", "%s: %s is not among the namespaces being restored (add it with %s)", from, from, Field("ns")))
		}
		if !matched[from] {
			p.unmatched = append(p.unmatched, unmatched{field: "rename", name: from, key: from})
		}
	}
	sort.Slice(p.unmatched, func(a, b int) bool {
		ua, ub := p.unmatched[a], p.unmatched[b]
		return ua.field < ub.field || ua.field == ub.field && ua.name < ub.name
	})
	if len(p.unmatched) > 0 && len(p.Segments) == 0 {
		return p.unmatchedError()
	}
	// A snapshot that holds no collection is no error: a new deployment's
	// base snapshot is empty and every collection comes from the oplog
	// (Resolve lists them in Late).
	return nil
}

// unmatched is a --ns or --rename name the snapshot does not hold.
type unmatched struct{ field, name, key string }

func (p *Plan) unmatchedError() error {
	u := p.unmatched[0]
	return fmt.Errorf("plan restore: %w", invalid(u.field, "%s matches nothing in snapshot %s (it holds %s) nor in the oplog replayed up to %s; check the name with `rewind list`",
		u.name, p.Snapshot.ID, p.snapshotDBs(), p.Target))
}

// snapshotDBs says which databases the snapshot holds, for errors.
func (p *Plan) snapshotDBs() string {
	set := map[string]bool{}
	for _, c := range p.Snapshot.Manifest.Collections {
		set[c.DB] = true
	}
	var out []string
	for db := range set {
		out = append(out, db)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "no database"
	}
	return "databases " + strings.Join(out, ", ")
}

// viewOptions renames viewOn when the collection it reads was renamed
// within the view's target database.
func (p *Plan) viewOptions(v repo.ViewManifest) bson.Raw {
	on, ok := v.Options.Lookup("viewOn").StringValueOK()
	if !ok {
		return v.Options
	}
	dst := p.Mapper.Target(v.DB, on)
	if dst.Coll == on {
		return v.Options
	}
	var d bson.D
	for _, e := range mustElements(v.Options) {
		val := any(e.Value())
		if e.Key() == "viewOn" {
			val = dst.Coll
		}
		d = append(d, bson.E{Key: e.Key(), Value: val})
	}
	raw, err := bson.Marshal(d)
	if err != nil {
		return v.Options
	}
	return raw
}

func mustElements(r bson.Raw) []bson.RawElement {
	els, _ := r.Elements()
	return els
}

// selectByDB keeps users or roles defined in a selected database (all of
// them, admin's included, for a whole-deployment restore).
func selectByDB(docs []bson.Raw, m Mapper) []bson.Raw {
	var out []bson.Raw
	for _, d := range docs {
		db, _ := d.Lookup("db").StringValueOK()
		if len(m.include) == 0 || matchDB(m, db) {
			out = append(out, d)
		}
	}
	return out
}

func matchDB(m Mapper, db string) bool {
	for _, p := range m.include {
		if p.DB == db {
			return true
		}
	}
	return false
}
