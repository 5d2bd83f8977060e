package restore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// orphanDoc is {_id, from}: from names the shard the copy was put on.
func orphanDoc(id any, from string) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "from", Value: from}}
}

// placeOrphans puts documents on the stand-in shards as an interrupted
// chunk migration leaves them, and writes routing metadata in MongoDB's
// config document format (5.0+: chunks keyed by the collection's uuid)
// on the config server, saying who owns what:
//   - app.r, ranged on _id: s0 owns [-2^62, 5), s1 owns [5, 2^62); _id 7
//     is on s1 (owner) and s0 (the donor's copy), _id 2 on s0 (owner)
//     and s1 (a recipient's leftover);
//   - app.h, hashed on _id: s0 owns hashes [-2^63, 0), s1 [0, 2^63-1);
//     42 hashes below 0 and 1 above (MongoDB's hasher_test.cpp), each is
//     on both shards;
//   - app.u, unsharded, on the primary shard s0, with a leftover on s1.
//
// FerretDB refuses MinKey and MaxKey, so the outermost bounds are the
// widest numbers instead (the unit tests of cluster.Owners cover MinKey
// and MaxKey). It returns the namespaces and the owner's document count.
func placeOrphans(t *testing.T, c *standIn) (db string, want map[string][]bson.D) {
	t.Helper()
	ctx := context.Background()
	db = c.shards["s0"].DB("app")
	put := map[string]map[string][]any{ // shard → collection → documents
		"s0": {"r": {orphanDoc(1, "s0"), orphanDoc(2, "s0"), orphanDoc(7, "s0")},
			"h": {orphanDoc(42, "s0"), orphanDoc(1, "s0")},
			"u": {orphanDoc("a", "s0"), orphanDoc("b", "s0")}},
		"s1": {"r": {orphanDoc(2, "s1"), orphanDoc(6, "s1"), orphanDoc(7, "s1")},
			"h": {orphanDoc(42, "s1"), orphanDoc(1, "s1")},
			"u": {orphanDoc("b", "s1")}},
	}
	for shard, colls := range put {
		for coll, docs := range colls {
			_, err := c.shards[shard].Client().Database(db).Collection(coll).InsertMany(ctx, docs)
			must(t, err)
		}
	}
	want = map[string][]bson.D{
		"r": {orphanDoc(1, "s0"), orphanDoc(2, "s0"), orphanDoc(6, "s1"), orphanDoc(7, "s1")},
		"h": {orphanDoc(1, "s1"), orphanDoc(42, "s0")},
		"u": {orphanDoc("a", "s0"), orphanDoc("b", "s0")},
	}

	epoch, ts := bson.NewObjectID(), bson.Timestamp{T: uint32(time.Now().Unix()), I: 1}
	uuidR := bson.Binary{Subtype: 4, Data: []byte("orphans-ranged-1")}
	uuidH := bson.Binary{Subtype: 4, Data: []byte("orphans-hashed-1")}
	collection := func(name string, key bson.D, uuid bson.Binary) bson.D {
		return bson.D{{Key: "_id", Value: db + "." + name}, {Key: "lastmodEpoch", Value: epoch},
			{Key: "lastmod", Value: bson.DateTime(time.Now().UnixMilli())}, {Key: "timestamp", Value: ts},
			{Key: "uuid", Value: uuid}, {Key: "key", Value: key}, {Key: "unique", Value: false}}
	}
	chunk := func(uuid bson.Binary, lo, hi any, shard string, minor uint32) bson.D {
		return bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "uuid", Value: uuid},
			{Key: "min", Value: bson.D{{Key: "_id", Value: lo}}}, {Key: "max", Value: bson.D{{Key: "_id", Value: hi}}},
			{Key: "shard", Value: shard}, {Key: "lastmod", Value: bson.Timestamp{T: 1, I: minor}},
			{Key: "onCurrentShardSince", Value: ts}, {Key: "history", Value: bson.A{bson.D{{Key: "validAfter", Value: ts}, {Key: "shard", Value: shard}}}}}
	}
	routing := map[string][]any{
		"databases": {bson.D{{Key: "_id", Value: db}, {Key: "primary", Value: "s0"},
			{Key: "version", Value: bson.D{{Key: "uuid", Value: bson.Binary{Subtype: 4, Data: []byte("orphans-database")}}, {Key: "timestamp", Value: ts}, {Key: "lastMod", Value: 1}}}}},
		"collections": {collection("r", bson.D{{Key: "_id", Value: 1}}, uuidR), collection("h", bson.D{{Key: "_id", Value: "hashed"}}, uuidH)},
		"chunks": {
			chunk(uuidR, int64(-1)<<62, 5, "s0", 0), chunk(uuidR, 5, int64(1)<<62, "s1", 1),
			chunk(uuidH, int64(-1)<<63, int64(0), "s0", 0), chunk(uuidH, int64(0), int64(1<<63-1), "s1", 1),
		},
	}
	cfg := c.cfg.Client().Database("config")
	for coll, docs := range routing {
		_, err := cfg.Collection(coll).InsertMany(ctx, docs)
		must(t, err)
	}
	return db, want
}

