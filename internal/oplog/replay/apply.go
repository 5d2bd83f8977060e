package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/source"
)

// DefaultBatchSize is how many CRUD writes Apply gathers before writing them.
const DefaultBatchSize = 1000

// DefaultWriteBatch is how many writes go in one write command. Small,
// because FerretDB v1.24 as a target keeps a cursor open for every update
// statement until its command ends and stalls past about 64 of them (100
// replacements in one command took over two minutes); on MongoDB, 50 per
// round trip costs little.
const DefaultWriteBatch = 50

// Applier applies oplog entries to a target deployment as ordinary writes.
// It keeps state between calls to Apply (open transactions, temporary
// collections), so one Applier replays one oplog window, in order. It is not
// safe for concurrent use.
type Applier struct {
	Client *mongo.Client // v2 driver, the target
	// Memory, set instead of Client, makes an in-memory deployment the
	// target: the same translation, with no server (see Memory).
	Memory *Memory
	// Flavor is the flavor of the source that wrote the entries, as the
	// repository recorded it (source.ParseFlavor); "" is MongoDB.
	Flavor source.Flavor
	// Map decides whether an entry's namespace is applied and where: given the
	// source db and collection, it returns the target db and collection and
	// ok=false to skip. nil = identity. DDL entries are mapped the same way.
	// Database-wide commands (dropDatabase) ask Map(db, "$cmd") for the target
	// database. A renameCollection whose source is filtered out drops its target
	// when the entry says dropTarget (the data that replaced it is not
	// restored); one whose target is filtered out drops the source (the data
	// left the restored set). A view is created only when Map keeps both the
	// view and the collection it reads in the same target database.
	Map func(db, coll string) (tdb, tcoll string, ok bool)
	Log *slog.Logger

	// SkipFromMigrate skips entries marked fromMigrate (chunk migrations),
	// as a restore of a whole sharded cluster from every shard's oplog must;
	// writes to a collection created with temp: true inside the window
	// (convertToCapped's copy) are applied anyway. Leave it false when
	// restoring one replica set on its own.
	SkipFromMigrate bool
	// BatchSize caps the CRUD writes gathered before they are written
	// (DefaultBatchSize when 0). Commands always flush the batch first.
	BatchSize int
	// DeferIndexes records the indexes the window creates instead of
	// building them when their entry is read; BuildIndexes builds them at the
	// end (see indexes.go for why). The caller must call BuildIndexes.
	DeferIndexes bool
	// WriteBatch caps the writes sent in one write command
	// (DefaultWriteBatch when 0).
	WriteBatch int
	// BypassEmptyTsReplacement adds bypassEmptyTsReplacement: true to every
	// write command, so the server keeps a top-level Timestamp(0, 0) as
	// written instead of putting the current time there (SERVER-88750).
	// Set it only for servers that accept the field (8.0+, 7.0.13+,
	// 6.0.17+, 5.0.29+); older ones, and FerretDB, refuse it as unknown.
	BypassEmptyTsReplacement bool

	txns     map[string]*txn // open transactions by lsid+txnNumber
	decided  map[string]int  // cross-shard transactions already decided: other shards' decisions still to come
	temp     map[string]bool // source namespaces created with temp: true
	batch    []write         // CRUD writes not yet sent
	deferred []deferredIndex // with DeferIndexes: indexes to build at the end
	stats    *Stats
}

// Stats counts what Apply did. Entries counts the entries passed in; the
// other counters count operations, including those inside applyOps.
type Stats struct{ Entries, Inserts, Updates, Deletes, Commands, Skipped int64 }

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.Entries += o.Entries
	s.Inserts += o.Inserts
	s.Updates += o.Updates
	s.Deletes += o.Deletes
	s.Commands += o.Commands
	s.Skipped += o.Skipped
}

