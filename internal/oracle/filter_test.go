package oracle

import "testing"

func TestFilter(t *testing.T) {
	f := Filter{
		Include: []string{"shop", "logs.*", "app.a.b"},
		Rename:  map[string]string{"shop": "shop2", "app.a.b": "other.x.y"},
	}
	match := []struct {
		db, coll string
		want     bool
	}{
		{"shop", "orders", true},
		{"logs", "2026", true},
		{"app", "a.b", true},
		{"app", "a", false},
		{"app", "a.b.c", false},
		{"admin", "x", false},
		{"local", "oplog.rs", false},
		{"shopping", "x", false},
	}
	for _, c := range match {
		if got := f.Match(c.db, c.coll); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.db, c.coll, got, c.want)
		}
	}
	target := []struct{ db, coll, tdb, tcoll string }{
		{"shop", "orders", "shop2", "orders"},
		{"logs", "2026", "logs", "2026"},
		{"app", "a.b", "other", "x.y"},
	}
	for _, c := range target {
		if db, coll := f.Target(c.db, c.coll); db != c.tdb || coll != c.tcoll {
			t.Errorf("Target(%q, %q) = %q, %q, want %q, %q", c.db, c.coll, db, coll, c.tdb, c.tcoll)
		}
	}
	scope := []struct {
		db, coll string
		want     bool
	}{
		{"shop2", "anything", true}, // a renamed whole database
		{"shop", "orders", false},   // the old name is not restored to
		{"logs", "x", true},
		{"other", "x.y", true},
		{"other", "z", false}, // only the one renamed collection
		{"config", "x", false},
	}
	for _, c := range scope {
		if got := f.targetScope(c.db, c.coll); got != c.want {
			t.Errorf("targetScope(%q, %q) = %v, want %v", c.db, c.coll, got, c.want)
		}
	}
	if !(Filter{}).Match("any", "thing") || (Filter{}).Match("admin", "system.users") {
		t.Error("the zero Filter should select every user collection and no system one")
	}
}

func TestParseRename(t *testing.T) {
	m, err := ParseRename([]string{"a=b", "a.c=d.e"})
	if err != nil || m["a"] != "b" || m["a.c"] != "d.e" {
		t.Fatalf("ParseRename = %v, %v", m, err)
	}
	for _, bad := range []string{"a", "=b", "a="} {
		if _, err := ParseRename([]string{bad}); err == nil {
			t.Errorf("ParseRename(%q) accepted", bad)
		}
	}
}

// firstDifference names the first missing, extra or changed document
// whatever the two lists' lengths (a longer target once made it panic).
func TestFirstDifference(t *testing.T) {
	d := func(id, sum string) Digest { return Digest{ID: id, Sum: sum} }
	for _, tc := range []struct {
		want, have []Digest
		what, id   string
	}{
		{[]Digest{d("1", "a")}, []Digest{d("1", "a"), d("2", "b")}, "extra document", "2"},
		{[]Digest{d("1", "a"), d("2", "b")}, []Digest{d("1", "a")}, "missing document", "2"},
		{[]Digest{d("1", "a")}, []Digest{d("1", "x")}, "document", "1"},
		{[]Digest{d("1", "a"), d("3", "c")}, []Digest{d("1", "a"), d("2", "b"), d("3", "c")}, "extra document", "2"},
	} {
		m := firstDifference(&Collection{Digests: tc.want, Docs: len(tc.want)}, &Collection{Digests: tc.have, Docs: len(tc.have)})
		if m.What != tc.what || m.ID != tc.id {
			t.Errorf("firstDifference(%v, %v) = %s %s, want %s %s", tc.want, tc.have, m.What, m.ID, tc.what, tc.id)
		}
	}
}
