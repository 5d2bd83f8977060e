package api_test

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/config"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// order is one document of the orders collection of opsRepo.
func order(id int, note string) bson.D {
	return bson.D{{Key: "_id", Value: int32(id)}, {Key: "grp", Value: int32(id % 4)}, {Key: "note", Value: note}}
}

// badDelete is opsRepo's entry 1: one applyOps entry deleting every
// order of grp 3, as MongoDB logs a batched multi-document write: five
// operations at one timestamp.
var badDelete = []int{3, 7, 11, 15, 19}

// opsRepo is a hand-written repository (restoretest): db.orders holds 20
// orders (_id 0..19) in its snapshot; the oplog after it (entry i at
// rt.EntryTS(i), one second apart) holds:
//
//	0  update of order 5 (note "five v2")
//	1  applyOps: delete every grp 3 order (badDelete)
//	2  insert of order 100
//	3  applyOps: an insert into db.other and one into db.other2 (two
//	   namespaces in one second)
//	4  update of order 2 (note "two v2")
//	5  insert of order 7 again (note "seven again")
func opsRepo(t *testing.T, db string) *rt.Repo {
	var orders []bson.D
	for i := range 20 {
		orders = append(orders, order(i, fmt.Sprintf("o%d", i)))
	}
	ns := db + ".orders"
	var dels bson.A
	for _, id := range badDelete {
		dels = append(dels, rt.Delete(ns, int32(id)))
	}
	entries := []bson.D{
		rt.Update(ns, int32(5), order(5, "five v2")),
		{{Key: "op", Value: "c"}, {Key: "ns", Value: "admin.$cmd"}, {Key: "o", Value: bson.D{{Key: "applyOps", Value: dels}}}},
		rt.Insert(ns, order(100, "hundred")),
		{{Key: "op", Value: "c"}, {Key: "ns", Value: "admin.$cmd"}, {Key: "o", Value: bson.D{{Key: "applyOps", Value: bson.A{
			rt.Insert(db+".other", bson.D{{Key: "_id", Value: int32(1)}}), rt.Insert(db+".other2", bson.D{{Key: "_id", Value: int32(2)}})}}}}},
		rt.Update(ns, int32(2), order(2, "two v2")),
		rt.Insert(ns, order(7, "seven again")),
	}
	return rt.New(t, rt.Spec{Flavor: "mongodb", Entries: entries, Collections: []rt.Collection{{DB: db, Name: "orders", Docs: orders}}})
}

// repoAPI serves the API over r alone (no agent, no capture) until the
// test ends: what the endpoints that read the repository need.
func repoAPI(t *testing.T, r *rt.Repo, publicRead bool) *client {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := api.New(api.Deps{Config: config.API{Token: token, PublicRead: publicRead}, Repo: r.Repository,
		Shard: "rs0", Version: "test", Log: log})
	must(t, err)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &client{t: t, base: hs.URL}
}

// iso is a second as RFC 3339.
func iso(sec uint32) string { return time.Unix(int64(sec), 0).UTC().Format(time.RFC3339) }
