package restore

import (
	"fmt"
	"slices"
	"strings"
)

// Namespace is a database and collection name.
type Namespace struct{ DB, Coll string }

func (n Namespace) String() string { return n.DB + "." + n.Coll }

// splitNS splits "db.coll" at the first dot: database names have none,
// collection names may ("a.b").
func splitNS(s string) Namespace {
	db, coll, _ := strings.Cut(s, ".")
	return Namespace{db, coll}
}

// systemDBs hold the server's own state; a restore never writes them
// (users and roles go through their own commands).
var systemDBs = map[string]bool{"admin": true, "config": true, "local": true}

// dbForbidden are the characters MongoDB refuses in database names.
const dbForbidden = "/\\. \"$*<>:|?\x00"

// Mapper selects source namespaces and names them in the target, the
// semantics of --ns and --rename.
type Mapper struct {
	include []Namespace // Coll "" means every collection of DB
	rename  map[string]string
	// stage, when set, names every target in that staging run's databases
	// (stagingDB) instead, whatever rename says: nothing a staged restore
	// writes can land outside them.
	stage string
}

// NewMapper parses --ns patterns ("db", "db.*", "db.coll") and --rename
// pairs ("db=newdb" or "db.coll=db2.coll2"). Errors are *InvalidError.
func NewMapper(include []string, rename map[string]string) (Mapper, error) {
	m := Mapper{rename: map[string]string{}}
	for _, p := range include {
		ns, err := parsePattern(p)
		if err != nil {
			return Mapper{}, err
		}
		m.include = append(m.include, ns)
	}
	for from, to := range rename {
		if err := checkRename(from, to); err != nil {
			return Mapper{}, err
		}
		m.rename[from] = to
	}
	return m, nil
}

func parsePattern(p string) (Namespace, error) {
	ns := splitNS(p)
	switch {
	case ns.DB == "":
		return ns, invalid("ns", "%q: the database name is empty; use db, db.* or db.coll", p)
	case strings.ContainsAny(ns.DB, dbForbidden):
		return ns, invalid("ns", "%q: the database name holds a character MongoDB forbids; use db, db.* or db.coll", p)
	case systemDBs[ns.DB]:
		return ns, invalid("ns", "%q: %s is a system database, never restored; use %s for users and roles", p, ns.DB, Field("with_users_and_roles"))
	case ns.Coll == "*":
		ns.Coll = ""
	case strings.Contains(ns.Coll, "*"):
		return ns, invalid("ns", "%q: wildcards are only allowed as a whole collection name (db.*)", p)
	case strings.Contains(p, ".") && ns.Coll == "":
		return ns, invalid("ns", "%q: the collection name is empty; use db, db.* or db.coll", p)
	}
	return ns, nil
}

// RenamePair is one --rename FROM=TO (one entry of the API's "rename").
type RenamePair struct{ From, To string }

// Renames makes the rename map of a request from pairs in the order they
// were given, refusing a FROM given twice (naming both pairs) rather than
// keeping the last. Errors are *InvalidError; each pair is checked by
// Validate.
func Renames(pairs []RenamePair) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		if prev, ok := out[p.From]; ok {
			return nil, invalid("rename", "%s=%s and %s %s=%s: %s is renamed twice; give it one target", p.From, prev, Field("rename"), p.From, p.To, p.From)
		}
		out[p.From] = p.To
	}
	return out, nil
}

func checkRename(from, to string) error {
	f, t := splitNS(from), splitNS(to)
	pair := from + "=" + to
	switch {
	case from == "" || to == "":
		return invalid("rename", "%s: both names are needed, for example shop=shop_0930", pair)
	case f.DB == "" || t.DB == "" || strings.Contains(from, ".") != strings.Contains(to, ".") ||
		(strings.Contains(from, ".") && (f.Coll == "" || t.Coll == "")):
		return invalid("rename", "%s: rename a database to a database (shop=shop_0930) or a collection to a collection (shop.orders=shop.orders_old)", pair)
	case systemDBs[t.DB] || systemDBs[f.DB]:
		return invalid("rename", "%s: admin, config and local are never restored", pair)
	}
	if why := badDBName(t.DB); why != "" {
		return invalid("rename", "%s: %s; choose another name", pair, why)
	}
	if t.Coll == "" {
		return nil
	}
	if why := badCollName(t.Coll); why != "" {
		return invalid("rename", "%s: %s; choose another name", pair, why)
	}
	if len(to) > maxNamespace {
		return invalid("rename", "%s: %q has %d bytes; MongoDB takes at most %d for database.collection; choose a shorter name", pair, to, len(to), maxNamespace)
	}
	return nil
}

