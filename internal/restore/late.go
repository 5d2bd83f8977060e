package restore

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/repo"
)

// LateNamespace is a collection or view that the snapshot does not hold and
// the oplog range creates or writes: it was created after the snapshot's
// copy began. The replay creates it; the target check looks at it first.
type LateNamespace struct {
	Source, Target Namespace
	// Options are the create entry's options, when the range creates it; nil
	// when the range has no create entry for it (FerretDB logs no DDL): a
	// plain collection is expected then.
	Options bson.Raw
	// Indexes are the specs the range's createIndexes and commitIndexBuild
	// entries build (the _id index is implied).
	Indexes []bson.Raw
	View    bool // created as a view (create with viewOn)

	renamedFrom *Namespace // the range renames this source onto it
}

// Resolve reads the plan's oplog range once, before anything is written:
// it counts the entries to replay (Entries), lists the namespaces the range
// creates or writes that the snapshot does not hold (Late, mapped through
// --ns and --rename), notes the databases it drops, and checks the --ns and
// --rename names the snapshot does not hold against it: a collection created
// after the snapshot is restorable, a name found nowhere is a mistake. For a
// cluster it first reads the cluster snapshot's routing metadata, which
// decides whether the load skips orphaned documents (Orphans). Resolving a
// resolved plan does nothing.
func Resolve(ctx context.Context, r *repo.Repository, p *Plan) error {
	if p.resolved {
		return nil
	}
	if err := p.prepareOrphans(ctx, r); err != nil {
		return err
	}
	names := newOplogNames()
	var n int64
	err := p.readOplog(ctx, r, nil, func(batch []bson.Raw) error {
		for _, e := range batch {
			names.add(e)
		}
		n += int64(len(batch))
		return nil
	})
	if err != nil {
		return err
	}
	var left []unmatched
	for _, u := range p.unmatched {
		if !names.seen[u.key] {
			left = append(left, u)
		}
	}
	p.unmatched = left
	if len(left) > 0 {
		return p.unmatchedError()
	}
	p.Entries = n
	p.Late = p.lateNamespaces(names)
	if err := p.claimTargets(); err != nil {
		return err
	}
	if p.Empty() && (len(p.Mapper.include) > 0 || len(p.Mapper.rename) > 0) {
		return p.selectsNothing()
	}
	for db := range names.droppedDBs {
		if len(p.Mapper.include) == 0 || matchDB(p.Mapper, db) {
			p.droppedDBs = append(p.droppedDBs, db)
		}
	}
	p.resolved = true
	return nil
}

// Empty reports whether the resolved plan restores no collection or view:
// the deployment held none at the restore point (a new deployment's base
// snapshot, before its first write). Restoring it writes nothing but the
// users and roles asked for; that is the exact state, not an error.
func (p Plan) Empty() bool { return len(p.Collections)+len(p.Views)+len(p.Late) == 0 }

// EmptyNote is what a restore of an empty plan says instead of its
// namespaces.
const EmptyNote = "none: the deployment held no collection or view at this restore point (its exact state), so the restore creates none"

// claimTargets checks, before anything is written, that no two sources the
// restore writes (the snapshot's collections and views, and the oplog
// range's namespaces) land on one target: a --rename onto a collection the
// range creates would silently merge the two.
func (p *Plan) claimTargets() error {
	targets := newClaims(p.Mapper)
	for _, c := range p.Collections {
		if err := targets.claim(c.Source, c.Target, false); err != nil {
			return err
		}
	}
	for _, v := range p.Views {
		if err := targets.claim(v.Source, v.Target, false); err != nil {
			return err
		}
	}
	for _, l := range p.Late {
		if err := targets.claim(l.Source, l.Target, true); err != nil {
			return err
		}
	}
	return nil
}

// selectsNothing is the error of a --ns or --rename whose names were all
// found, yet select nothing restorable (only system collections, say).
func (p *Plan) selectsNothing() error {
	f, names := "ns", p.Mapper.include
	var list []string
	for _, n := range names {
		if n.Coll == "" {
			list = append(list, n.DB)
		} else {
			list = append(list, n.String())
		}
	}
	if len(names) == 0 {
		f = "rename"
		for from := range p.Mapper.rename {
			list = append(list, from)
		}
	}
	sort.Strings(list)
	return fmt.Errorf("plan restore: %w", invalid(f, "%s selects no collection or view in snapshot %s (it holds %s) nor in the oplog replayed up to %s; check the names with `rewind list`",
		strings.Join(list, ", "), p.Snapshot.ID, p.snapshotDBs(), p.Target))
}

// lateNamespaces keeps the oplog's namespaces that the restore selects and
// the snapshot does not hold, in the order the range first names them.
func (p *Plan) lateNamespaces(names *oplogNames) []LateNamespace {
	inSnapshot := map[Namespace]bool{}
	for _, c := range p.Collections {
		inSnapshot[c.Source] = true
	}
	for _, v := range p.Views {
		inSnapshot[v.Source] = true
	}
	var out []LateNamespace
	for _, src := range names.order {
		l := *names.byNS[src]
		if inSnapshot[src] || !p.Mapper.Match(src.DB, src.Coll) {
			continue
		}
		l.Target = p.Mapper.Target(src.DB, src.Coll)
		if l.Options == nil && l.renamedFrom != nil {
			l.Options, l.Indexes = p.specOf(*l.renamedFrom, names)
		}
		out = append(out, l)
	}
	return out
}

