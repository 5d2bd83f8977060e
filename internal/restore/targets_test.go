package restore_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// The three field reports of issue 12, each against the real test server:
// something in the target that a restore would have loaded into or
// stopped on halfway is refused before the first write (the target is left
// exactly as it was), the message names it, the dry run says the same, and
// --drop gives the backup's exact state.
//   - an empty collection created with other options (capped, max 1);
//   - an empty collection with a unique index the backup lacks (the load
//     would stop on E11000 with half a collection in);
//   - a collection created after the snapshot (only in the oplog range)
//     that already holds another application's data.
func TestTargetCheckedBeforeTheFirstWrite(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	db := srv.DB("fr")
	orders := []bson.D{
		{{Key: "_id", Value: 1}, {Key: "email", Value: "a@example.com"}},
		{{Key: "_id", Value: 2}, {Key: "email", Value: "a@example.com"}}, // the backup allows duplicates
		{{Key: "_id", Value: 3}, {Key: "email", Value: "b@example.com"}},
	}
	items := []bson.D{{{Key: "_id", Value: "i1"}, {Key: "n", Value: 1}}, {{Key: "_id", Value: "i2"}, {Key: "n", Value: 2}}}
	late := []bson.D{{{Key: "_id", Value: 1}, {Key: "app", Value: "shop"}}, {{Key: "_id", Value: 2}, {Key: "app", Value: "shop"}}}
	r := rt.New(t, rt.Spec{Flavor: "mongodb",
		Collections: []rt.Collection{{DB: db, Name: "orders", Docs: orders}, {DB: db, Name: "items", Docs: items}},
		Entries: []bson.D{
			rt.Insert(db+".items", bson.D{{Key: "_id", Value: "i3"}, {Key: "n", Value: 3}}),
			rt.Create(db, "events"), // created after the snapshot: only the oplog has it
			rt.Insert(db+".events", late[0]),
			rt.Insert(db+".events", late[1]),
		}})
	target := srv.Client()
	want := map[string][]bson.D{"orders": orders, "items": append(append([]bson.D{}, items...),
		bson.D{{Key: "_id", Value: "i3"}, {Key: "n", Value: 3}}), "events": late}

	for _, tc := range []struct {
		name, ns, says string
		setup          func(*mongo.Database) error
	}{
		{"empty collection with other options", "orders", "exists empty but is capped (size 4096, max 1), the backup's is not capped",
			func(d *mongo.Database) error {
				return d.CreateCollection(ctx, "orders", options.CreateCollection().SetCapped(true).SetSizeInBytes(4096).SetMaxDocuments(1))
			}},
		{"empty collection with a unique index the backup lacks", "orders", `has unique index email_1 {"email":1} that the backup lacks`,
			func(d *mongo.Database) error {
				_, err := d.Collection("orders").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}},
					Options: options.Index().SetName("email_1").SetUnique(true)})
				return err
			}},
		{"collection created after the snapshot holds other data", "events", "holds documents",
			func(d *mongo.Database) error {
				_, err := d.Collection("events").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "app", Value: "billing"}})
				return err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			must(t, target.Database(db).Drop(ctx))
			must(t, tc.setup(target.Database(db)))
			before := dump(t, target, db)
			ns := db + "." + tc.ns

			// The dry run.
			p := prepare(t, r, restore.Request{To: restore.When{Latest: true}, Target: "t"})
			if tc.ns == "events" && (len(p.Plan.Late) != 1 || p.Plan.Late[0].Target.String() != ns) {
				t.Fatalf("the plan lists %+v as created after the snapshot, want %s", p.Plan.Late, ns)
			}
			findings := check(t, p, target)
			if len(findings) != 1 || findings[0].Target.String() != ns || !strings.Contains(findings[0].String(), tc.says) {
				t.Fatalf("dry run found %v; want %s: %s", findings, ns, tc.says)
			}
			verdict := restore.Verdict(findings, false)
			if !strings.Contains(verdict, "would refuse before writing anything") {
				t.Fatalf("dry run verdict %q", verdict)
			}

			t.Logf("dry run: %s; %s", verdict, findings[0])
			// The restore refuses with the same words and writes nothing.
			_, err := p.Execute(ctx, use(t, target), restore.Options{Log: testLogger(t)})
			if !errors.Is(err, restore.ErrTargetInTheWay) || !strings.Contains(err.Error(), findings[0].String()) ||
				!strings.Contains(err.Error(), "--drop") {
				t.Fatalf("restore: %v; want a refusal saying %q and naming --drop", err, findings[0])
			}
			if after := dump(t, target, db); after != before {
				t.Fatalf("the refused restore changed the target:\nbefore %s\nafter  %s", before, after)
			}

			// With --drop: the backup's state exactly.
			p = prepare(t, r, restore.Request{To: restore.When{Latest: true}, Target: "t", Drop: true})
			if v := restore.Verdict(check(t, p, target), true); !strings.Contains(v, "--drop would drop them and re-create them") {
				t.Fatalf("dry run verdict with --drop: %q", v)
			}
			if _, err := p.Execute(ctx, use(t, target), restore.Options{Log: testLogger(t)}); err != nil {
				t.Fatalf("restore --drop: %v", err)
			}
			wantDump := expectedDump(t, db, want)
			if got := dump(t, target, db); got != wantDump {
				t.Fatalf("after --drop the target is\n%s\nwant the backup's\n%s", got, wantDump)
			}
		})
	}
}

