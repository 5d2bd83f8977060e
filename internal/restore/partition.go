package restore

import (
	"math"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// step is one unit of a parallel replay: a barrier entry, applied alone
// once everything before it is applied, or a run of CRUD entries split
// into lanes that are applied at the same time, each in oplog order.
type step struct {
	barrier bson.Raw     // nil for a run
	lanes   [][]bson.Raw // a run's entries by lane
}

// partitioner decides which lane applies each oplog entry, the way
// MongoDB's own secondaries do (a hash of the namespace and the document's
// _id, OplogApplierUtils::addToWriterVector): a document's entries always
// land in the same lane, so they keep their order, and documents in
// different lanes do not depend on each other, except in these cases,
// which it serializes:
//
//   - every command entry ("c": DDL, applyOps, transactions' chunks,
//     commitTransaction, abortTransaction) and any entry it cannot place is
//     a barrier;
//   - writes to <db>.system.* (views are documents of system.views) are
//     barriers;
//   - with skipMigrate, a fromMigrate entry is a barrier (whether it is
//     skipped depends on the temp collections the barrier applier tracks);
//   - a serial namespace's entries all go to one lane, by namespace: capped
//     collections (natural order is their meaning, as on MongoDB), those
//     with a collation (two _id strings a collation calls equal are one
//     document), and every namespace a command touches, from the batch
//     that holds that command on. The last is for unique secondary
//     indexes: two documents may conflict on one (delete A holding key k,
//     then insert B with key k), which MongoDB's secondaries tolerate by
//     relaxing unique constraints during application
//     (ReplicationCoordinator::shouldRelaxIndexConstraints) and a client
//     cannot. A restore builds the snapshot's indexes after the replay, so
//     during it a collection holds secondary indexes only once a command
//     touched it (createIndexes, or a DDL entry before which the restore
//     builds its indexes, indexBuilder.beforeDDL): those go serial, and so
//     does every collection whose backup has a unique secondary index, as
//     the target may hold that collection, empty, with its indexes.
type partitioner struct {
	lanes       int
	skipMigrate bool
	serial      map[string]bool // source namespaces ("db.coll") applied in one lane
	serialDB    map[string]bool // databases a dropDatabase touched: all their namespaces
}

// newPartitioner returns a partitioner for lanes lanes whose serial
// namespaces start as the plan's collections (and those its range
// creates) that are capped, collated or have a unique secondary index.
func newPartitioner(p Plan, lanes int) *partitioner {
	pt := &partitioner{lanes: max(lanes, 1), skipMigrate: len(p.Parts) > 0,
		serial: map[string]bool{}, serialDB: map[string]bool{}}
	for _, c := range p.Collections {
		if serialOptions(c.Manifest.Options) || hasUniqueIndex(c.Manifest.Indexes) {
			pt.serial[c.Source.String()] = true
		}
	}
	for _, l := range p.Late {
		if serialOptions(l.Options) || hasUniqueIndex(l.Indexes) {
			pt.serial[l.Source.String()] = true
		}
	}
	return pt
}

// serialOptions reports whether collection options (as listCollections
// shows them) make a collection capped or collated.
func serialOptions(o bson.Raw) bool {
	return o != nil && (truthy(o.Lookup("capped")) || o.Lookup("collation").Type == bson.TypeEmbeddedDocument)
}

// hasUniqueIndex reports whether specs (as listIndexes shows them) hold a
// unique index other than _id's. The restore builds such an index only
// after the replay, but the target may hold it already: an empty target
// collection with the backup's options and indexes is not in the way
// (Check), so the replay writes into it with its indexes on.
func hasUniqueIndex(specs []bson.Raw) bool {
	for _, s := range specs {
		if name, _ := s.Lookup("name").StringValueOK(); name != "_id_" && truthy(s.Lookup("unique")) {
			return true
		}
	}
	return false
}

// split cuts entries into steps: consecutive CRUD entries form one run,
// split into lanes; each barrier is a step of its own. Namespaces the
// batch's commands touch become serial first, for the whole batch (their
// indexes may be built before the batch is applied).
func (pt *partitioner) split(entries []bson.Raw) []step {
	for _, e := range entries {
		pt.markCommand(e, 0)
	}
	var steps []step
	var run [][]bson.Raw
	for _, e := range entries {
		lane, ok := pt.place(e)
		if !ok {
			if run != nil {
				steps = append(steps, step{lanes: run})
				run = nil
			}
			steps = append(steps, step{barrier: e})
			continue
		}
		if run == nil {
			run = make([][]bson.Raw, pt.lanes)
		}
		run[lane] = append(run[lane], e)
	}
	if run != nil {
		steps = append(steps, step{lanes: run})
	}
	return steps
}

// place returns the lane of a CRUD or no-op entry, or ok=false for a
// barrier.
func (pt *partitioner) place(e bson.Raw) (lane int, ok bool) {
	op, _ := e.Lookup("op").StringValueOK()
	var idSrc string
	switch op {
	case "i", "d":
		idSrc = "o"
	case "u":
		idSrc = "o2" // the document's _id; o holds the change
	case "n", "xi", "xd", "ci", "cu", "cd", "km":
		return 0, true // skipped by any lane: no order to keep
	default:
		return 0, false
	}
	ns, _ := e.Lookup("ns").StringValueOK()
	db, coll, found := strings.Cut(ns, ".")
	if !found || strings.HasPrefix(coll, "system.") {
		return 0, false
	}
	if pt.skipMigrate && truthy(e.Lookup("fromMigrate")) {
		return 0, false
	}
	h := newHash().str(ns)
	if pt.serial[ns] || pt.serialDB[db] {
		return h.lane(pt.lanes), true
	}
	o, isDoc := e.Lookup(idSrc).DocumentOK()
	if !isDoc {
		return 0, false // the barrier applier reports it
	}
	id, err := o.LookupErr("_id")
	if err != nil {
		return 0, false
	}
	return h.value(id).lane(pt.lanes), true
}

// markCommand makes serial every namespace a command entry (or an
// operation inside its applyOps) names.
func (pt *partitioner) markCommand(e bson.Raw, depth int) {
	if op, _ := e.Lookup("op").StringValueOK(); op != "c" || depth > 10 {
		return
	}
	ns, _ := e.Lookup("ns").StringValueOK()
	db, _, _ := strings.Cut(ns, ".")
	o, ok := e.Lookup("o").DocumentOK()
	if !ok {
		return
	}
	els, err := o.Elements()
	if err != nil || len(els) == 0 {
		return
	}
	name, v := els[0].Key(), els[0].Value()
	switch name {
	case "applyOps":
		_ = eachApplied(v, func(d bson.Raw) error { pt.markCommand(d, depth+1); return nil })
	case "dropDatabase":
		pt.serialDB[db] = true
	case "renameCollection":
		from, _ := v.StringValueOK()
		to, _ := o.Lookup("to").StringValueOK()
		pt.serial[from], pt.serial[to] = true, true
	default:
		if coll, ok := v.StringValueOK(); ok {
			pt.serial[db+"."+coll] = true
		}
	}
}

// hash is 64-bit FNV-1a, deterministic across runs (a test can predict
// lanes, a replay can be repeated).
type hash uint64

func newHash() hash { return 14695981039346656037 }

func (h hash) bytes(b []byte) hash {
	for _, c := range b {
		h = (h ^ hash(c)) * 1099511628211
	}
	return h
}

func (h hash) str(s string) hash {
	for i := 0; i < len(s); i++ {
		h = (h ^ hash(s[i])) * 1099511628211
	}
	return h
}

func (h hash) u64(v uint64) hash {
	for range 8 {
		h = (h ^ hash(v&0xff)) * 1099511628211
		v >>= 8
	}
	return h
}

func (h hash) lane(n int) int { return int(uint64(h) % uint64(n)) }

// value hashes an _id so that values MongoDB's _id index holds equal hash
// equal (they are one document): every numeric type by its value
// (int32 1, int64 1, 1.0 and decimal 1.00 are one _id), string and symbol
// alike, documents and arrays element by element. Other types hash their
// type and raw bytes. Unequal values may collide: that only puts two
// documents in one lane.
func (h hash) value(v bson.RawValue) hash {
	switch v.Type {
	case bson.TypeDouble, bson.TypeInt32, bson.TypeInt64, bson.TypeDecimal128:
		return h.u64('N').u64(math.Float64bits(idNumber(v)))
	case bson.TypeString, bson.TypeSymbol:
		s, ok := v.StringValueOK()
		if !ok {
			s, _ = v.SymbolOK()
		}
		return h.u64('S').str(s)
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		h = h.u64(uint64(v.Type))
		els, err := bson.Raw(v.Value).Elements()
		if err != nil {
			return h.bytes(v.Value)
		}
		for _, el := range els {
			if v.Type == bson.TypeEmbeddedDocument {
				h = h.str(el.Key())
			}
			h = h.value(el.Value())
		}
		return h
	case bson.TypeUndefined:
		return h.u64(uint64(bson.TypeNull))
	}
	return h.u64(uint64(v.Type)).bytes(v.Value)
}

// idNumber is a numeric _id as a float64 with one zero and one NaN: equal
// numbers of any type give the same float (an int64 beyond 2^53 rounds,
// which only merges lanes).
func idNumber(v bson.RawValue) float64 {
	var f float64
	switch v.Type {
	case bson.TypeDouble:
		f = v.Double()
	case bson.TypeInt32:
		f = float64(v.Int32())
	case bson.TypeInt64:
		f = float64(v.Int64())
	case bson.TypeDecimal128:
		d, _ := v.Decimal128OK()
		f, _ = strconv.ParseFloat(d.String(), 64) // Inf and NaN parse too; garbage gives 0
	}
	switch {
	case f == 0:
		return 0
	case math.IsNaN(f):
		return math.NaN()
	}
	return f
}
