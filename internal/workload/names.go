package workload

import (
	"fmt"
	"strings"
)

// dbSuffixes are database names under the prefix. FerretDB allows only
// ^[a-zA-Z0-9_-]{1,63}$ (MongoDB allows more), so the odd names are in the
// collections.
var dbSuffixes = []string{"app", "Orders-2026", "x_y", "UPPER", "d", "metrics"}

// collNames are collection names that trip naive code: dots, spaces,
// unicode, digits first, a long name.
var collNames = []string{
	"plain",
	"a.b",
	"with space",
	"ünïcødé-コレクション",
	"dotted.name.with.parts",
	"long_" + strings.Repeat("abcdefghij", 10),
	"123starts-with-digit",
	"emoji😀coll",
}

// Namespace is one collection the workload writes.
type Namespace struct {
	DB   string
	Coll string
}

func (n Namespace) String() string { return n.DB + "." + n.Coll }

// Namespaces returns the collections cfg writes, in a fixed order.
func Namespaces(cfg Config) []Namespace {
	cfg = cfg.withDefaults()
	var out []Namespace
	for d := 0; d < cfg.Databases; d++ {
		db := cfg.Prefix + dbSuffixes[d%len(dbSuffixes)]
		if d >= len(dbSuffixes) {
			db += fmt.Sprint(d)
		}
		for c := 0; c < cfg.Collections; c++ {
			// Rotate per database so every odd name shows up early.
			name := collNames[(c+d)%len(collNames)]
			if c >= len(collNames) {
				name += fmt.Sprint(c)
			}
			out = append(out, Namespace{DB: db, Coll: name})
		}
	}
	return out
}

// Databases returns the database names cfg writes.
func Databases(cfg Config) []string {
	var out []string
	seen := map[string]bool{}
	for _, ns := range Namespaces(cfg) {
		if !seen[ns.DB] {
			seen[ns.DB] = true
			out = append(out, ns.DB)
		}
	}
	return out
}