func prepare(t *testing.T, r *rt.Repo, req restore.Request) *restore.Prepared {
	t.Helper()
	p, err := restore.Prepare(context.Background(), r.Repository, req)
	must(t, err)
	t.Cleanup(p.Release)
	return p
}

func use(t *testing.T, c *mongo.Client) *restore.Target {
	t.Helper()
	tg, err := restore.Use(context.Background(), c)
	must(t, err)
	return tg
}

func check(t *testing.T, p *restore.Prepared, c *mongo.Client) []restore.Finding {
	t.Helper()
	f, err := p.Check(context.Background(), use(t, c))
	must(t, err)
	return f
}

// dump is a database as the check sees it: each collection's options,
// indexes (without v and ns) and documents (raw, by _id).
func dump(t *testing.T, c *mongo.Client, db string) string {
	t.Helper()
	ctx := context.Background()
	specs, err := c.Database(db).ListCollectionSpecifications(ctx, bson.D{})
	must(t, err)
	sort.Slice(specs, func(a, b int) bool { return specs[a].Name < specs[b].Name })
	var b strings.Builder
	for _, s := range specs {
		opts := s.Options
		if len(opts) == 0 {
			opts, _ = bson.Marshal(bson.D{})
		}
		fmt.Fprintf(&b, "%s %s indexes:", s.Name, opts)
		cur, err := c.Database(db).Collection(s.Name).Indexes().List(ctx)
		must(t, err)
		var idx []string
		for cur.Next(ctx) {
			name, _ := cur.Current.Lookup("name").StringValueOK()
			idx = append(idx, fmt.Sprintf("%s%s", name, cur.Current.Lookup("key")))
		}
		sort.Strings(idx)
		fmt.Fprintf(&b, "%v docs:", idx)
		dc, err := c.Database(db).Collection(s.Name).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		must(t, err)
		for dc.Next(ctx) {
			b.WriteString(" " + dc.Current.String())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// expectedDump is dump of plain collections holding docs, as the backup has them.
func expectedDump(t *testing.T, db string, colls map[string][]bson.D) string {
	var names []string
	for n := range colls {
		names = append(names, n)
	}
	sort.Strings(names)
	empty, _ := bson.Marshal(bson.D{})
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s indexes:[_id_{\"_id\": {\"$numberInt\":\"1\"}}] docs:", n, bson.Raw(empty))
		docs := colls[n]
		for _, d := range docs {
			raw, err := bson.Marshal(d)
			must(t, err)
			b.WriteString(" " + bson.Raw(raw).String())
		}
		b.WriteString("\n")
	}
	return b.String()
}
