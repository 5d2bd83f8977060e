package drill_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/drill"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/verify"
)

// A drill to the snapshot's own point, right after it, matches the source
// and records the reference; after more writes, a drill to a quiet second
// (the test writes nothing after it) matches the source again; a random
// drill then finds the recorded reference. The scratch is empty after
// each, and each result is in the repository.
func TestDrillMatchesTheSource(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	d, scratch := fx.deps(t, true)

	res, err := drill.Run(ctx, d, drill.Request{To: fx.snap.End.String(), Snapshot: fx.snap.ID, Record: true})
	must(t, err)
	if res.Verdict != drill.Exact || res.Against != "source" || res.Point != fx.snap.End || res.Collections != 2 || res.Documents != 230 {
		t.Fatalf("drill at the snapshot's point: %s; %+v", res.Summary(), res.DrillResult)
	}
	if _, err := fx.repo.ReadDrillReference(ctx, res.Shard, fx.snap.End); err != nil {
		t.Fatalf("no reference recorded at the snapshot's point: %v", err)
	}
	if dbs := userDBs(t, scratch); len(dbs) != 0 {
		t.Fatalf("the scratch still holds %v", dbs)
	}

	coll := fx.srv.Client().Database(fx.shop).Collection("orders")
	for i := range 20 {
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: i}}, bson.D{{Key: "$set", Value: bson.D{{Key: "qty", Value: 100 + i}}}})
		must(t, err)
	}
	_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 150}})
	must(t, err)
	fx.insert(t, "late", bson.D{{Key: "_id", Value: 1}})
	last := fx.waitDurable(t)
	quietSecond := last.Time().UTC().Format(time.RFC3339)
	res, err = drill.Run(ctx, d, drill.Request{To: quietSecond, Record: true})
	must(t, err)
	if res.Verdict != drill.Exact || res.Against != "source" || res.Point.Before(last) || res.Collections != 3 || res.Documents != 230 {
		t.Fatalf("drill to the quiet second %s: %s; %+v", quietSecond, res.Summary(), res.DrillResult)
	}
	if res.RTO <= 0 || res.Bytes <= 0 || len(res.Phases) < 4 {
		t.Errorf("no RTO or phases: %+v", res.DrillResult)
	}
	if newest, err := oracle.LastOplogTS(ctx, fx.srv.Client()); err != nil || newest != last {
		t.Fatalf("the source changed during the test (%s, %v): the comparison proves nothing", newest, err)
	}

	d.Source = nil
	res, err = drill.Run(ctx, d, drill.Request{To: drill.Random, Record: true})
	must(t, err)
	if res.Verdict != drill.Exact || res.Against != "reference" || res.Point != fx.snap.End {
		t.Fatalf("random drill: %s; %+v; want the snapshot's point checked against its reference", res.Summary(), res.DrillResult)
	}
	refs, err := fx.repo.ListDrillResults(ctx, res.Shard)
	must(t, err)
	last3, _, err := fx.repo.LastDrillResult(ctx, res.Shard)
	if len(refs) != 3 || err != nil || last3.Chosen != drill.Random || last3.Verdict != drill.Exact {
		t.Fatalf("recorded results %v, last %+v (%v); want 3, the last the random one", refs, last3, err)
	}
	if dbs := userDBs(t, scratch); len(dbs) != 0 {
		t.Fatalf("the scratch still holds %v", dbs)
	}
}

// A chunk with one flipped byte: the drill fails, naming the object, and
// the scratch is dropped.
func TestDrillCorruptChunk(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	key := fx.snap.Collections[0].Chunks[0].Key
	path := filepath.Join(fx.dir, filepath.FromSlash(key))
	b, err := os.ReadFile(path)
	must(t, err)
	b[len(b)/2] ^= 0x40
	must(t, os.WriteFile(path, b, 0o600))

	d, scratch := fx.deps(t, true)
	res, err := drill.Run(ctx, d, drill.Request{To: drill.Latest, Record: true})
	must(t, err)
	if res.Verdict != drill.Failed || !strings.Contains(res.Problem, key) || res.Passed() {
		t.Fatalf("drill over a corrupt chunk: %s; want failed naming %s", res.Summary(), key)
	}
	if dbs := userDBs(t, scratch); len(dbs) != 0 {
		t.Fatalf("the scratch still holds %v", dbs)
	}
	last, _, err := fx.repo.LastDrillResult(ctx, res.Shard)
	if err != nil || last.Verdict != drill.Failed {
		t.Fatalf("recorded %+v (%v)", last, err)
	}
}

// A repository whose chunk holds a changed (but well-formed) document: the
// drill against the quiet source names the document, with both versions.
func TestDrillNamesTheDocument(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	m := fx.snap
	ci := 0
	for i, c := range m.Collections {
		if c.Name == "orders" {
			ci = i
		}
	}
	c := &m.Collections[ci]
	docs, err := fx.repo.ReadChunk(ctx, c.Chunks[0])
	must(t, err)
	var doc bson.D
	must(t, bson.Unmarshal(docs[3], &doc))
	doc[len(doc)-1].Value = int32(999)
	docs[3], err = bson.Marshal(doc)
	must(t, err)
	ref, err := fx.repo.WriteChunk(ctx, m.Shard, m.ID, c.UUID, 0, docs)
	must(t, err)
	c.Bytes += ref.Bytes - c.Chunks[0].Bytes
	c.Chunks[0] = ref
	must(t, fx.repo.WriteManifest(ctx, m))

	d, _ := fx.deps(t, true)
	res, err := drill.Run(ctx, d, drill.Request{To: m.End.String()})
	must(t, err)
	if res.Verdict != drill.Mismatch || res.Document == nil || res.Document.Namespace != fx.shop+".orders" ||
		!strings.Contains(res.Document.Want, `"qty"`) || !strings.Contains(res.Document.Got, "999") || res.Document.ID == "" {
		t.Fatalf("drill of a changed document: %s; document %+v", res.Summary(), res.Document)
	}
}

// A scratch deployment that holds data is refused before anything is
// written to it.
func TestDrillRefusesNonEmptyScratch(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	d, scratch := fx.deps(t, true)
	_, err := scratch.Database(fx.srv.DB("precious")).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	_, err = drill.Run(ctx, d, drill.Request{To: drill.Latest, Record: true})
	if !errors.Is(err, verify.ErrScratchNotEmpty) || !strings.Contains(err.Error(), fx.srv.DB("precious")) {
		t.Fatalf("drill into a scratch with data: %v; want ErrScratchNotEmpty naming the database", err)
	}
	if dbs := userDBs(t, scratch); len(dbs) != 1 || dbs[0] != fx.srv.DB("precious") {
		t.Fatalf("the scratch holds %v after the refusal", dbs)
	}
	if n, err := scratch.Database(fx.srv.DB("precious")).Collection("c").CountDocuments(ctx, bson.D{}); n != 1 || err != nil {
		t.Fatalf("the scratch's data: %d documents (%v)", n, err)
	}
	if refs, err := fx.repo.ListDrillResults(ctx, fx.src.Shard()); err != nil || len(refs) != 0 {
		t.Fatalf("a refused drill recorded %v (%v)", refs, err)
	}
}
