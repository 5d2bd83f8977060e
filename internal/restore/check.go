package restore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Finding is one target namespace in the way of a restore, and why.
type Finding struct {
	Target  Namespace
	Reasons []string // "holds documents", "exists empty but is capped (size 4096, max 1), the backup's is not capped", ...
}

func (f Finding) String() string { return f.Target.String() + ": " + strings.Join(f.Reasons, "; ") }

// ErrTargetInTheWay matches a restore refused before its first write
// because target namespaces are in the way (a *TargetError).
var ErrTargetInTheWay = errors.New("target namespaces are in the way")

// TargetError is a restore refused before it wrote anything: the findings
// of Check, and what to do.
type TargetError struct {
	Findings []Finding
	Merge    Merge // the restore's --merge, which changes what to do
	Undo     bool  // an undo was refused, not a restore
}

func (e *TargetError) Error() string {
	lines := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		lines[i] = f.String()
	}
	what, remedy := "restore", remedyFor(e.Merge)
	if e.Undo {
		what, remedy = "undo", undoRemedy
	}
	return fmt.Sprintf("%s refused before writing anything: %s: %s; %s", what, inTheWay(len(e.Findings)), strings.Join(lines, "; "), remedy)
}

// Is makes errors.Is(err, ErrTargetInTheWay) true.
func (e *TargetError) Is(target error) bool { return target == ErrTargetInTheWay }

const remedy = "restore under other names with --rename, write into them with --merge missing|overwrite, or add --drop to drop them and re-create them as the backup has them"

// mergeRemedy is what to do when a merge cannot write into a namespace.
const mergeRemedy = "a merge writes only into collections whose capped, collation, time series and clustering options are the backup's; restore under other names with --rename"

// undoRemedy is what to do when an undo cannot write into a namespace.
const undoRemedy = "undo writes only into collections whose capped, collation, time series and clustering options are the backup's; restore the documents elsewhere with rewind restore --filter --rename"

func remedyFor(m Merge) string {
	if m != MergeNone {
		return mergeRemedy
	}
	return remedy
}
func inTheWay(n int) string {
	if n == 1 {
		return "1 target namespace is in the way"
	}
	return fmt.Sprintf("%d target namespaces are in the way", n)
}

// Verdict is what a dry run says of Check's findings: the restore's own
// decision, in the same words as its refusal.
func Verdict(findings []Finding, drop bool) string { return VerdictOf(findings, Request{Drop: drop}) }

// VerdictOf is Verdict for a whole request: a merge's verdict says what
// merging allows.
func VerdictOf(findings []Finding, req Request) string {
	switch {
	case len(findings) == 0 && req.Merge != MergeNone:
		return "every target namespace is absent, or a collection a merge can write into (data and indexes are left as they are): the restore can start"
	case len(findings) == 0:
		return "every target namespace is absent or empty (with the backup's options and indexes): the restore can start"
	case req.Drop:
		return inTheWay(len(findings)) + ": --drop would drop them and re-create them as the backup has them, before loading anything"
	}
	return inTheWay(len(findings)) + ": the restore would refuse before writing anything; " + remedyFor(req.Merge)
}

// expectation is what the backup says a target namespace should be.
type expectation struct {
	target  Namespace
	view    bool
	options bson.Raw // nil: a plain collection
	indexes []bson.Raw
}

// expectations lists every namespace the restore writes: the snapshot's
// collections and views, then those the oplog range writes (Plan.Late). A
// staged restore (filter or merge) writes documents only: no view.
func expectations(p Plan) []expectation {
	var out []expectation
	for _, c := range p.Collections {
		out = append(out, expectation{target: c.Target, options: c.Manifest.Options, indexes: c.Manifest.Indexes})
	}
	for _, v := range p.Views {
		if !p.Staged() {
			out = append(out, expectation{target: v.Target, view: true, options: v.Options})
		}
	}
	for _, l := range p.Late {
		if !l.View || !p.Staged() {
			out = append(out, expectation{target: l.Target, view: l.View, options: l.Options, indexes: l.Indexes})
		}
	}
	return out
}

