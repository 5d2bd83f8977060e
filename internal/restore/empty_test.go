package restore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// A snapshot that holds no collection (a new deployment's base snapshot)
// plans like any other: a whole-deployment restore restores the
// collections the oplog range creates; at a point where the range has
// created none, the plan is empty (the exact state, no error); a --ns or
// --rename that matches nothing stays an error, in words that fit an
// empty snapshot. Server-free: the plan reads only the repository.
func TestPlanOfAnEmptySnapshot(t *testing.T) {
	ctx := context.Background()
	r := rt.New(t, rt.Spec{Flavor: "mongodb", Entries: []bson.D{
		rt.Insert("shop.orders", bson.D{{Key: "_id", Value: 1}}),
		rt.Insert("shop.orders", bson.D{{Key: "_id", Value: 2}}),
		rt.Insert("crm.system.profile", bson.D{{Key: "_id", Value: "f"}}), // the server's own: never restored
	}})
	plan := func(req restore.Request) (restore.Plan, error) {
		t.Helper()
		p, err := restore.Prepare(ctx, r.Repository, req)
		if err != nil {
			return restore.Plan{}, err
		}
		defer p.Release()
		return p.Plan, nil
	}

	p, err := plan(restore.Request{To: restore.When{Latest: true}})
	if err != nil {
		t.Fatalf("whole deployment from an empty snapshot: %v", err)
	}
	if len(p.Collections) != 0 || len(p.Late) != 1 || p.Late[0].Target.String() != "shop.orders" || p.Entries != 5 || p.Empty() {
		// 5: the snapshot's own two no-op entries, then the three inserts.
		t.Fatalf("plan: %d collections, late %+v, %d entries; want shop.orders from the oplog's 5 entries", len(p.Collections), p.Late, p.Entries)
	}

	p, err = plan(restore.Request{To: restore.When{TS: r.Snapshot.End}})
	if err != nil || !p.Empty() {
		t.Fatalf("the snapshot's own point: %v, empty %v (late %+v); want an empty plan", err, p.Empty(), p.Late)
	}

	for _, tc := range []struct {
		req   restore.Request
		field string
		says  string
	}{
		{restore.Request{To: restore.When{Latest: true}, Include: []string{"shop.nope"}}, "ns", "--ns shop.nope matches nothing in snapshot " + r.Snapshot.ID + " (it holds no database)"},
		{restore.Request{To: restore.When{TS: r.Snapshot.End}, Include: []string{"shop"}}, "ns", "--ns shop matches nothing"},
		{restore.Request{To: restore.When{Latest: true}, Rename: map[string]string{"nope": "nope2"}}, "rename", "--rename nope matches nothing"},
		{restore.Request{To: restore.When{Latest: true}, Include: []string{"crm"}}, "ns", "--ns crm selects no collection or view in snapshot"},
	} {
		_, err := plan(tc.req)
		var inv *restore.InvalidError
		if !errors.As(err, &inv) || inv.Field != tc.field || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%+v: %v; want an error on %s saying %q", tc.req, err, tc.field, tc.says)
		}
	}
}
