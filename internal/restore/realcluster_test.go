package restore_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// TestRealShardedCluster runs against a real sharded cluster only:
// $REWIND_TEST_MONGODB_URI pointing at a mongos. The agent is given the
// mongos and finds the shards itself; a hashed-sharded collection is
// written through mongos; a cluster snapshot stops the balancer; after more
// writes the cluster is restored through the same mongos under another
// database name, which must hold the exact state of the mark, sharded with
// the same key. Here (FerretDB, no mongos) the stand-in cluster tests cover
// the same paths: TestClusterOracle, TestClusterRestoreThroughMongos.
func TestRealShardedCluster(t *testing.T) {
	ctx := context.Background()
	srv := testserver.Start(t)
	if !srv.External() {
		t.Skip("needs $REWIND_TEST_MONGODB_URI pointing at a mongos: the FerretDB test server is no mongos (TestClusterOracle and TestClusterRestoreThroughMongos cover this with a stand-in cluster)")
	}
	if !cluster.IsRouter(helloOf(t, srv.Client())) {
		t.Skip("$REWIND_TEST_MONGODB_URI is not a mongos (hello has no msg \"isdbgrid\"): the sharded cluster test needs one")
	}
	db, db2 := srv.DB("sharded"), srv.DB("sharded_back")
	admin := srv.Client().Database("admin")
	must(t, admin.RunCommand(ctx, bson.D{{Key: "enableSharding", Value: db}}).Err())
	must(t, admin.RunCommand(ctx, bson.D{{Key: "shardCollection", Value: db + ".orders"}, {Key: "key", Value: bson.D{{Key: "_id", Value: "hashed"}}}}).Err())
	orders := srv.Client().Database(db).Collection("orders")
	write := func(from, to int) optime.Timestamp {
		sess, err := srv.Client().StartSession()
		must(t, err)
		defer sess.EndSession(ctx)
		sctx := mongo.NewSessionContext(ctx, sess)
		for i := from; i < to; i++ {
			_, err := orders.InsertOne(sctx, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}})
			must(t, err)
			if i%3 == 0 {
				_, err = orders.UpdateOne(sctx, bson.D{{Key: "_id", Value: i / 2}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 100}}}})
				must(t, err)
			}
			if i%7 == 0 {
				_, err = orders.DeleteOne(sctx, bson.D{{Key: "_id", Value: i / 3}})
				must(t, err)
			}
		}
		ts := sess.OperationTime()
		return optime.Timestamp{T: ts.T, I: ts.I}
	}
	write(0, 500)

	d, err := source.OpenDeployment(ctx, cluster.Inputs{Router: srv.URI()})
	must(t, err)
	t.Cleanup(func() {
		cctx, cancel := cleanupContext()
		defer cancel()
		d.Close(cctx)
	})
	url, r := initRepoFor(t, d)
	cfg := config.Default()
	cfg.Source, cfg.Repo, cfg.API.Listen = config.Secret(srv.URI()), url, ""
	cfg.Capture.SpoolDir, cfg.Snapshot.Every = t.TempDir(), 0
	runAgent(t, cfg)
	for _, m := range d.Members {
		waitFor(t, 60*time.Second, "the agent captures shard "+m.Shard.Name, func() bool {
			_, err := r.ReadHeartbeat(ctx, m.Shard.Name)
			return err == nil
		})
	}
	_, err = snapshot.TakeCluster(ctx, d, r, snapshot.ClusterOptions{Router: snapshot.RouterCommandOf(srv.Client()),
		Options: snapshot.Options{Parallel: 2, Capture: snapshot.CaptureByAgent, Log: testLogger(t)}})
	must(t, err)
	at := write(500, 900)
	rec := &oracle.Recorder{Client: srv.Client(), Filter: oracle.Filter{Include: []string{db}}, KeepDocs: true}
	mark, err := rec.Record(ctx, workload.Batch{OperationTime: at})
	must(t, err)
	write(900, 1000) // after the mark: not restored
	waitFor(t, 90*time.Second, "the cluster window reaches the mark", func() bool {
		cat, err := catalog.Load(ctx, r)
		must(t, err)
		ws := cat.ClusterWindows()
		return len(ws) > 0 && !ws[len(ws)-1].To.Before(mark.TS)
	})

	tg, err := restore.Connect(ctx, srv.URI(), 0)
	must(t, err)
	t.Cleanup(func() { tg.Close(context.Background()) })
	p, err := restore.Prepare(ctx, r, restore.Request{To: restore.When{TS: mark.TS}, Include: []string{db}, Rename: map[string]string{db: db2}})
	must(t, err)
	defer p.Release()
	rep, err := p.Execute(ctx, tg, restore.Options{Parallel: 2, Log: testLogger(t)})
	must(t, err)
	if err := oracle.Compare(ctx, srv.Client(), mark, oracle.Filter{Include: []string{db}, Rename: map[string]string{db: db2}}); err != nil {
		t.Fatalf("restore through the mongos: %v", err)
	}
	if rep.Sharding == nil || len(rep.Sharding.Collections) != 1 || rep.Sharding.Collections[0].Namespace != db2+".orders" ||
		rep.Sharding.Collections[0].KeyJSON != `{"_id":"hashed"}` {
		t.Fatalf("the restored collection is not sharded as it was: %+v", rep.Sharding)
	}
}

// helloOf is the server's hello reply.
func helloOf(t *testing.T, c *mongo.Client) bson.Raw {
	t.Helper()
	raw, err := c.Database("admin").RunCommand(context.Background(), bson.D{{Key: "hello", Value: 1}}).Raw()
	must(t, err)
	return raw
}
