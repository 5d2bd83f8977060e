package snapshot

import (
	"errors"
	"testing"
)

func TestParseFilter(t *testing.T) {
	for _, bad := range []string{"", ".c", "a*.c", "a.b*", "a.", "a b.c", "a$.c", "a.$c", "*"} {
		_, err := ParseFilter([]string{bad}, nil)
		var fe *FilterError
		if !errors.As(err, &fe) {
			t.Errorf("ParseFilter(%q) = %v, want a FilterError", bad, err)
		}
	}
	f, err := ParseFilter([]string{"shop.*", "crm.people", "logs.a.b", "app"}, []string{"shop.sessions", "app.system.js"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		db, coll string
		want     bool
	}{
		{"shop", "orders", true},
		{"shop", "sessions", false},
		{"crm", "people", true},
		{"crm", "other", false},
		{"logs", "a.b", true},
		{"logs", "a", false},
		{"app", "x.y", true},
		{"app", "system.js", false},
		{"other", "c", false},
	} {
		if got := f.Match(tc.db, tc.coll); got != tc.want {
			t.Errorf("Match(%s, %s) = %v, want %v", tc.db, tc.coll, got, tc.want)
		}
	}
	if f.MatchDB("other") || !f.MatchDB("shop") {
		t.Error("MatchDB")
	}
	none, _ := ParseFilter(nil, []string{"big"})
	if none.Match("big", "c") || !none.Match("small", "c") || none.MatchDB("big") {
		t.Error("exclude of a whole database")
	}
}
