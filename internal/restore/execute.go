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

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// Options configure Execute.
type Options struct {
	Parallel int  // chunks loaded at once (default 4)
	Drop     bool // drop target namespaces that exist and are not empty
	// BatchBytes bounds one insert batch (default 8 MiB): memory stays near
	// Parallel chunks plus Parallel batches.
	BatchBytes int
	Progress   *Progress
	Log        *slog.Logger
}

func (o *Options) defaults() {
	if o.Parallel <= 0 {
		o.Parallel = 4
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
}

// NamespaceReport is what one target collection received.
type NamespaceReport struct {
	Source, Target Namespace
	Loaded         int64 // documents loaded from the snapshot
	Final          int64 // documents in the target when the restore ended
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

	late    []lateNS
	touched map[Namespace]bool // target namespaces the replay wrote to
}

// Execute carries out a plan on the target deployment: check the target
// namespaces, create collections with their options and the views, load the
// snapshot's documents, replay the oplog from the snapshot's start to the
// target (building a collection's indexes before the first DDL entry that
// touches it), build the remaining indexes, then users and roles.
func Execute(ctx context.Context, r *repo.Repository, client *mongo.Client, p Plan, o Options) (Report, error) {
	o.defaults()
	start := time.Now()
	rep := Report{Snapshot: p.Snapshot.ID, Target: p.Target}
	o.Progress.start(p)
	clock := phaseClock{progress: o.Progress, last: start}
	clock.enter("check")
	if err := Resolve(ctx, r, &p); err != nil {
		return rep, err
	}
	if err := checkTargets(ctx, client, p, o.Drop, o.Log); err != nil {
		return rep, err
	}
	clock.enter("create")
	if err := createCollections(ctx, client, p); err != nil {
		return rep, err
	}
	if err := createViews(ctx, client, p); err != nil {
		return rep, err
	}
	rep.Views = len(p.Views)
	clock.enter("load")
	loaded, err := load(ctx, r, client, p, o)
	if err != nil {
		return rep, err
	}
	for _, n := range loaded {
		rep.Documents += n
	}
	clock.enter("replay")
	idx := newIndexBuilder(client, p)
	if err := replayOplog(ctx, r, client, p, o, idx, &rep); err != nil {
		return rep, err
	}
	clock.enter("indexes")
	if err := idx.buildAll(ctx); err != nil {
		return rep, err
	}
	rep.Indexes = idx.built
	clock.enter("users")
	if rep.Users, rep.Roles, err = restoreUsersAndRoles(ctx, client, p); err != nil {
		return rep, err
	}
	clock.enter("count")
	if rep.Namespaces, err = countTargets(ctx, client, p, rep, loaded); err != nil {
		return rep, err
	}
	rep.Bytes = o.Progress.bytes.Load()
	clock.enter("done")
	rep.Phases = clock.done
	rep.Duration = time.Since(start)
	return rep, nil
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

// ErrTargetNotEmpty means a target namespace holds data and --drop was not given.
var ErrTargetNotEmpty = errors.New("target namespace exists and is not empty")

// checkTargets refuses to overwrite data: a target collection holding
// documents, or a view, is an error unless drop, and then it is dropped.
func checkTargets(ctx context.Context, client *mongo.Client, p Plan, drop bool, log *slog.Logger) error {
	var busy []Namespace
	for _, ns := range targetNamespaces(p) {
		exists, nonEmpty, err := inspect(ctx, client, ns)
		if err != nil {
			return err
		}
		if !exists || !nonEmpty && !isView(p, ns) {
			continue
		}
		if !drop {
			busy = append(busy, ns)
			continue
		}
		log.Info("dropping target namespace (--drop)", "ns", ns.String())
		if err := client.Database(ns.DB).Collection(ns.Coll).Drop(ctx); err != nil {
			return fmt.Errorf("drop %s: %w", ns, err)
		}
	}
	if len(busy) > 0 {
		names := make([]string, len(busy))
		for i, ns := range busy {
			names[i] = ns.String()
		}
		return fmt.Errorf("%w: %s; restore under another name with --rename, or replace it with --drop",
			ErrTargetNotEmpty, strings.Join(names, ", "))
	}
	return nil
}

// Busy lists the plan's target namespaces that already hold data (or are
// views): a restore refuses them unless told to drop them. It only reads.
func Busy(ctx context.Context, client *mongo.Client, p Plan) ([]Namespace, error) {
	var busy []Namespace
	for _, ns := range targetNamespaces(p) {
		exists, nonEmpty, err := inspect(ctx, client, ns)
		if err != nil {
			return nil, err
		}
		if exists && (nonEmpty || isView(p, ns)) {
			busy = append(busy, ns)
		}
	}
	return busy, nil
}

func targetNamespaces(p Plan) []Namespace {
	var out []Namespace
	for _, c := range p.Collections {
		out = append(out, c.Target)
	}
	for _, v := range p.Views {
		out = append(out, v.Target)
	}
	return out
}

func isView(p Plan, ns Namespace) bool {
	for _, v := range p.Views {
		if v.Target == ns {
			return true
		}
	}
	return false
}

// inspect reports whether a namespace exists and holds a document.
func inspect(ctx context.Context, client *mongo.Client, ns Namespace) (exists, nonEmpty bool, err error) {
	names, err := client.Database(ns.DB).ListCollectionNames(ctx, bson.D{{Key: "name", Value: ns.Coll}})
	if err != nil {
		return false, false, fmt.Errorf("inspect target %s: %w", ns, err)
	}
	if len(names) == 0 {
		return false, false, nil
	}
	err = client.Database(ns.DB).Collection(ns.Coll).FindOne(ctx, bson.D{}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return true, false, nil
	}
	if err != nil {
		return true, false, fmt.Errorf("inspect target %s: %w", ns, err)
	}
	return true, true, nil
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

func countTargets(ctx context.Context, client *mongo.Client, p Plan, rep Report, loaded map[Namespace]int64) ([]NamespaceReport, error) {
	var out []NamespaceReport
	all := append([]CollectionPlan(nil), p.Collections...)
	for _, l := range rep.late {
		all = append(all, CollectionPlan{Source: l.source, Target: l.target})
	}
	// A collection no oplog entry touched holds exactly what was loaded (an
	// insert that fails fails the restore). Commands (renames, drops,
	// applyOps) can touch any collection: then every one is counted.
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
