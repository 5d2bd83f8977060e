package export

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
)

// Namespace is one collection or view of a State.
type Namespace struct {
	DB, Coll string
	View     bool
	// Options are as listCollections shows them: create's options changed
	// by the range's collMod and convertToCapped; a view's viewOn,
	// pipeline and collation.
	Options bson.Raw
	Indexes []bson.Raw // as listIndexes shows them, _id_ first; none for a view
	Count   int64      // documents
	Bytes   int64      // their BSON bytes

	// base is the snapshot collection whose documents the range did not
	// write are this namespace's (its lineage through renames); nil: none.
	base *restore.CollectionPlan
}

func (n Namespace) String() string { return n.DB + "." + n.Coll }

// State is a deployment at a restore point, computed from the repository
// alone (see the package doc): the collections and views as they were, and
// Each to stream one's documents. It reads what a restore.Plan names; the
// plan's lock must be held while it is used.
type State struct {
	Namespaces []Namespace  // sorted by name
	Entries    int64        // oplog entries replayed
	Replay     replay.Stats // what the replay did
	Held       int64        // documents the Memory held at the end: those the range wrote
	Pending    int          // transactions still open at the restore point (not applied)
	Snapshot   string       // the snapshot's id
	Target     optime.Timestamp

	plan    restore.Plan
	repo    *repo.Repository
	mem     *replay.Memory
	touched *touched
	held    map[string]heldStat // by snapshot collection ("db.coll")
	o       Options
}

// heldStat counts the snapshot documents of one collection held in memory.
type heldStat struct{ count, bytes int64 }

// Compute computes the state at the plan's restore point: it reads the
// oplog range to learn which documents it writes, holds those from the
// snapshot in a replay.Memory seeded with every selected collection and
// view, and replays the range into it. plan must be resolved
// (restore.Prepare or restore.Resolve).
func Compute(ctx context.Context, r *repo.Repository, plan restore.Plan, o Options) (*State, error) {
	o.defaults()
	s := &State{plan: plan, repo: r, mem: replay.NewMemory(), held: map[string]heldStat{}, o: o,
		Snapshot: plan.Snapshot.ID, Target: plan.Target}
	s.touched = newTouched(plan.Mapper.Match)
	o.Progress.start(plan)
	o.Progress.setPhase("scan")
	if err := s.eachEntry(ctx, func(e bson.Raw) error { s.touched.add(e); return nil }); err != nil {
		return nil, err
	}
	s.touched.seal()
	if err := s.seed(); err != nil {
		return nil, err
	}
	o.Progress.setPhase("hold")
	if err := s.hold(ctx); err != nil {
		return nil, err
	}
	o.Progress.setPhase("replay")
	if err := s.replay(ctx); err != nil {
		return nil, err
	}
	s.collect()
	return s, nil
}

// errRangeEnd stops reading at the restore point.
var errRangeEnd = errors.New("end of the range")

// eachEntry calls fn with every entry of the plan's range, in order: from
// the snapshot's start to the restore point, both included.
func (s *State) eachEntry(ctx context.Context, fn func(bson.Raw) error) error {
	s.o.Progress.entries.Store(0)
	err := s.repo.ReadEntries(ctx, s.plan.Segments, s.plan.ReplayFrom.Prev(), func(ts optime.Timestamp, e bson.Raw) error {
		if ts.After(s.plan.Target) {
			return errRangeEnd
		}
		s.o.Progress.entries.Add(1)
		return fn(e)
	})
	if err != nil && !errors.Is(err, errRangeEnd) {
		return fmt.Errorf("read the oplog from %s to %s: %w", s.plan.ReplayFrom, s.plan.Target, err)
	}
	return nil
}

// seed creates every selected collection and view in the Memory as the
// snapshot recorded it, each collection tagged with its own name.
func (s *State) seed() error {
	for _, c := range s.plan.Collections {
		ns := c.Source.String()
		if err := s.mem.Seed(ns, c.Manifest.Options, c.Manifest.Indexes, ns); err != nil {
			return fmt.Errorf("compute state: %w", err)
		}
	}
	for _, v := range s.plan.Views {
		def := bson.D{{Key: "_id", Value: v.Source.String()}}
		els, _ := v.Options.Elements()
		for _, e := range els {
			def = append(def, bson.E{Key: e.Key(), Value: e.Value()})
		}
		raw, err := bson.Marshal(def)
		if err == nil {
			err = s.mem.Load(v.Source.DB+".system.views", []bson.Raw{raw})
		}
		if err != nil {
			return fmt.Errorf("compute state: view %s: %w", v.Source, err)
		}
	}
	return nil
}