// Apply applies entries (in oplog order) and returns when all are applied.
// Consecutive CRUD writes are batched per namespace (each document's writes
// keep their order; commands are barriers). Transactions still open at the
// end (partialTxn chunks, prepared but not yet committed) stay buffered for
// the next call; see Pending.
func (a *Applier) Apply(ctx context.Context, entries []bson.Raw) (Stats, error) {
	var st Stats
	switch {
	case (a.Client == nil) == (a.Memory == nil):
		return st, errors.New("apply oplog entries: set exactly one target, a Client or a Memory")
	}
	a.stats = &st
	defer func() { a.stats = nil }()
	for _, raw := range entries {
		st.Entries++
		e, err := parseEntry(raw)
		if err == nil {
			err = a.dispatch(ctx, e, 0)
		}
		if err != nil {
			a.batch = a.batch[:0]
			return st, fmt.Errorf("apply oplog entry %s: %w", describe(raw), err)
		}
	}
	if err := a.flush(ctx); err != nil {
		return st, fmt.Errorf("apply oplog entries: %w", err)
	}
	return st, nil
}

// Pending is the number of transactions buffered and not yet committed or
// aborted. A restore ending with some open drops them (shared/oplog/README.md §7.4).
func (a *Applier) Pending() int { return len(a.txns) }

// describe names an entry in errors: its ts, op and ns.
func describe(raw bson.Raw) string {
	var parts []string
	if ts, ok := lookup(raw, "ts"); ok && ts.Type == bson.TypeTimestamp {
		t, i := ts.Timestamp()
		parts = append(parts, fmt.Sprintf("ts=%d,%d", t, i))
	}
	for _, k := range []string{"op", "ns"} {
		if v, ok := lookup(raw, k); ok && v.Type == bson.TypeString {
			parts = append(parts, fmt.Sprintf("%s=%q", k, v.StringValue()))
		}
	}
	return "(" + strings.Join(parts, " ") + ")"
}

func (a *Applier) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

func (a *Applier) mapNS(db, coll string) (string, string, bool) {
	if a.Map == nil {
		return db, coll, true
	}
	return a.Map(db, coll)
}

// wholeDocumentUpdates: the source logged every update as a $set of the
// whole new document (source.Flavor.WholeDocumentUpdates).
func (a *Applier) wholeDocumentUpdates() bool { return a.Flavor.WholeDocumentUpdates() }

// maxNesting bounds nested applyOps.
const maxNesting = 10

// dispatch applies one entry or one operation inside applyOps.
func (a *Applier) dispatch(ctx context.Context, e entry, depth int) error {
	switch e.op {
	case "n":
		a.stats.Skipped++ // no-ops, including findAndModify image entries (§8)
		return nil
	case "i", "u", "d":
		return a.crud(ctx, e)
	case "c":
		if err := a.flush(ctx); err != nil {
			return err
		}
		return a.command(ctx, e, depth)
	}
	if internalOps[e.op] {
		a.stats.Skipped++
		return nil
	}
	return fmt.Errorf("unknown op %q: %s", e.op, unknownAdvice)
}

// internalOps are op kinds newer servers log for their own storage, with no
// user document in them (shared/oplog/README.md §1): "xi" and "xd" insert
// and delete global index keys (7.x, sharding); "ci", "cu", "cd" write to a
// storage container by its ident, such as the table of an index built by a
// primary-driven index build (8.x+, mongo/db/repl/container_oplog_entry.idl),
// and "km" is listed with them by the notes. Rewind builds indexes itself,
// so it skips them, as mongorestore skips internal op kinds (§11).
var internalOps = map[string]bool{"xi": true, "xd": true, "ci": true, "cu": true, "cd": true, "km": true}

// unknownAdvice ends the error for an entry rewind does not know how to
// replay: it stops there rather than restore without that entry's change.
const unknownAdvice = "rewind does not know how to replay this entry and stops rather than restore without its change; " +
	"upgrade rewind, and if the newest release stops here too, please report it with this entry"

