package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/checksum"
	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// Options configure Execute.
type Options struct {
	Parallel int  // chunks loaded at once, and oplog replay lanes (default DefaultParallel)
	Drop     bool // drop and re-create target namespaces in the way (see Check)
	// BatchBytes bounds one insert batch (default 8 MiB): memory stays near
	// Parallel chunks plus Parallel batches.
	BatchBytes int
	Progress   *Progress
	Log        *slog.Logger
	// Server is what Connect learned about the target; nil: Execute asks
	// the server itself (buildInfo).
	Server *Server
	// Checksum: when the restore is done, compute the content checksum of
	// every target collection it wrote (Report.Checksums, the phase
	// "checksum").
	Checksum bool

	// shard: the target is a mongos and the restore writes its targets
	// directly: place them as the routing metadata says (Sharding).
	shard bool
}

func (o *Options) defaults(ctx context.Context, client *mongo.Client) error {
	if o.Server == nil {
		t, err := Use(ctx, client)
		if err != nil {
			return err
		}
		o.Server = &t.Server
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 8 << 20
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
	return nil
}

// NamespaceReport is what one target collection received.
type NamespaceReport struct {
	Source, Target Namespace
	Loaded         int64 // documents loaded from the snapshot (into the staging, for a staged restore)
	Final          int64 // documents in the target when the restore ended
	// OrphansSkipped counts, for a cluster, the snapshot's documents not
	// loaded because their shard did not own them (Plan.Orphans).
	OrphansSkipped int64
	Merged         // a staged restore's counts (Plan.Staged); zero otherwise
}

// Merged counts what a filtered or merging restore did with the documents
// it restored (those that matched the filter, or all of them): each was
// inserted (the target lacked its _id), replaced (the target held another
// version) or left alone (the target held it: any version with --merge
// missing, the same bytes with --merge overwrite).
type Merged struct {
	Inserted, Replaced, LeftAlone int64
}

// Matched is the number of documents the restore restored.
func (m Merged) Matched() int64 { return m.Inserted + m.Replaced + m.LeftAlone }

func (m *Merged) add(o Merged) {
	m.Inserted += o.Inserted
	m.Replaced += o.Replaced
	m.LeftAlone += o.LeftAlone
}

// Report is what a finished restore did.
type Report struct {
	Snapshot     string
	Target       optime.Timestamp // the restore point asked for
	LastApplied  optime.Timestamp // the newest oplog entry replayed (zero if none)
	Documents    int64            // loaded from the snapshot
	Entries      int64            // oplog entries replayed
	Replay       replay.Stats
	Bytes        int64 // chunk plaintext bytes plus stored segment bytes read
	Duration     time.Duration
	Namespaces   []NamespaceReport
	Indexes      int
	Views        int
	Users, Roles int
	Phases       []Phase // how long each step took, in order
	// Staged reports a filtered or merging restore: Documents, Entries and
	// Replay counted what went into the staging, Merged what reached the
	// target.
	Staged bool
	Merged
	// Checksums are the content checksums of the target collections, by
	// namespace, when Options.Checksum asked for them.
	Checksums []checksum.Sum
	// Sharding is what a restore into a sharded cluster (through its
	// mongos) did to place the data; nil for any other target.
	Sharding *Sharding

	// OrphansSkipped counts, for a cluster, the snapshot's documents not
	// loaded because their shard did not own them (Plan.Orphans).
	OrphansSkipped int64

	touched map[Namespace]bool // target namespaces the replay wrote to
}

// Execute carries out a plan on the target deployment: resolve the plan's
// oplog range if that was not done, check every target namespace (Check)
// and refuse those in the way before writing anything (a *TargetError), or
// drop them with Drop; create collections with their options and the
// views, load the snapshot's documents, replay the oplog from the
// snapshot's start to the target (building a collection's indexes before
// the first DDL entry that touches it), build the remaining indexes, then
// users and roles. Any other error also says what the target holds: nothing
// written yet, or a partial restore (ErrPartial) and what to do.
func Execute(ctx context.Context, r *repo.Repository, client *mongo.Client, p Plan, o Options) (Report, error) {
	rep, wrote, err := execute(ctx, r, client, &p, o)
	return rep, stateError(p, wrote, err)
}

// execute is Execute; wrote reports whether it had begun writing to the
// target (a staging database is not the target).
func execute(ctx context.Context, r *repo.Repository, client *mongo.Client, p *Plan, o Options) (rep Report, wrote bool, err error) {
	if err := o.defaults(ctx, client); err != nil {
		return rep, false, err
	}
	start := time.Now()
	o.Progress.start(*p)
	clock := &phaseClock{progress: o.Progress, last: start}
	mongos := o.Server != nil && o.Server.Mongos
	if p.Staged() {
		if mongos {
			o.Log.Warn("a filtered or merging restore into a sharded cluster writes through mongos but does not shard the target collections it creates: shard them with shardCollection before the restore if they must be sharded")
		}
		rep, wrote, err = executeStaged(ctx, r, client, p, o, clock)
	} else {
		o.shard = mongos
		rep, wrote, err = executeDirect(ctx, r, client, p, o, clock)
	}
	if err != nil {
		return rep, wrote, err
	}
	if o.Checksum {
		clock.enter("checksum")
		if rep.Checksums, err = checksumTargets(ctx, client, rep); err != nil {
			return rep, wrote, err
		}
	}
	rep.Bytes = o.Progress.bytes.Load()
	clock.enter("done")
	rep.Phases = clock.done
	rep.Duration = time.Since(start)
	return rep, wrote, nil
}

// executeDirect restores the plan into its targets: check (refuse or
// drop), create, load, replay, indexes, users and roles, count.
func executeDirect(ctx context.Context, r *repo.Repository, client *mongo.Client, p *Plan, o Options, clock *phaseClock) (rep Report, wrote bool, err error) {
	rep = Report{Snapshot: p.Snapshot.ID, Target: p.Target}
	clock.enter("check")
	if err := Resolve(ctx, r, p); err != nil {
		return rep, false, err
	}
	if err := clearTargets(ctx, client, *p, o, &wrote); err != nil {
		return rep, wrote, err
	}
	wrote = true
	clock.enter("create")
	var sh *Sharding
	if o.shard {
		if sh, err = prepareSharded(ctx, r, client, *p, o.Log); err != nil {
			return rep, wrote, err
		}
		rep.Sharding = sh
	}
	if err := createCollections(ctx, client, *p); err != nil {
		return rep, wrote, err
	}
	if sh != nil {
		if err := sh.shardCollections(ctx, client); err != nil {
			return rep, wrote, err
		}
	}
	if err := createViews(ctx, client, *p); err != nil {
		return rep, wrote, err
	}
	rep.Views = len(p.Views)
	clock.enter("load")
	loaded, orphans, err := load(ctx, r, client, *p, o)
	if err != nil {
		return rep, wrote, err
	}
	for _, n := range loaded {
		rep.Documents += n
	}
	for _, n := range orphans {
		rep.OrphansSkipped += n
	}
	clock.enter("replay")
	idx := newIndexBuilder(client, *p)
	if err := replayOplog(ctx, r, client, *p, o, idx, &rep); err != nil {
		return rep, wrote, err
	}
	clock.enter("indexes")
	if err := idx.buildAll(ctx); err != nil {
		return rep, wrote, err
	}
	rep.Indexes = idx.built
	clock.enter("users")
	if rep.Users, rep.Roles, err = restoreUsersAndRoles(ctx, client, *p); err != nil {
		return rep, wrote, err
	}
	clock.enter("count")
	if rep.Namespaces, err = countTargets(ctx, client, *p, rep, loaded); err != nil {
		return rep, wrote, err
	}
	for i, n := range rep.Namespaces {
		rep.Namespaces[i].OrphansSkipped = orphans[n.Target]
	}
	return rep, wrote, nil
}

// checksumTargets sums the target collections the restore wrote.
func checksumTargets(ctx context.Context, client *mongo.Client, rep Report) ([]checksum.Sum, error) {
	names := make([]string, 0, len(rep.Namespaces))
	for _, n := range rep.Namespaces {
		names = append(names, n.Target.String())
	}
	sort.Strings(names)
	sums, err := checksum.Reader{Client: client}.Namespaces(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("checksum the restored collections: %w", err)
	}
	return sums, nil
}

// Phase is one step of a restore and how long it took.
type Phase struct {
	Name     string
	Duration time.Duration
}

// phaseClock moves the progress from step to step and times each one, so a
// report says where a slow restore spent its time.
type phaseClock struct {
	progress *Progress
	cur      string
	last     time.Time
	done     []Phase
}

func (c *phaseClock) enter(name string) {
	now := time.Now()
	if c.cur != "" {
		c.done = append(c.done, Phase{Name: c.cur, Duration: now.Sub(c.last)})
	}
	c.cur, c.last = name, now
	c.progress.setPhase(name)
}

// clearTargets is the last look before the first write: every target
// namespace in the way is refused, or with Drop dropped, so that the
// restore re-creates it as the backup has it.
func clearTargets(ctx context.Context, client *mongo.Client, p Plan, o Options, wrote *bool) error {
	findings, err := Check(ctx, client, p)
	if err != nil {
		return err
	}
	if len(findings) > 0 && !o.Drop {
		return &TargetError{Findings: findings}
	}
	for _, f := range findings {
		*wrote = true
		o.Log.Info("dropping target namespace (--drop)", "ns", f.Target.String(), "in the way", strings.Join(f.Reasons, "; "))
		if err := client.Database(f.Target.DB).Collection(f.Target.Coll).Drop(ctx); err != nil {
			return fmt.Errorf("drop %s: %w", f.Target, err)
		}
	}
	return nil
}

// codeNamespaceExists is the server's answer to creating an existing collection.
const codeNamespaceExists = 48

func createCollections(ctx context.Context, client *mongo.Client, p Plan) error {
	for _, c := range p.Collections {
		cmd := withFirst("create", c.Target.Coll, c.Manifest.Options)
		err := client.Database(c.Target.DB).RunCommand(ctx, cmd).Err()
		if err != nil && !hasCode(err, codeNamespaceExists) {
			return fmt.Errorf("create collection %s: %w", c.Target, err)
		}
	}
	return nil
}

func createViews(ctx context.Context, client *mongo.Client, p Plan) error {
	for _, v := range p.Views {
		cmd := withFirst("create", v.Target.Coll, v.Options)
		if err := client.Database(v.Target.DB).RunCommand(ctx, cmd).Err(); err != nil {
			return fmt.Errorf("create view %s: %w", v.Target, err)
		}
	}
	return nil
}

// withFirst builds {name: value, ...rest} keeping rest's values raw. Fields
// a server reports but refuses back (uuid, idIndex from listCollections)
// are left out.
func withFirst(name string, value any, rest bson.Raw) bson.D {
	d := bson.D{{Key: name, Value: value}}
	els, _ := rest.Elements()
	for _, e := range els {
		switch e.Key() {
		case "uuid", "idIndex", "name", "type", "info":
			continue
		}
		d = append(d, bson.E{Key: e.Key(), Value: e.Value()})
	}
	return d
}

func hasCode(err error, code int) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(code)
}