// hold loads into the Memory the snapshot documents the range writes,
// reading only the collections whose lineage has any.
func (s *State) hold(ctx context.Context) error {
	for _, c := range s.plan.Collections {
		ns := c.Source.String()
		if !s.touched.any(ns) {
			continue
		}
		st := s.held[ns]
		err := s.eachChunk(ctx, c, func(doc bson.Raw, key string) error {
			if !s.touched.has(ns, key) {
				return nil
			}
			st.count++
			st.bytes += int64(len(doc))
			return s.mem.Load(ns, []bson.Raw{doc})
		})
		if err != nil {
			return err
		}
		s.held[ns] = st
	}
	return nil
}

// replayBatch is how many entries go to the Applier at once.
const replayBatch = 1000

// replay applies the range to the Memory with the restore's translator.
func (s *State) replay(ctx context.Context) error {
	a := &replay.Applier{Memory: s.mem, Flavor: s.plan.Flavor, Map: s.plan.Mapper.Map, Log: s.o.Log}
	var batch []bson.Raw
	apply := func() error {
		st, err := a.Apply(ctx, batch)
		s.Replay.Add(st)
		s.Entries += int64(len(batch))
		batch = batch[:0]
		return err
	}
	err := s.eachEntry(ctx, func(e bson.Raw) error {
		batch = append(batch, e)
		if len(batch) < replayBatch {
			return nil
		}
		return apply()
	})
	if err == nil {
		err = apply()
	}
	if err != nil {
		return fmt.Errorf("replay the oplog in memory: %w", err)
	}
	if s.Pending = a.Pending(); s.Pending > 0 {
		s.o.Log.Info("transactions still open at the restore point are not applied", "count", s.Pending)
	}
	return nil
}

// collect lists the namespaces the Memory holds after the replay, with
// where their untouched snapshot documents come from.
func (s *State) collect() {
	bases := map[string]*restore.CollectionPlan{}
	for i := range s.plan.Collections {
		bases[s.plan.Collections[i].Source.String()] = &s.plan.Collections[i]
	}
	for _, ns := range s.mem.Namespaces() {
		db, coll, _ := strings.Cut(ns, ".")
		if coll == "system.views" {
			s.Namespaces = append(s.Namespaces, s.views(db)...)
			continue
		}
		n := Namespace{DB: db, Coll: coll, Indexes: s.mem.Indexes(ns)}
		n.Options, _ = s.mem.Options(ns)
		for _, d := range s.mem.Documents(ns) {
			n.Count++
			n.Bytes += int64(len(d))
		}
		s.Held += n.Count
		if b := bases[s.mem.Base(ns)]; b != nil {
			h := s.held[b.Source.String()]
			n.base = b
			n.Count += b.Manifest.Count - h.count
			n.Bytes += b.Manifest.Bytes - h.bytes
		}
		s.Namespaces = append(s.Namespaces, n)
	}
	sort.Slice(s.Namespaces, func(i, j int) bool { return s.Namespaces[i].String() < s.Namespaces[j].String() })
}

// views lists db's views from their definitions in db.system.views.
func (s *State) views(db string) []Namespace {
	var out []Namespace
	for _, def := range s.mem.Documents(db + ".system.views") {
		id, _ := def.Lookup("_id").StringValueOK()
		vdb, view, ok := strings.Cut(id, ".")
		if !ok || vdb != db {
			continue
		}
		var opts bson.D
		els, _ := def.Elements()
		for _, e := range els {
			if e.Key() != "_id" {
				opts = append(opts, bson.E{Key: e.Key(), Value: e.Value()})
			}
		}
		raw, err := bson.Marshal(opts)
		if err != nil {
			continue
		}
		out = append(out, Namespace{DB: db, Coll: view, View: true, Options: raw})
	}
	return out
}

// Each calls fn with every document of ns in the export's order: the
// snapshot's documents the range did not write, then the Memory's. doc is
// valid only during the call.
func (s *State) Each(ctx context.Context, ns Namespace, fn func(doc bson.Raw) error) error {
	if ns.View {
		return nil
	}
	if b := ns.base; b != nil {
		src := b.Source.String()
		err := s.eachChunk(ctx, *b, func(doc bson.Raw, key string) error {
			if s.touched.has(src, key) {
				return nil
			}
			return fn(doc)
		})
		if err != nil {
			return err
		}
	}
	for _, d := range s.mem.Documents(ns.String()) {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}
