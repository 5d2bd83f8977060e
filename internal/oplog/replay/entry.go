package replay

import (
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// entry is the part of an oplog entry replay reads. Fields are decoded by
// name; unknown top-level fields are ignored (shared/oplog/README.md §1).
type entry struct {
	op          string
	ns          string
	o           bson.Raw
	o2          bson.Raw // nil when absent
	lsid        bson.Raw // nil when absent
	txnNumber   int64
	hasTxn      bool
	fromMigrate bool
}

var errEntry = errors.New("malformed oplog entry")

// parseEntry decodes the fields replay needs and checks their types.
func parseEntry(raw bson.Raw) (entry, error) {
	var e entry
	if err := raw.Validate(); err != nil {
		return e, fmt.Errorf("%w: %v", errEntry, err)
	}
	op, ok := lookup(raw, "op")
	if !ok || op.Type != bson.TypeString {
		return e, fmt.Errorf("%w: no op", errEntry)
	}
	e.op = op.StringValue()
	if ns, ok := lookup(raw, "ns"); ok {
		if ns.Type != bson.TypeString {
			return e, fmt.Errorf("%w: ns is %s", errEntry, ns.Type)
		}
		e.ns = ns.StringValue()
	}
	o, ok := lookup(raw, "o")
	if !ok || o.Type != bson.TypeEmbeddedDocument {
		switch e.op {
		case "i", "u", "d", "c":
			return e, fmt.Errorf("%w: op %q without an o document", errEntry, e.op)
		}
		return e, nil // no-ops, internal and unknown kinds: dispatch decides
	}
	e.o = o.Document()
	if o2, ok := lookup(raw, "o2"); ok && o2.Type == bson.TypeEmbeddedDocument {
		e.o2 = o2.Document()
	}
	if l, ok := lookup(raw, "lsid"); ok && l.Type == bson.TypeEmbeddedDocument {
		e.lsid = l.Document()
	}
	if n, ok := lookup(raw, "txnNumber"); ok {
		e.txnNumber, e.hasTxn = n.AsInt64OK()
	}
	if fm, ok := lookup(raw, "fromMigrate"); ok {
		e.fromMigrate = truthy(fm)
	}
	return e, nil
}

// splitNS splits "db.coll" at the first dot (collection names may hold dots).
func splitNS(ns string) (db, coll string, err error) {
	db, coll, ok := strings.Cut(ns, ".")
	if !ok || db == "" || coll == "" {
		return "", "", fmt.Errorf("%w: namespace %q is not db.collection", errEntry, ns)
	}
	return db, coll, nil
}

// docID returns the _id element of a document (o2 of updates, o of deletes
// and inserts). Sharded collections add shard key fields: only _id counts.
func docID(d bson.Raw) (bson.RawValue, error) {
	if d == nil {
		return bson.RawValue{}, fmt.Errorf("%w: no document to find _id in", errEntry)
	}
	id, ok := lookup(d, "_id")
	if !ok {
		return bson.RawValue{}, fmt.Errorf("%w: no _id", errEntry)
	}
	return id, nil
}

// idFilter is {_id: <id>}, built from the raw value so its type survives.
func idFilter(id bson.RawValue) bson.Raw {
	return build([]elem{{"_id", id}})
}

// internalNS reports namespaces that are never user data and are skipped:
// local.* (never replicated), config.* (server bookkeeping) and the
// admin.system collections holding users, roles and the auth version (restore
// those from the snapshot).
func internalNS(db, coll string) bool {
	switch db {
	case "local", "config":
		return true
	case "admin":
		return coll == "system.users" || coll == "system.roles" || coll == "system.version" ||
			coll == "system.keys" || coll == "system.new_users" || coll == "system.backup_users"
	}
	return false
}

// updateKind tells the three shapes of an update's o (§5, checked in this order).
func updateKind(o bson.Raw) (kind byte, diff bson.Raw) {
	if v, ok := lookup(o, "$v"); ok {
		if n, ok := v.AsInt64OK(); ok && n == 2 {
			if d, ok := lookup(o, "diff"); ok && d.Type == bson.TypeEmbeddedDocument {
				return 'v', d.Document()
			}
		}
	}
	es, _ := o.Elements()
	for _, e := range es {
		if strings.HasPrefix(e.Key(), "$") {
			return 'm', nil
		}
	}
	return 'r', nil
}
