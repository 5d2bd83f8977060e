package restore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/repo"
)

// oplogVectors is shared/oplog/vectors beside the repository, else the copy
// the replay package keeps in its testdata.
func oplogVectors(t *testing.T) []string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "oplog", "replay", "testdata", "vectors")
	for d := wd; filepath.Dir(d) != d; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, "shared", "oplog", "vectors")); err == nil && st.IsDir() {
			dir = filepath.Join(d, "shared", "oplog", "vectors")
			break
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no oplog vectors in %s (%v)", dir, err)
	}
	return files
}

// Every namespace a replay leaves in the target is one the snapshot held
// or one Resolve lists from the oplog range, so the target check sees it
// before the first write; and a collection the range creates is expected
// with the options it was created with (renames carry them along). Checked
// on every replay vector: their entries are what MongoDB logs (creates,
// renames across databases through a temporary collection, convertToCapped,
// transactions' applyOps), which FerretDB never logs.
func TestOplogNamespacesCoverEveryVector(t *testing.T) {
	for _, file := range oplogVectors(t) {
		var v struct {
			Before       bson.Raw   `bson:"before"`
			Entries      []bson.Raw `bson:"entries"`
			After        bson.Raw   `bson:"after"`
			AfterOptions bson.Raw   `bson:"after_options"`
		}
		b, err := os.ReadFile(file)
		must(t, err)
		must(t, bson.UnmarshalExtJSON(b, true, &v))
		p := Plan{Mapper: Mapper{rename: map[string]string{}}}
		for _, e := range mustElements(v.Before) {
			n := splitNS(e.Key())
			p.Snapshot.Manifest.Collections = append(p.Snapshot.Manifest.Collections, repo.CollectionManifest{DB: n.DB, Name: n.Coll})
			p.Collections = append(p.Collections, CollectionPlan{Source: n, Target: n})
		}
		names := newOplogNames()
		for _, e := range v.Entries {
			names.add(e)
		}
		late := map[string]LateNamespace{}
		for _, l := range p.lateNamespaces(names) {
			late[l.Target.String()] = l
		}
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		for _, e := range mustElements(v.After) {
			ns := e.Key()
			n := splitNS(ns)
			if v.Before.Lookup(ns).Type != 0 || !p.Mapper.Match(n.DB, n.Coll) {
				continue
			}
			l, ok := late[ns]
			if !ok {
				t.Errorf("%s: the replay leaves %s, which Resolve does not list (late: %v)", name, ns, keys(late))
				continue
			}
			if want, ok := v.AfterOptions.Lookup(ns).DocumentOK(); ok {
				if !subset(want, l.Options) {
					t.Errorf("%s: %s is expected with options %s, want %s among them", name, ns, l.Options, want)
				}
			}
		}
	}
}

// subset: every field of want is in got with an equal value (documents
// as subsets, numbers by value), as the vectors' README says.
func subset(want, got bson.Raw) bool {
	for _, e := range mustElements(want) {
		g := got.Lookup(e.Key())
		if d, ok := e.Value().DocumentOK(); ok {
			gd, ok := g.DocumentOK()
			if !ok || !subset(d, gd) {
				return false
			}
		} else if !equalValue(e.Value(), g, nil) {
			return false
		}
	}
	return true
}

func keys(m map[string]LateNamespace) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