// specOf is what a renamed collection brings along: its options and indexes
// from the snapshot, or from the range's own DDL entries.
func (p *Plan) specOf(src Namespace, names *oplogNames) (bson.Raw, []bson.Raw) {
	for _, c := range p.Snapshot.Manifest.Collections {
		if c.DB == src.DB && c.Name == src.Coll {
			return c.Options, c.Indexes
		}
	}
	if l, ok := names.byNS[src]; ok {
		return l.Options, l.Indexes
	}
	return nil, nil
}

// oplogNames collects what a range of oplog entries names: every database
// and db.coll (seen, for the --ns and --rename checks), each namespace with
// what its DDL entries say about it, and the databases dropped whole.
type oplogNames struct {
	seen       map[string]bool // "db" and "db.coll"
	order      []Namespace
	byNS       map[Namespace]*LateNamespace
	droppedDBs map[string]bool
}

func newOplogNames() *oplogNames {
	return &oplogNames{seen: map[string]bool{}, byNS: map[Namespace]*LateNamespace{}, droppedDBs: map[string]bool{}}
}

// collCommands are the commands the replay runs on the collection their
// first field names (replay's collCommands): the namespaces they touch.
var collCommands = map[string]bool{"create": true, "drop": true, "createIndexes": true, "commitIndexBuild": true,
	"dropIndexes": true, "deleteIndexes": true, "dropIndex": true, "deleteIndex": true, "collMod": true,
	"convertToCapped": true, "emptycapped": true}

// add records the namespaces one entry writes (inside a transaction's
// applyOps too).
func (o *oplogNames) add(e bson.Raw) {
	op, _ := e.Lookup("op").StringValueOK()
	ns, _ := e.Lookup("ns").StringValueOK()
	n := splitNS(ns)
	switch op {
	case "i", "u", "d":
		o.touch(n)
	case "c":
		if cmd, ok := e.Lookup("o").DocumentOK(); ok {
			o.command(n.DB, cmd)
		}
	}
}

func (o *oplogNames) command(db string, cmd bson.Raw) {
	els, err := cmd.Elements()
	if err != nil || len(els) == 0 {
		return
	}
	name, v := els[0].Key(), els[0].Value()
	switch name {
	case "applyOps":
		_ = eachApplied(v, func(d bson.Raw) error { o.add(d); return nil })
		return
	case "dropDatabase":
		o.droppedDBs[db] = true
		return
	case "renameCollection":
		from, _ := v.StringValueOK()
		to, _ := cmd.Lookup("to").StringValueOK()
		src, dst := o.touch(splitNS(from)), o.touch(splitNS(to))
		if src != nil && dst != nil && dst.renamedFrom == nil {
			dst.renamedFrom = &src.Source
		}
		return
	}
	coll, ok := v.StringValueOK()
	if !ok || !collCommands[name] {
		return
	}
	l := o.touch(Namespace{db, coll})
	if l == nil {
		return
	}
	switch name {
	case "create":
		if l.Options == nil {
			l.Options = without(cmd, "create", "idIndex")
			l.View = cmd.Lookup("viewOn").Type != 0
		}
	case "createIndexes":
		l.Indexes = append(l.Indexes, without(cmd, "createIndexes"))
	case "commitIndexBuild":
		arr, _ := cmd.Lookup("indexes").ArrayOK()
		vals, _ := arr.Values()
		for _, spec := range vals {
			if d, ok := spec.DocumentOK(); ok {
				l.Indexes = append(l.Indexes, d)
			}
		}
	}
}

// touch records db.coll as written and returns its record (nil for a
// database-wide or malformed name).
func (o *oplogNames) touch(n Namespace) *LateNamespace {
	if n.DB == "" || n.Coll == "" || n.Coll == "$cmd" {
		return nil
	}
	o.seen[n.DB] = true
	o.seen[n.String()] = true
	if l, ok := o.byNS[n]; ok {
		return l
	}
	l := &LateNamespace{Source: n}
	o.byNS[n] = l
	o.order = append(o.order, n)
	return l
}

// without copies doc without the named top-level fields.
func without(doc bson.Raw, names ...string) bson.Raw {
	var d bson.D
	for _, e := range mustElements(doc) {
		skip := false
		for _, n := range names {
			skip = skip || e.Key() == n
		}
		if !skip {
			d = append(d, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	raw, err := bson.Marshal(d)
	if err != nil {
		return nil
	}
	return raw
}

// eachApplied calls fn with every operation of an applyOps command's
// array (v), in order, and stops at fn's first error. Elements that are
// not documents are skipped.
func eachApplied(v bson.RawValue, fn func(op bson.Raw) error) error {
	arr, _ := v.ArrayOK()
	vals, _ := arr.Values()
	for _, inner := range vals {
		if d, ok := inner.DocumentOK(); ok {
			if err := fn(d); err != nil {
				return err
			}
		}
	}
	return nil
}
