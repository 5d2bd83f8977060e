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
