package restore_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/testmongos"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// A cluster restore into a sharded cluster goes through its mongos: each
// database is created on its old primary shard (where the target has a
// shard of that name), each sharded collection is sharded with its old key
// after it is created and before any document is loaded, zone ranges are
// set where a target shard carries the zone, and what cannot be carried
// over is reported with the command to run. No mongos runs here: the target
// is a stand-in router (internal/testmongos) in front of a test server,
// which answers the sharding commands and records them; every read and
// write reaches the real server, whose state must equal the mirror's at the
// mark.
func TestClusterRestoreThroughMongos(t *testing.T) {
	ctx := context.Background()
	c := startStandIn(t, "alpha", "beta")
	c0, c1 := c.dbs[0], c.dbs[1]
	cfg := c.cfg.Client().Database("config")
	for coll, docs := range map[string][]any{
		"databases": {bson.D{{Key: "_id", Value: c0}, {Key: "primary", Value: "alpha"}}, bson.D{{Key: "_id", Value: c1}, {Key: "primary", Value: "beta"}}},
		"collections": {bson.D{{Key: "_id", Value: c0 + ".orders"}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "unique", Value: true}},
			bson.D{{Key: "_id", Value: c1 + ".users"}, {Key: "key", Value: bson.D{{Key: "_id", Value: "hashed"}}}},
			// The stand-in router spreads every collection over both shards,
			// so none is unsharded (it would live on its primary alone).
			bson.D{{Key: "_id", Value: c0 + ".users"}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}},
			bson.D{{Key: "_id", Value: c1 + ".orders"}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}},
			bson.D{{Key: "_id", Value: c1 + ".gone"}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "dropped", Value: true}}},
		"tags": {bson.D{{Key: "_id", Value: "z1"}, {Key: "ns", Value: c0 + ".orders"}, {Key: "tag", Value: "EU"},
			{Key: "min", Value: bson.D{{Key: "_id", Value: 0}}}, {Key: "max", Value: bson.D{{Key: "_id", Value: 100}}}},
			bson.D{{Key: "_id", Value: "z2"}, {Key: "ns", Value: c0 + ".orders"}, {Key: "tag", Value: "US"},
				{Key: "min", Value: bson.D{{Key: "_id", Value: 100}}}, {Key: "max", Value: bson.D{{Key: "_id", Value: 200}}}}},
	} {
		_, err := cfg.Collection(coll).InsertMany(ctx, docs)
		must(t, err)
	}
	rt := &router{c: c, rng: rand.New(rand.NewPCG(7, 2)), ids: map[string][]int64{}}
	for range 60 {
		rt.step(ctx, t)
	}
	url, r := c.initRepo(t)
	c.startAgent(t, url)
	_, err := snapshot.TakeCluster(ctx, c.open(t), r, snapshot.ClusterOptions{Options: snapshot.Options{Parallel: 2, Capture: snapshot.CaptureByAgent, Log: testLogger(t)}})
	must(t, err)
	rec := &oracle.Recorder{Client: c.mirror.Client(), Filter: oracle.Filter{Include: c.dbs}, KeepDocs: true}
	for range 40 {
		rt.step(ctx, t)
	}
	m := rt.mark(ctx, t, rec)
	waitClusterWindow(t, r, m.TS)

	upstream := testserver.Start(t)
	mongos := testmongos.Start(t, upstream.Host(), map[string][]string{"alpha": {"EU"}, "gamma": {}})
	tg, err := restore.Connect(ctx, mongos.URI(), 0)
	must(t, err)
	t.Cleanup(func() { tg.Close(context.Background()) })
	if !tg.Server.Mongos {
		t.Fatal("the target answers hello as a mongos (msg isdbgrid), but restore.Connect did not see a mongos")
	}
	p, err := restore.Prepare(ctx, r, restore.Request{To: at(m.TS)})
	must(t, err)
	defer p.Release()
	rep, err := p.Execute(ctx, tg, restore.Options{Parallel: 2, Log: testLogger(t)})
	must(t, err)
	if err := oracle.Compare(ctx, upstream.Client(), m, oracle.Filter{Include: c.dbs}); err != nil {
		t.Fatalf("restore through the mongos: %v", err)
	}
	sh := rep.Sharding
	if sh == nil {
		t.Fatal("the report of a restore into a sharded cluster has no sharding section")
	}
	t.Logf("sharding: %+v", *sh)
	assertSharding(t, sh, c0, c1)
	assertCommandOrder(t, mongos.Commands(), c0, c1)

	// --ns one collection, --rename into a new database: the new database
	// is created on the old one's primary, the collection sharded under
	// its new name with its old key.
	moved := upstream.DB("moved")
	p2, err := restore.Prepare(ctx, r, restore.Request{To: at(m.TS), Include: []string{c0 + ".orders"}, Rename: map[string]string{c0 + ".orders": moved + ".orders"}})
	must(t, err)
	defer p2.Release()
	rep, err = p2.Execute(ctx, tg, restore.Options{Parallel: 2, Log: testLogger(t)})
	must(t, err)
	if err := oracle.Compare(ctx, upstream.Client(), m, oracle.Filter{Include: []string{c0 + ".orders"}, Rename: map[string]string{c0 + ".orders": moved + ".orders"}}); err != nil {
		t.Fatalf("renamed restore through the mongos: %v", err)
	}
	if sh := rep.Sharding; sh == nil || len(sh.Collections) != 1 || sh.Collections[0].Namespace != moved+".orders" || sh.Collections[0].KeyJSON != `{"_id":1}` ||
		len(sh.Databases) != 1 || sh.Databases[0] != (restore.ShardedDatabase{Name: moved, PrimaryShard: "alpha"}) {
		t.Errorf("renamed restore's sharding %+v, want %s.orders sharded {_id: 1} in %s on alpha", rep.Sharding, moved, moved)
	}
}