// snapshotCluster initializes a repository for the stand-in's shards (and
// its config server unless noConfig), as `rewind init --shard ...
// [--config-server ...]` does, runs an agent capturing them, takes one
// cluster snapshot while it runs, and waits until the cluster can be
// restored to the snapshot's T.
func snapshotCluster(t *testing.T, c *standIn, noConfig bool) (*repo.Repository, repo.ClusterManifest) {
	t.Helper()
	ctx := context.Background()
	c.noConfig = noConfig
	url, r := c.initRepo(t)
	c.startAgent(t, url)
	for _, n := range c.names {
		waitCaptured(t, r, n)
	}
	m, err := snapshot.TakeCluster(ctx, c.open(t), r, snapshot.ClusterOptions{Options: snapshot.Options{Parallel: 2,
		Capture: snapshot.CaptureByAgent, Log: testLogger(t)}})
	must(t, err)
	waitClusterWindow(t, r, m.T)
	return r, m
}

// A document on two shards after an interrupted chunk migration is
// restored once, from the shard config.chunks says owned it at the
// cluster snapshot's time, for a ranged and a hashed shard key; a
// leftover of an unsharded collection off its database's primary shard
// is not restored; the report counts what was skipped per collection.
// The same cluster snapshotted without its config server has no routing
// metadata: the restore says orphans are not skipped, and the two copies
// of a document collide.
func TestClusterRestoreSkipsOrphans(t *testing.T) {
	ctx := context.Background()
	c := startStandIn(t, "s0", "s1")
	// The placement below rests on these hashes (hasher_test.cpp's).
	for id, below := range map[int32]bool{42: true, 1: false} {
		typ, v, err := bson.MarshalValue(id)
		must(t, err)
		if h, err := cluster.HashedValue(bson.RawValue{Type: typ, Value: v}); err != nil || (h < 0) != below {
			t.Fatalf("%d hashes to %d (%v): the placement below expects 42 below 0 and 1 above", id, h, err)
		}
	}
	db, want := placeOrphans(t, c)
	r, m := snapshotCluster(t, c, false)

	target := testserver.Start(t)
	p, rep, err := restoreCluster(ctx, t, r, target.Client(), restore.Request{To: at(m.T), Include: []string{db}})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !strings.HasPrefix(p.Orphans, restore.OrphansSkipped+":") {
		t.Fatalf("plan says %q, want orphans skipped", p.Orphans)
	}
	for coll, docs := range want {
		w := map[string]string{}
		for _, d := range docs {
			put(t, w, d)
		}
		sameDocs(t, db+"."+coll, byID(t, target.Client(), db, coll), w)
	}
	skipped := map[string]int64{}
	for _, n := range rep.Namespaces {
		skipped[n.Target.Coll] = n.OrphansSkipped
	}
	if skipped["r"] != 2 || skipped["h"] != 2 || skipped["u"] != 1 || rep.OrphansSkipped != 5 {
		t.Errorf("orphans skipped: %v, total %d; want r 2, h 2, u 1, total 5", skipped, rep.OrphansSkipped)
	}

	// Without the config server: no routing metadata, everything is
	// loaded, so the duplicated _ids collide, and the error says why.
	r2, m2 := snapshotCluster(t, c, true)
	dropDBs(t, target.Client(), db)
	p, _, err = restoreCluster(ctx, t, r2, target.Client(), restore.Request{To: at(m2.T), Include: []string{db}})
	if !strings.HasPrefix(p.Orphans, restore.OrphansNotSkipped+":") || !strings.Contains(p.Orphans, "--config-server") {
		t.Errorf("plan without routing metadata says %q, want orphans not skipped naming --config-server", p.Orphans)
	}
	if !mongo.IsDuplicateKeyError(err) || !strings.Contains(err.Error(), "orphan") {
		t.Fatalf("restore without routing metadata: %v, want a duplicate _id naming the orphan", err)
	}
	t.Logf("without routing metadata: %v", err)
}
