package agent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// An agent pointed at another deployment than the one its repository holds
// is refused before it writes anything: the other deployment's oplog
// reaches back before the repository's newest entry but does not hold it.
// (FerretDB sources have no replica set name to tell them apart; the oplog
// itself does.)
func TestAgentRefusesAnotherDeployment(t *testing.T) {
	a := testserver.Start(t)
	b := testserver.Start(t)
	if a.External() {
		t.Skip("needs two deployments; REWIND_TEST_MONGODB_URI names one")
	}
	ctx := context.Background()
	// b's oplog starts before a's newest entry.
	_, err := b.Client().Database(b.DB("other")).Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
	must(t, err)
	waitFor(t, 10*time.Second, "a's clock to pass b's first write", func() bool {
		return newestOplogTS(t, b.Client()).T < uint32(time.Now().Unix())
	})
	url := newRepo(t)
	cfg := agentConfig(t, a, url)
	cfg.Snapshot.Every = 0
	ra := startAgent(t, cfg)
	runWorkload(t, a, 41, 40, "a")
	waitDurable(t, ra.Stats().LastDurable, newestOplogTS(t, a.Client()), time.Minute)
	must(t, ra.stop(t))
	_, err = b.Client().Database(b.DB("other")).Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 2}})
	must(t, err)
	before, _ := repoEntries(t, url)

	cfg.Source = config.Secret(b.URI())
	rb := startAgent(t, cfg)
	err = rb.wait(t, 30*time.Second)
	if !errors.Is(err, oplog.ErrOtherHistory) {
		t.Fatalf("agent on another deployment: %v; want it refused with ErrOtherHistory", err)
	}
	after, h := repoEntries(t, url)
	if len(after) != len(before) || len(h.Gaps) != 0 {
		t.Fatalf("the refused agent changed the repository: %d entries -> %d, gaps %v", len(before), len(after), h.Gaps)
	}
}