// Check looks at every namespace the restore will write, before it writes
// anything: the snapshot's collections and views, the namespaces the oplog
// range writes (Plan.Late: the plan must be resolved), and the collections
// of target databases the range drops whole. It returns those in the way,
// in plan order: a view; a collection that holds documents; an empty one
// whose options differ from the backup's (capped, validator, collation...)
// or that has an index the backup lacks, or one of the same name built
// otherwise. Absent namespaces, and empty collections as the backup has
// them, are not in the way. Check only reads.
func Check(ctx context.Context, client *mongo.Client, p Plan) ([]Finding, error) {
	if !p.resolved {
		return nil, errors.New("check target: the plan's oplog range is not resolved yet (call Resolve)")
	}
	lister := collectionLister{client: client, byDB: map[string]map[string]bson.Raw{}}
	expected := map[Namespace]bool{}
	var out []Finding
	for _, e := range expectations(p) {
		if expected[e.target] {
			continue
		}
		expected[e.target] = true
		spec, err := lister.spec(ctx, e.target)
		if err != nil {
			return out, err
		}
		if spec == nil {
			continue // absent: the restore creates it
		}
		reasons, err := inspect(ctx, client, e, spec, p.Merge)
		if err != nil {
			return out, err
		}
		if len(reasons) > 0 {
			out = append(out, Finding{Target: e.target, Reasons: reasons})
		}
	}
	if p.Staged() {
		// a dropDatabase is replayed in the staging; the filter is asked
		// now, so a query the server refuses fails before anything is staged
		return out, CheckFilter(ctx, client, p.Filter)
	}
	dropped, err := checkDroppedDBs(ctx, client, p, &lister, expected)
	return append(out, dropped...), err
}

// checkDroppedDBs finds data the replay of a dropDatabase would drop: the
// target collections of a dropped source database that the restore does
// not otherwise write.
func checkDroppedDBs(ctx context.Context, client *mongo.Client, p Plan, lister *collectionLister, expected map[Namespace]bool) ([]Finding, error) {
	var out []Finding
	for _, db := range p.droppedDBs {
		tdb := p.Mapper.Target(db, "").DB
		colls, err := lister.list(ctx, tdb)
		if err != nil {
			return out, err
		}
		var names []string
		for name := range colls {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			ns := Namespace{tdb, name}
			if expected[ns] || p.Mapper.Target(db, name) != ns || !p.Mapper.Match(db, name) {
				continue
			}
			has, err := holdsDocuments(ctx, client, ns)
			if err != nil {
				return out, err
			}
			if has {
				out = append(out, Finding{Target: ns, Reasons: []string{fmt.Sprintf("holds documents, and the oplog range drops database %s, which drops it", db)}})
			}
		}
	}
	return out, nil
}

// inspect says why one existing target namespace is in the way (nothing:
// it is not). A merge writes into collections that hold documents and
// leaves their indexes alone; only options that change what a document is
// or which _id matches it are in its way (mergeOptions).
func inspect(ctx context.Context, client *mongo.Client, e expectation, spec bson.Raw, merge Merge) ([]string, error) {
	typ, _ := spec.Lookup("type").StringValueOK()
	opts, _ := spec.Lookup("options").DocumentOK()
	if typ == "view" {
		on, _ := opts.Lookup("viewOn").StringValueOK()
		return []string{fmt.Sprintf("is a view (on %s); a restore never writes over a view", on)}, nil
	}
	if e.view {
		return []string{"exists as a collection; the backup's is a view"}, nil
	}
	if merge != MergeNone {
		return compareOptions(onlyFields(e.options, mergeOptions), onlyFields(opts, mergeOptions)), nil
	}
	var reasons []string
	has, err := holdsDocuments(ctx, client, e.target)
	if err != nil {
		return nil, err
	}
	if has {
		reasons = append(reasons, "holds documents")
	}
	diff := compareOptions(e.options, opts)
	indexes, err := listIndexes(ctx, client, e.target)
	if err != nil {
		return nil, err
	}
	diff = append(diff, compareIndexes(e.indexes, indexes)...)
	if !has && len(diff) > 0 {
		diff[0] = "exists empty but " + diff[0]
	}
	return append(reasons, diff...), nil
}

// mergeOptions are the collection options that decide whether a merge can
// write into an existing collection: a capped one may drop documents or
// refuse them, a collation changes which string _id matches which, a time
// series collection stores buckets, a clustered one orders by its key.
// Validators, TTL and the like are the live collection's business.
var mergeOptions = []string{"capped", "size", "max", "collation", "timeseries", "clusteredIndex"}

