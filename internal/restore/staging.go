package restore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// StagingPrefix begins the name of every staging database. A filtered or
// merging restore, and an undo, first restore the documents as of their
// restore point into staging databases on the target, one per source
// database: rewind_staging_<run>_<db>, where <run> is the run's start
// (Unix seconds in base 36, 7 characters) and 3 random characters, and
// <db> the source database (cut and suffixed with a hash when the name
// would pass MongoDB's 63 bytes). The server evaluates filters there, and
// the documents are copied from there. A run drops its staging databases
// when it ends, also after a failure or an interrupt (with a cleanup
// deadline of its own). One left by a killed process is dropped by the
// next staged run on the same target once it is older than StaleStaging;
// drop one by hand sooner when no rewind restore or undo is running.
const StagingPrefix = "rewind_staging_"

// StaleStaging is the age after which a staging database is a leftover of
// a killed run, which the next staged run drops.
const StaleStaging = 24 * time.Hour

// stagingCleanup bounds the drop of a run's staging databases, which must
// also happen once the run's own context is cancelled.
const stagingCleanup = 2 * time.Minute

// maxDBName is MongoDB's limit on database names, in bytes.
const maxDBName = 63

// newStagingRun names a staging run started at now: 7 base-36 digits of
// its Unix second and 3 random ones.
func newStagingRun(now time.Time) string {
	secs := strconv.FormatInt(now.Unix(), 36)
	secs = strings.Repeat("0", max(0, 7-len(secs))) + secs
	n, err := rand.Int(rand.Reader, big.NewInt(36*36*36))
	if err != nil { // crypto/rand does not fail on supported systems
		n = big.NewInt(now.UnixNano() % (36 * 36 * 36))
	}
	r := strconv.FormatInt(n.Int64(), 36)
	return secs + strings.Repeat("0", 3-len(r)) + r
}

// stagingDB is the staging database of source database db in run.
func stagingDB(run, db string) string {
	head := StagingPrefix + run + "_"
	if len(head)+len(db) <= maxDBName {
		return head + db
	}
	sum := sha256.Sum256([]byte(db))
	keep := maxDBName - len(head) - 9 // "_" and 8 hex digits
	cut := db[:keep]
	for !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	return head + cut + "_" + hex.EncodeToString(sum[:4])
}

// stagingStarted reads the start of the run that named a staging database.
func stagingStarted(name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, StagingPrefix)
	if !ok || len(rest) < 11 || rest[10] != '_' {
		return time.Time{}, false
	}
	secs, err := strconv.ParseInt(rest[:7], 36, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(secs, 0), true
}

// staging is one run's staging databases on the target.
type staging struct {
	run    string
	client *mongo.Client
	log    *slog.Logger
	byDB   map[string]string // staging database -> source database
	gone   bool              // dropped
}

func newStaging(client *mongo.Client, log *slog.Logger) *staging {
	return &staging{run: newStagingRun(time.Now()), client: client, log: log, byDB: map[string]string{}}
}

// plan is p with every target in the staging databases, under the source
// names: the same load, replay and indexes as a restore of p, written
// where nothing else lives. It is a plain restore (no filter, no merge, no
// users or roles, views left to the replay). Errors: a namespace too long
// to stage.
func (s *staging) plan(p Plan) (Plan, error) {
	sp := p
	sp.Mapper = Mapper{include: p.Mapper.include, stage: s.run}
	sp.Filter, sp.Merge, sp.Users, sp.Roles, sp.Views = nil, MergeNone, nil, nil, nil
	sp.Collections = make([]CollectionPlan, len(p.Collections))
	for i, c := range p.Collections {
		c.Target = sp.Mapper.Target(c.Source.DB, c.Source.Coll)
		sp.Collections[i] = c
	}
	sp.Late = make([]LateNamespace, len(p.Late))
	for i, l := range p.Late {
		l.Target = sp.Mapper.Target(l.Source.DB, l.Source.Coll)
		sp.Late[i] = l
	}
	for _, db := range p.sourceDBs() {
		s.byDB[stagingDB(s.run, db)] = db
	}
	for _, ns := range append(collTargets(sp.Collections), lateTargets(sp.Late)...) {
		if len(ns.String()) > maxNamespace {
			return sp, fmt.Errorf("stage %s: the staging namespace would have %d bytes, over MongoDB's %d; restore that collection without --filter or --merge", ns.Coll, len(ns.String()), maxNamespace)
		}
	}
	return sp, nil
}

