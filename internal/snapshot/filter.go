package snapshot

import (
	"fmt"
	"strings"
)

// Filter selects namespaces, as Ops Manager's include/exclude lists do. The
// zero Filter selects every user collection.
type Filter struct {
	include, exclude []pattern
}

// pattern is one parsed "db", "db.*" or "db.coll"; coll "" means any.
type pattern struct{ db, coll string }

// FilterError is a namespace pattern that cannot be understood: a usage
// mistake, reported before anything is read.
type FilterError struct {
	Pattern string
	Reason  string
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("namespace pattern %q: %s; use db, db.* or db.coll (collection names may hold dots: db.a.b is collection a.b)", e.Pattern, e.Reason)
}

// ParseFilter parses include and exclude patterns. An empty include list
// selects everything; excludes win over includes.
func ParseFilter(include, exclude []string) (Filter, error) {
	var f Filter
	for _, s := range include {
		p, err := parsePattern(s)
		if err != nil {
			return Filter{}, err
		}
		f.include = append(f.include, p)
	}
	for _, s := range exclude {
		p, err := parsePattern(s)
		if err != nil {
			return Filter{}, err
		}
		f.exclude = append(f.exclude, p)
	}
	return f, nil
}

// dbForbidden are the characters MongoDB refuses in database names.
const dbForbidden = "/\\. \"$*<>:|?\x00"

func parsePattern(s string) (pattern, error) {
	if s == "" {
		return pattern{}, &FilterError{s, "it is empty"}
	}
	db, coll, dotted := strings.Cut(s, ".")
	switch {
	case db == "":
		return pattern{}, &FilterError{s, "the database name is empty"}
	case strings.ContainsAny(db, dbForbidden):
		return pattern{}, &FilterError{s, "the database name holds a character MongoDB forbids (wildcards only as db.*)"}
	case dotted && coll == "":
		return pattern{}, &FilterError{s, "the collection name is empty"}
	case coll == "*":
		return pattern{db: db}, nil
	case strings.Contains(coll, "*"):
		return pattern{}, &FilterError{s, "wildcards are only allowed as a whole collection name (db.*)"}
	case strings.ContainsAny(coll, "$\x00"):
		return pattern{}, &FilterError{s, "collection names cannot hold $ or NUL"}
	}
	return pattern{db: db, coll: coll}, nil
}

func (p pattern) match(db, coll string) bool {
	return p.db == db && (p.coll == "" || p.coll == coll)
}

// Match reports whether db.coll is selected.
func (f Filter) Match(db, coll string) bool {
	for _, p := range f.exclude {
		if p.match(db, coll) {
			return false
		}
	}
	if len(f.include) == 0 {
		return true
	}
	for _, p := range f.include {
		if p.match(db, coll) {
			return true
		}
	}
	return false
}

// MatchDB reports whether some collection of db may be selected (a database
// excluded whole, or not named by any include, need not be listed).
func (f Filter) MatchDB(db string) bool {
	for _, p := range f.exclude {
		if p.db == db && p.coll == "" {
			return false
		}
	}
	if len(f.include) == 0 {
		return true
	}
	for _, p := range f.include {
		if p.db == db {
			return true
		}
	}
	return false
}

// systemDBs hold the server's own state, never user data.
var systemDBs = map[string]bool{"admin": true, "config": true, "local": true}

// copiedSystem are system.* collections that are user data.
var copiedSystem = map[string]bool{"system.js": true}

// userCollection reports whether a listed collection is one a snapshot may
// copy at all, whatever the filter says.
func userCollection(name string) bool {
	return !strings.HasPrefix(name, "system.") || copiedSystem[name]
}