// onlyFields copies doc with just the named top-level fields.
func onlyFields(doc bson.Raw, names []string) bson.Raw {
	var d bson.D
	for _, e := range mustElements(doc) {
		if slices.Contains(names, e.Key()) {
			d = append(d, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	raw, err := bson.Marshal(d)
	if err != nil {
		return nil
	}
	return raw
}

// collectionLister lists each target database's collections once.
type collectionLister struct {
	client *mongo.Client
	byDB   map[string]map[string]bson.Raw // db -> name -> listCollections spec
}

// spec is the listCollections answer for ns, nil if it does not exist.
func (l *collectionLister) spec(ctx context.Context, ns Namespace) (bson.Raw, error) {
	colls, err := l.list(ctx, ns.DB)
	return colls[ns.Coll], err
}

func (l *collectionLister) list(ctx context.Context, db string) (map[string]bson.Raw, error) {
	if colls, ok := l.byDB[db]; ok {
		return colls, nil
	}
	cur, err := l.client.Database(db).ListCollections(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("check target: list collections of %s: %w", db, err)
	}
	defer cur.Close(ctx)
	colls := map[string]bson.Raw{}
	for cur.Next(ctx) {
		name, _ := cur.Current.Lookup("name").StringValueOK()
		colls[name] = append(bson.Raw(nil), cur.Current...)
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("check target: list collections of %s: %w", db, err)
	}
	l.byDB[db] = colls
	return colls, nil
}

func holdsDocuments(ctx context.Context, client *mongo.Client, ns Namespace) (bool, error) {
	err := client.Database(ns.DB).Collection(ns.Coll).FindOne(ctx, bson.D{}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check target: read %s: %w", ns, err)
	}
	return true, nil
}

func listIndexes(ctx context.Context, client *mongo.Client, ns Namespace) ([]bson.Raw, error) {
	cur, err := client.Database(ns.DB).Collection(ns.Coll).Indexes().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("check target: list indexes of %s: %w", ns, err)
	}
	defer cur.Close(ctx)
	var out []bson.Raw
	for cur.Next(ctx) {
		out = append(out, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("check target: list indexes of %s: %w", ns, err)
	}
	return out, nil
}

// ErrPartial matches a restore that failed or was interrupted after its
// first write: the target holds part of it.
var ErrPartial = errors.New("the target holds a partial restore")

// partialError is a restore stopped after its first write: the cause, the
// target namespaces it may have written, and what to do.
type partialError struct {
	err     error
	targets []string
	merge   Merge
}

func (e *partialError) Error() string {
	what := "the target holds a partial restore"
	if n := len(e.targets); n > 0 {
		names := e.targets[:min(n, maxNamed)]
		what += " of " + strings.Join(names, ", ")
		if n > maxNamed {
			what += fmt.Sprintf(" and %d more (the restore plan lists them)", n-maxNamed)
		}
	}
	if e.merge != MergeNone {
		return fmt.Sprintf("%v; the restore had begun writing: %s; run the same restore again to finish the merge (documents it wrote already are left alone or written again)", e.err, strings.Replace(what, "partial restore", "partial merge", 1))
	}
	return fmt.Sprintf("%v; the restore had begun writing: %s; run the same restore again with --drop (\"drop\": true over the API) to replace them, or drop them", e.err, what)
}

func (e *partialError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrPartial) true.
func (e *partialError) Is(target error) bool { return target == ErrPartial }

// maxNamed bounds the namespaces a partial restore's error names.
const maxNamed = 10

// stateError says what a failed restore left in the target: nothing when
// it failed before its first write (a refusal says so already), else a
// partial restore of the plan's target namespaces and what to do. Every
// restore (CLI, API job, trial) fails through it.
func stateError(p Plan, wrote bool, err error) error {
	switch {
	case err == nil || errors.Is(err, ErrTargetInTheWay):
		return err
	case !wrote:
		return fmt.Errorf("%w; nothing was written to the target", err)
	}
	seen := map[Namespace]bool{}
	var names []string
	add := func(ns Namespace) {
		if !seen[ns] {
			seen[ns] = true
			names = append(names, ns.String())
		}
	}
	for _, e := range expectations(p) {
		add(e.target)
	}
	sort.Strings(names)
	return &partialError{err: err, targets: names, merge: p.Merge}
}

// CheckFilter asks the target's server whether it takes filter as a query,
// without reading any data: a find on a collection that does not exist
// (under StagingPrefix, never created) is parsed like any other, so an
// unknown operator or a malformed expression is refused here, before a
// filtered restore or an undo stages anything (and in a dry run). nil
// filters are fine.
func CheckFilter(ctx context.Context, client *mongo.Client, filter bson.Raw) error {
	if filter == nil {
		return nil
	}
	err := client.Database(StagingPrefix+"filtercheck").Collection("none").FindOne(ctx, filter).Err()
	if err == nil || errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	return filterError(filter, err)
}