// maxNamespace is MongoDB's limit on "db.coll", in bytes (4.4 and later).
const maxNamespace = 255

// badDBName says why MongoDB refuses a database name, "" if it takes it.
func badDBName(db string) string {
	switch {
	case db == "":
		return "the database name is empty"
	case strings.ContainsAny(db, dbForbidden):
		return fmt.Sprintf("database name %q holds a character MongoDB forbids there (/\\. \"$*<>:|? or NUL)", db)
	case len(db) > 63:
		return fmt.Sprintf("database name %q has %d bytes; MongoDB takes at most 63", db, len(db))
	}
	return ""
}

// badCollName says why MongoDB refuses a collection name, "" if it takes it.
func badCollName(coll string) string {
	switch {
	case coll == "":
		return "the collection name is empty"
	case strings.HasPrefix(coll, "system."):
		return fmt.Sprintf("collection name %q starts with system., which MongoDB keeps for its own collections", coll)
	case strings.HasPrefix(coll, "."):
		return fmt.Sprintf("collection name %q starts with a dot, which MongoDB refuses", coll)
	case strings.ContainsAny(coll, "$\x00"):
		return fmt.Sprintf("collection name %q holds $ or NUL, which MongoDB refuses", coll)
	}
	return ""
}

// Match reports whether source db.coll is selected. A staging database
// (StagingPrefix) is never selected: it held a filtered restore's or an
// undo's working copies on the source, and was dropped when it ended.
func (m Mapper) Match(db, coll string) bool {
	if systemDBs[db] || strings.HasPrefix(coll, "system.") && coll != "system.js" || strings.HasPrefix(db, StagingPrefix) {
		return false
	}
	if len(m.include) == 0 {
		return true
	}
	return slices.ContainsFunc(m.include, func(p Namespace) bool {
		return p.DB == db && (p.Coll == "" || p.Coll == coll)
	})
}

// Target names source db.coll in the target; a collection's rename wins
// over its database's.
func (m Mapper) Target(db, coll string) Namespace {
	if m.stage != "" {
		return Namespace{stagingDB(m.stage, db), coll}
	}
	if to, ok := m.rename[db+"."+coll]; ok {
		return splitNS(to)
	}
	if to, ok := m.rename[db]; ok {
		return Namespace{to, coll}
	}
	return Namespace{db, coll}
}

// Map is the replay mapping: the target name of a selected namespace, or
// ok false to skip it.
func (m Mapper) Map(db, coll string) (string, string, bool) {
	if !m.Match(db, coll) {
		return "", "", false
	}
	t := m.Target(db, coll)
	return t.DB, t.Coll, true
}

// claims records which source each target namespace is restored from, so
// that no two sources land on one target, wherever they come from: the
// snapshot's collections and views, or the namespaces the oplog range
// creates (Plan.Late). Only a --rename can make two meet.
type claims struct {
	m  Mapper
	by map[Namespace]claimed
}

type claimed struct {
	src  Namespace
	late bool // from the oplog range, not the snapshot
}

func newClaims(m Mapper) claims { return claims{m: m, by: map[Namespace]claimed{}} }

// claim gives dst to src, or says which --rename makes it collide.
func (c claims) claim(src, dst Namespace, late bool) error {
	prev, ok := c.by[dst]
	if !ok {
		c.by[dst] = claimed{src, late}
		return nil
	}
	var pairs []string
	for _, s := range []Namespace{prev.src, src} {
		if r := c.m.renameOf(s); r != "" && !slices.Contains(pairs, r) {
			pairs = append(pairs, r)
		}
	}
	slices.Sort(pairs)
	head := ""
	if len(pairs) > 0 {
		head = strings.Join(pairs, " and ") + ": "
	}
	return fmt.Errorf("plan restore: %w", invalid("rename", "%s%s and %s would both be restored as %s; give each its own target name",
		head, prev.describe(), claimed{src, late}.describe(), dst))
}

func (c claimed) describe() string {
	if c.late {
		return c.src.String() + " (created after the snapshot, in the oplog)"
	}
	return c.src.String()
}

// renameOf is the FROM=TO pair that renames source ns, "" if none does.
func (m Mapper) renameOf(ns Namespace) string {
	if to, ok := m.rename[ns.String()]; ok {
		return ns.String() + "=" + to
	}
	if to, ok := m.rename[ns.DB]; ok {
		return ns.DB + "=" + to
	}
	return ""
}
