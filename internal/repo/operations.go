package repo

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Operation kinds: what a segment index counts and what `rewind oplog
// --op` selects. An entry of a kind rewind does not name (the internal
// kinds newer servers log, such as "xi") keeps its op letter as its kind.
const (
	OpInsert  = "insert"
	OpUpdate  = "update"
	OpDelete  = "delete"
	OpCommand = "command"
)

// Where an operation was logged, for operations inside an applyOps entry.
const (
	// InTransaction: an applyOps of a transaction (it carries lsid and
	// txnNumber): a small transaction, or one chunk of a large one (the
	// chain commits at its last chunk).
	InTransaction = "transaction"
	// InPreparedTransaction: the applyOps of a prepared (cross-shard)
	// transaction; its writes happen at its commitTransaction, or never
	// if it is aborted.
	InPreparedTransaction = "prepared transaction"
	// InApplyOps: an applyOps outside any transaction (batched writes such
	// as a multi-document delete on 6.0 and later, or a user's applyOps).
	InApplyOps = "applyOps"
)

// Operation is one write or command an oplog entry holds: the entry
// itself, or one operation of its applyOps. It is the unit the segment
// index counts and the operation browser lists, so both agree.
type Operation struct {
	// Kind is OpInsert, OpUpdate, OpDelete or OpCommand, else the entry's
	// op letter ("" when it has none).
	Kind string
	// NS is the namespace the operation writes: the entry's ns for CRUD;
	// for a command that names a collection (create, drop, collMod,
	// createIndexes...), db.coll, and for renameCollection its source;
	// else the entry's own "db.$cmd".
	NS string
	// Doc is the entry, or the operation inside applyOps (which has no ts
	// of its own: it takes the enclosing entry's).
	Doc bson.Raw
	// In is "" for a top-level entry, else InTransaction,
	// InPreparedTransaction or InApplyOps.
	In string
}

// maxApplyOpsNesting bounds nested applyOps (old oplogs hold some); a
// deeper one is listed as one command rather than followed.
const maxApplyOpsNesting = 10

// Operations calls fn for every operation entry holds, in order. A no-op
// ("n") holds none. An applyOps entry holds the operations of its array
// (nested ones unpacked), not itself; every other command is one operation.
// It never fails on an entry's shape (the index of every captured segment
// must be writable): fields it cannot read leave Kind or NS empty. Only an
// error from fn is returned.
func Operations(entry bson.Raw, fn func(Operation) error) error {
	return operations(entry, "", 0, fn)
}

func operations(doc bson.Raw, in string, depth int, fn func(Operation) error) error {
	op, ns, o := entryFields(doc)
	switch op {
	case "n":
		return nil
	case "i":
		return fn(Operation{Kind: OpInsert, NS: ns, Doc: doc, In: in})
	case "u":
		return fn(Operation{Kind: OpUpdate, NS: ns, Doc: doc, In: in})
	case "d":
		return fn(Operation{Kind: OpDelete, NS: ns, Doc: doc, In: in})
	case "c":
		if inner, ok := o.Lookup("applyOps").ArrayOK(); ok && depth < maxApplyOpsNesting {
			return applyOps(doc, o, inner, in, depth, fn)
		}
		return fn(Operation{Kind: OpCommand, NS: commandNS(ns, o), Doc: doc, In: in})
	}
	return fn(Operation{Kind: op, NS: ns, Doc: doc, In: in})
}

// entryFields returns an entry's op and ns (strings) and o (a document),
// each as Lookup would (the first field of that name, zero when it is
// missing or of another type), in one pass over the entry's fields: three
// Lookups walk it three times, and every segment written or verified
// goes through here once per entry.
func entryFields(doc bson.Raw) (op, ns string, o bson.Raw) {
	if len(doc) < 5 {
		return "", "", nil
	}
	var seenOp, seenNS, seenO bool
	for rest := bsoncore.Document(doc[4 : len(doc)-1]); len(rest) > 0 && !(seenOp && seenNS && seenO); {
		el, next, ok := bsoncore.ReadElement(rest)
		if !ok {
			break
		}
		switch string(el.KeyBytes()) {
		case "op":
			if !seenOp {
				op, _ = el.Value().StringValueOK()
			}
			seenOp = true
		case "ns":
			if !seenNS {
				ns, _ = el.Value().StringValueOK()
			}
			seenNS = true
		case "o":
			if !seenO {
				if d, ok := el.Value().DocumentOK(); ok {
					o = bson.Raw(d)
				}
			}
			seenO = true
		}
		rest = next
	}
	return op, ns, o
}

// applyOps unpacks the array of an applyOps command entry.
func applyOps(entry, o bson.Raw, inner bson.RawArray, in string, depth int, fn func(Operation) error) error {
	if in == "" {
		in = InApplyOps
		_, hasLsid := entry.Lookup("lsid").DocumentOK()
		_, batched := entry.Lookup("multiOpType").AsInt64OK()
		if _, hasTxn := entry.Lookup("txnNumber").AsInt64OK(); hasLsid && hasTxn && !batched {
			in = InTransaction
		}
		if p, ok := o.Lookup("prepare").BooleanOK(); ok && p {
			in = InPreparedTransaction
		}
	}
	vals, err := inner.Values()
	if err != nil {
		return nil // invalid arrays are refused when segments are written
	}
	for _, v := range vals {
		if d, ok := v.DocumentOK(); ok {
			if err := operations(d, in, depth+1, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// commandNS is the namespace a command writes: db.coll when its first
// field names a collection of the entry's database (renameCollection's
// names the full source namespace), else the entry's ns (db.$cmd).
func commandNS(ns string, o bson.Raw) string {
	els, err := o.Elements()
	if err != nil || len(els) == 0 {
		return ns
	}
	name, ok := els[0].Value().StringValueOK()
	if !ok || name == "" {
		return ns
	}
	if els[0].Key() == "renameCollection" {
		return name
	}
	db, _, _ := strings.Cut(ns, ".")
	return db + "." + name
}