// assertSharding checks what the report says was placed and skipped.
func assertSharding(t *testing.T, sh *restore.Sharding, c0, c1 string) {
	t.Helper()
	if want := []restore.ShardedDatabase{{Name: c0, PrimaryShard: "alpha"}, {Name: c1}}; !slices.Equal(sortedDBs(sh.Databases), want) {
		t.Errorf("databases %+v, want %+v (beta is not a shard of the target)", sh.Databases, want)
	}
	var colls []string
	for _, col := range sh.Collections {
		colls = append(colls, col.Namespace+" "+col.KeyJSON)
	}
	slices.Sort(colls)
	if want := []string{c0 + `.orders {"_id":1}`, c0 + `.users {"_id":1}`, c1 + `.orders {"_id":1}`, c1 + `.users {"_id":"hashed"}`}; !slices.Equal(colls, want) {
		t.Errorf("sharded collections %q, want %q (the dropped one left out)", colls, want)
	}
	if len(sh.Zones) != 1 || sh.Zones[0].Zone != "EU" {
		t.Errorf("zone ranges %+v, want EU only (no target shard is in US)", sh.Zones)
	}
	skipped := strings.Join(sh.Skipped, "\n")
	for _, want := range []string{"primary shard beta is not a shard of the target", "zone US of " + c0 + ".orders", "addShardToZone"} {
		if !strings.Contains(skipped, want) {
			t.Errorf("skipped %q does not say %q", skipped, want)
		}
	}
}

func sortedDBs(ds []restore.ShardedDatabase) []restore.ShardedDatabase {
	out := slices.Clone(ds)
	slices.SortFunc(out, func(a, b restore.ShardedDatabase) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// assertCommandOrder checks the order the router saw: a database created
// (enableSharding, with its old primary where the target has it) before
// any collection of it, and a collection sharded after its create and
// before its first insert.
func assertCommandOrder(t *testing.T, cmds []testmongos.Command, c0, c1 string) {
	t.Helper()
	first := func(pred func(testmongos.Command) bool) int {
		return slices.IndexFunc(cmds, pred)
	}
	for _, db := range []string{c0, c1} {
		enable := first(func(c testmongos.Command) bool { return c.Name == "enableSharding" && c.Target == db })
		create := first(func(c testmongos.Command) bool { return c.Name == "create" && c.DB == db })
		if enable < 0 || create < 0 || enable > create {
			t.Errorf("database %s: enableSharding at %d, first create at %d: want it created on its primary before any collection", db, enable, create)
		}
		if enable >= 0 {
			ps, _ := cmds[enable].Body.Lookup("primaryShard").StringValueOK()
			if want := map[string]string{c0: "alpha", c1: ""}[db]; ps != want {
				t.Errorf("enableSharding %s primaryShard %q, want %q", db, ps, want)
			}
		}
	}
	for _, ns := range []string{c0 + ".orders", c1 + ".users"} {
		db, coll, _ := strings.Cut(ns, ".")
		create := first(func(c testmongos.Command) bool { return c.Name == "create" && c.DB == db && c.Target == coll })
		shard := first(func(c testmongos.Command) bool { return c.Name == "shardCollection" && c.Target == ns })
		insert := first(func(c testmongos.Command) bool { return c.Name == "insert" && c.DB == db && c.Target == coll })
		if create < 0 || shard < 0 || insert < 0 || !(create < shard && shard < insert) {
			t.Errorf("%s: create at %d, shardCollection at %d, first insert at %d: want create < shardCollection < insert", ns, create, shard, insert)
		}
	}
	if i := first(func(c testmongos.Command) bool { return c.Name == "applyOps" }); i >= 0 {
		t.Errorf("the restore sent applyOps through mongos (command %d), which mongos does not have", i)
	}
}
