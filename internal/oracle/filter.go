package oracle

import (
	"fmt"
	"strings"
)

// Filter selects namespaces and maps them to new names, the way a restore
// does. The zero Filter selects every user collection under its own name.
type Filter struct {
	// Include lists "db", "db.*" or "db.coll" patterns; empty or "*" means all.
	Include []string
	// Rename maps a source "db" or "db.coll" to the name it has in the target;
	// a "db.coll" entry wins over its database's entry.
	Rename map[string]string
}

// systemDBs hold no user data; the oracle ignores them.
var systemDBs = map[string]bool{"admin": true, "config": true, "local": true}

// splitNS splits "db.coll" at the first dot: database names have none,
// collection names may ("a.b").
func splitNS(ns string) (db, coll string) {
	db, coll, _ = strings.Cut(ns, ".")
	return db, coll
}

// Match reports whether the source namespace db.coll is selected.
func (f Filter) Match(db, coll string) bool {
	if systemDBs[db] {
		return false
	}
	if len(f.Include) == 0 {
		return true
	}
	for _, p := range f.Include {
		pdb, pcoll := splitNS(p)
		switch {
		case p == "*":
			return true
		case pdb == db && (pcoll == "" || pcoll == "*" || pcoll == coll):
			return true
		}
	}
	return false
}

// Target returns the name source db.coll has in the target deployment.
func (f Filter) Target(db, coll string) (string, string) {
	if to, ok := f.Rename[db+"."+coll]; ok {
		return splitNS(to)
	}
	if to, ok := f.Rename[db]; ok {
		return to, coll
	}
	return db, coll
}

// targetScope reports whether a target collection is one the filter covers,
// so that a collection there which the mark does not have is "extra".
func (f Filter) targetScope(db, coll string) bool {
	if systemDBs[db] {
		return false
	}
	if len(f.Include) == 0 {
		return true
	}
	for _, p := range f.Include {
		pdb, pcoll := splitNS(p)
		switch {
		case p == "*":
			return true
		case pcoll == "" || pcoll == "*":
			if tdb, _ := f.Target(pdb, "\x00"); tdb == db {
				return true
			}
		default:
			if tdb, tcoll := f.Target(pdb, pcoll); tdb == db && tcoll == coll {
				return true
			}
		}
	}
	return false
}

// ParseRename reads "from=to" pairs, as the command line takes them.
func ParseRename(pairs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, p := range pairs {
		from, to, ok := strings.Cut(p, "=")
		if !ok || from == "" || to == "" {
			return nil, fmt.Errorf("parse rename %q: want FROM=TO, for example db1=db1_restored", p)
		}
		m[from] = to
	}
	return m, nil
}
