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

// No two sources the restore writes may land on one target, wherever they
// come from: a --rename onto a collection that exists only in the oplog
// range (created after the snapshot) once merged the two silently. The
// refusal comes while planning, before anything is written (so the dry
// run says it too), names the --rename, both sources and the target.
func TestRenameCollisionsWithTheOplogsCollections(t *testing.T) {
	r := rt.New(t, rt.Spec{Flavor: "mongodb",
		Collections: []rt.Collection{{DB: "app", Name: "users", Docs: []bson.D{{{Key: "_id", Value: 1}}}}},
		Entries: []bson.D{
			rt.Insert("app.later", bson.D{{Key: "_id", Value: 2}}),
			rt.Insert("other.stuff", bson.D{{Key: "_id", Value: 3}}),
			rt.Insert("other.users", bson.D{{Key: "_id", Value: 4}}),
		}})
	late := " (created after the snapshot, in the oplog)"
	for _, tc := range []struct {
		rename map[string]string
		says   string // "" when the plan is fine
	}{
		{map[string]string{"app.users": "app.later"}, "--rename app.users=app.later: app.users and app.later" + late + " would both be restored as app.later"},
		{map[string]string{"other.stuff": "app.later"}, "--rename other.stuff=app.later: app.later" + late + " and other.stuff" + late + " would both be restored as app.later"},
		{map[string]string{"app.later": "app.users"}, "--rename app.later=app.users: app.users and app.later" + late + " would both be restored as app.users"},
		{map[string]string{"other": "app"}, "--rename other=app: app.users and other.users" + late + " would both be restored as app.users"},
		{map[string]string{"app.later": "x.y", "other.stuff": "x.y"}, "--rename app.later=x.y and other.stuff=x.y: app.later" + late + " and other.stuff" + late + " would both be restored as x.y"},
		{map[string]string{"app.users": "app.users_old", "app.later": "app.users"}, ""},
		{map[string]string{"other": "other2"}, ""},
	} {
		p, err := restore.Prepare(context.Background(), r.Repository, restore.Request{To: restore.When{Latest: true}, Rename: tc.rename, DryRun: true})
		if tc.says == "" {
			if err != nil {
				t.Errorf("--rename %v: %v; want a plan", tc.rename, err)
			} else {
				p.Release()
			}
			continue
		}
		var inv *restore.InvalidError
		if err == nil {
			p.Release()
		}
		if !errors.As(err, &inv) || inv.Field != "rename" || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("--rename %v: %v; want a refusal saying %q", tc.rename, err, tc.says)
		}
	}
}