// countTargets reports each collection's documents: the snapshot's, and
// the late ones the replay left in existence.
func countTargets(ctx context.Context, client *mongo.Client, p Plan, rep Report, loaded map[Namespace]int64) ([]NamespaceReport, error) {
	var out []NamespaceReport
	lister := collectionLister{client: client, byDB: map[string]map[string]bson.Raw{}}
	all := append([]CollectionPlan(nil), p.Collections...)
	for _, l := range p.Late {
		if spec, err := lister.spec(ctx, l.Target); err != nil {
			return nil, err
		} else if spec != nil && !l.View {
			all = append(all, CollectionPlan{Source: l.Source, Target: l.Target})
		}
	}
	// A collection no replayed entry wrote reports what was loaded: the
	// load's acknowledged inserts put exactly those documents into a
	// collection the check found absent or empty (an insert that fails,
	// a duplicate included, fails the restore). Not proven without a
	// count: that no other client wrote there since (a count would show
	// its documents); a restore expects its targets to itself. A count is
	// asked (a scan on FerretDB) only where the replay wrote: there the
	// report must say what the replay left.
	// Commands (renames, drops, applyOps) can touch any collection: then
	// every one is counted.
	countAll := rep.Replay.Commands > 0
	for _, c := range all {
		if !countAll && !rep.touched[c.Target] {
			out = append(out, NamespaceReport{Source: c.Source, Target: c.Target, Loaded: loaded[c.Target], Final: loaded[c.Target]})
			continue
		}
		// The collection's own count (metadata on MongoDB; a scan on FerretDB).
		n, err := client.Database(c.Target.DB).Collection(c.Target.Coll).EstimatedDocumentCount(ctx)
		if err != nil {
			return nil, fmt.Errorf("count documents of %s: %w", c.Target, err)
		}
		out = append(out, NamespaceReport{Source: c.Source, Target: c.Target, Loaded: loaded[c.Target], Final: n})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Target.String() < out[b].Target.String() })
	return out, nil
}