// crud queues an insert, update or delete.
func (a *Applier) crud(ctx context.Context, e entry) error {
	db, coll, err := splitNS(e.ns)
	if err != nil {
		return err
	}
	if internalNS(db, coll) || (e.fromMigrate && a.SkipFromMigrate && !a.temp[e.ns]) {
		a.stats.Skipped++
		return nil
	}
	if coll == "system.views" {
		if err := a.flush(ctx); err != nil {
			return err
		}
		return a.viewWrite(ctx, e, db)
	}
	tdb, tcoll, ok := a.mapNS(db, coll)
	if !ok {
		a.stats.Skipped++
		return nil
	}
	if strings.HasPrefix(coll, "system.buckets.") {
		return fmt.Errorf("replay time-series bucket writes (%s): not supported yet; exclude the collection from the restore", e.ns)
	}
	w := write{db: tdb, coll: tcoll, op: e.op[0], o: e.o}
	idSrc := e.o
	if e.op == "u" {
		idSrc = e.o2
	}
	if w.id, err = docID(idSrc); err != nil {
		return err
	}
	if e.op == "u" {
		if err := checkUpdate(e.o); err != nil {
			return err
		}
	}
	a.batch = append(a.batch, w)
	if len(a.batch) >= a.batchSize() {
		return a.flush(ctx)
	}
	return nil
}

func (a *Applier) batchSize() int {
	if a.BatchSize > 0 {
		return a.BatchSize
	}
	return DefaultBatchSize
}

// checkUpdate rejects malformed updates when they are read, so the error
// names the entry rather than the batch.
func checkUpdate(o bson.Raw) error {
	kind, diff := updateKind(o)
	switch kind {
	case 'v':
		_, err := applyDiff(bson.Raw{5, 0, 0, 0, 0}, diff)
		return err
	case 'm':
		_, err := parseModifier(o)
		return err
	}
	return nil
}

// newDocument computes the document an update leaves, from the current one.
func (a *Applier) newDocument(cur bson.Raw, id bson.RawValue, o bson.Raw) (bson.Raw, error) {
	kind, diff := updateKind(o)
	switch kind {
	case 'v':
		return applyDiff(cur, diff)
	case 'm':
		if a.wholeDocumentUpdates() {
			if whole, ok := ferretReplacement(o); ok {
				return withID(whole, id), nil
			}
		}
		return applyModifier(cur, o)
	}
	return withID(o, id), nil
}

// ferretReplacement recognizes FerretDB's logging of every update as
// {$v: 1, $set: <the whole new document>}: replaying it as a replacement is
// exact, replaying it as a $set would keep fields the update removed. Such
// a $set holds _id, which a MongoDB $set never does.
func ferretReplacement(o bson.Raw) (bson.Raw, bool) {
	es, err := elems(o)
	if err != nil {
		return nil, false
	}
	var set bson.Raw
	for _, e := range es {
		switch {
		case e.key == "$v":
		case e.key == "$set" && e.val.Type == bson.TypeEmbeddedDocument:
			set = e.val.Document()
		default:
			return nil, false
		}
	}
	if set == nil {
		return nil, false
	}
	// The whole document carries _id; a real $set never does (_id cannot change).
	_, hasID := lookup(set, "_id")
	return set, hasID
}

// withID returns doc with _id first: replacements keep the old _id in front
// when they lack one, and the server moves _id to the front anyway.
func withID(doc bson.Raw, id bson.RawValue) bson.Raw {
	fields, err := elems(doc)
	if err != nil {
		return doc
	}
	for i, f := range fields {
		if f.key == "_id" {
			if i == 0 {
				return doc
			}
			rest := append(append([]elem{}, fields[:i]...), fields[i+1:]...)
			return build(append([]elem{f}, rest...))
		}
	}
	return build(append([]elem{{"_id", id}}, fields...))
}