// sourceDBs lists every source database the plan selects or whose drop it
// replays.
func (p Plan) sourceDBs() []string {
	set := map[string]bool{}
	for _, c := range p.Collections {
		set[c.Source.DB] = true
	}
	for _, v := range p.Views {
		set[v.Source.DB] = true
	}
	for _, l := range p.Late {
		set[l.Source.DB] = true
	}
	for _, db := range p.droppedDBs {
		set[db] = true
	}
	out := make([]string, 0, len(set))
	for db := range set {
		out = append(out, db)
	}
	sort.Strings(out)
	return out
}

func collTargets(cs []CollectionPlan) []Namespace {
	out := make([]Namespace, len(cs))
	for i, c := range cs {
		out[i] = c.Target
	}
	return out
}

func lateTargets(ls []LateNamespace) []Namespace {
	out := make([]Namespace, len(ls))
	for i, l := range ls {
		out[i] = l.Target
	}
	return out
}

// stagedCollection is a collection the staging holds at the restore point.
type stagedCollection struct {
	Source  Namespace
	Staged  Namespace
	Options bson.Raw   // listCollections options
	Indexes []bson.Raw // listIndexes specs
}

// collections lists the collections the staging holds (the state at the
// restore point: the replay may have created, renamed or dropped some),
// with their options and indexes, by source name.
func (s *staging) collections(ctx context.Context) ([]stagedCollection, error) {
	var out []stagedCollection
	lister := collectionLister{client: s.client, byDB: map[string]map[string]bson.Raw{}}
	for sdb, db := range s.byDB {
		colls, err := lister.list(ctx, sdb)
		if err != nil {
			return nil, err
		}
		for name, spec := range colls {
			if typ, _ := spec.Lookup("type").StringValueOK(); typ == "view" || strings.HasPrefix(name, "system.") {
				continue
			}
			c := stagedCollection{Source: Namespace{db, name}, Staged: Namespace{sdb, name}}
			c.Options, _ = spec.Lookup("options").DocumentOK()
			if c.Indexes, err = listIndexes(ctx, s.client, c.Staged); err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Source.String() < out[b].Source.String() })
	return out, nil
}

// coll is the staging collection of source namespace src.
func (s *staging) coll(src Namespace) *mongo.Collection {
	return s.client.Database(stagingDB(s.run, src.DB)).Collection(src.Coll)
}

// drop removes the run's staging databases: those it named and any other
// with its prefix. It runs when the run ends however it ends, so it has a
// deadline of its own that the run's cancellation does not cut short.
func (s *staging) drop(ctx context.Context) {
	if s.gone {
		return
	}
	s.gone = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stagingCleanup)
	defer cancel()
	names := map[string]bool{}
	for sdb := range s.byDB {
		names[sdb] = true
	}
	listed, err := stagingDBs(ctx, s.client, StagingPrefix+s.run+"_")
	if err != nil {
		s.log.Warn("list staging databases to drop them", "err", err)
	}
	for _, n := range listed {
		names[n] = true
	}
	for n := range names {
		if err := s.client.Database(n).Drop(ctx); err != nil {
			s.log.Error("drop staging database: drop it by hand", "db", n, "err", err)
		}
	}
}

// stagingDBs lists the target's databases whose names start with prefix.
func stagingDBs(ctx context.Context, client *mongo.Client, prefix string) ([]string, error) {
	filter := bson.D{{Key: "name", Value: bson.D{{Key: "$regex", Value: "^" + regexp.QuoteMeta(prefix)}}}}
	names, err := client.ListDatabaseNames(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	out := names[:0]
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out, nil
}

// dropLeftovers drops the staging databases of runs started more than
// StaleStaging before now (left by a killed process) and names the younger
// ones of other runs, which may be running.
func (s *staging) dropLeftovers(ctx context.Context, now time.Time) {
	names, err := stagingDBs(ctx, s.client, StagingPrefix)
	if err != nil {
		s.log.Warn("look for staging databases left by earlier runs", "err", err)
		return
	}
	for _, n := range names {
		started, ok := stagingStarted(n)
		switch {
		case !ok:
		case now.Sub(started) > StaleStaging:
			s.log.Warn("dropping a staging database left by a run that did not finish", "db", n, "started", started.UTC().Format(time.RFC3339))
			if err := s.client.Database(n).Drop(ctx); err != nil {
				s.log.Error("drop staging database: drop it by hand", "db", n, "err", err)
			}
		default:
			s.log.Warn("a staging database of another run is on the target; drop it by hand if no rewind restore or undo is running", "db", n, "started", started.UTC().Format(time.RFC3339))
		}
	}
}
