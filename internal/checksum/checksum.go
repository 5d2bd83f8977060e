// Package checksum is the one definition of a collection's content
// checksum: the SHA-256 of the raw BSON of every document, concatenated in
// the server's _id order (find().sort({_id: 1})), with the number of
// documents and their bytes. Documents are never decoded, so field order
// and types count byte for byte. A restore (restore.Options.Checksum), a
// drill and `rewind checksum` all compute it here, on a live deployment, a
// restored one, or a source as of a past cluster time.
//
// Why _id order is the same on the source and on a restore is in
// docs/FORMAT.md ("Content checksums").
package checksum

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/source"
)

// Sum is one collection's content checksum.
type Sum struct {
	Namespace string `json:"namespace"` // "db.coll"
	Count     int64  `json:"count"`     // documents
	Bytes     int64  `json:"bytes"`     // their raw BSON bytes
	SHA256    string `json:"sha256"`    // hex SHA-256 of the documents' raw BSON in _id order
}

// Equal reports whether two sums say the same content.
func (s Sum) Equal(o Sum) bool { return s.Count == o.Count && s.SHA256 == o.SHA256 }

// Reader reads a deployment's collections, now or as of a past cluster
// time. The zero At reads the current data.
type Reader struct {
	Client *mongo.Client
	// At, when set, reads every collection as of that cluster time, in a
	// snapshot session (readConcern "snapshot" with atClusterTime). Only
	// for a server that can (source.Capabilities.SnapshotReads): callers
	// refuse it otherwise, because some servers ignore that read concern.
	At optime.Timestamp
}

// ErrSnapshotTooOld means the server no longer holds the history to read
// at Reader.At: the point is older than its snapshot history window
// (minSnapshotHistoryWindowInSeconds, 300 s by default).
var ErrSnapshotTooOld = errors.New("the point is older than the server's snapshot history window")

// List names, sorted, every collection the match selects (nil: all): user
// databases only (admin, config and local are the server's), no views,
// no system.* collection but system.js (restore.Mapper.Match, the --ns
// rule, is what callers pass).
func List(ctx context.Context, client *mongo.Client, match func(db, coll string) bool) ([]string, error) {
	dbs, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	var out []string
	for _, db := range dbs {
		if db == "admin" || db == "config" || db == "local" {
			continue
		}
		names, err := client.Database(db).ListCollectionNames(ctx, bson.D{{Key: "type", Value: "collection"}})
		if err != nil {
			return nil, fmt.Errorf("list collections of %s: %w", db, err)
		}
		for _, c := range names {
			if strings.HasPrefix(c, "system.") && c != "system.js" || match != nil && !match(db, c) {
				continue
			}
			out = append(out, db+"."+c)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Deployment sums every collection the match selects (List), sorted by
// namespace.
func (r Reader) Deployment(ctx context.Context, match func(db, coll string) bool) ([]Sum, error) {
	names, err := List(ctx, r.Client, match)
	if err != nil {
		return nil, err
	}
	return r.Namespaces(ctx, names)
}

// Namespaces sums the named collections ("db.coll"), in the order given.
// A collection that does not exist sums as an empty one.
func (r Reader) Namespaces(ctx context.Context, names []string) ([]Sum, error) {
	out := make([]Sum, 0, len(names))
	err := r.session(ctx, func(ctx context.Context) error {
		for _, ns := range names {
			s, err := r.collection(ctx, ns)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// session runs fn in a snapshot session at r.At, or plainly.
func (r Reader) session(ctx context.Context, fn func(context.Context) error) error {
	if r.At.IsZero() {
		return fn(ctx)
	}
	sess, err := r.Client.StartSession(options.Session().SetSnapshot(true).
		SetSnapshotTime(bson.Timestamp{T: r.At.T, I: r.At.I}))
	if err != nil {
		return fmt.Errorf("start a snapshot session at %s: %w", r.At, err)
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
	return mongo.WithSession(ctx, sess, fn)
}

func (r Reader) collection(ctx context.Context, ns string) (Sum, error) {
	s := Sum{Namespace: ns}
	h := sha256.New()
	err := r.Each(ctx, ns, func(doc bson.Raw) error {
		h.Write(doc)
		s.Count++
		s.Bytes += int64(len(doc))
		return nil
	})
	s.SHA256 = hex.EncodeToString(h.Sum(nil))
	return s, err
}

// Each calls fn with every document of ns in _id order, as raw BSON
// (valid until fn returns). Inside Namespaces' session it reads at r.At;
// called directly with a non-zero At it opens a session of its own.
func (r Reader) Each(ctx context.Context, ns string, fn func(bson.Raw) error) error {
	if !r.At.IsZero() && mongo.SessionFromContext(ctx) == nil {
		return r.session(ctx, func(ctx context.Context) error { return r.Each(ctx, ns, fn) })
	}
	db, coll, _ := strings.Cut(ns, ".")
	// allowDiskUse: a collection without an _id index (time series) is
	// sorted in memory, and MongoDB refuses a sort above 100 MiB without it.
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetAllowDiskUse(true)
	cur, err := r.Client.Database(db).Collection(coll).Find(ctx, bson.D{}, opts)
	if err != nil {
		return r.readError(ns, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		if err := fn(cur.Current); err != nil {
			return err
		}
	}
	return r.readError(ns, cur.Err())
}

// readError names the collection and the point; SnapshotTooOld (239) is
// ErrSnapshotTooOld.
func (r Reader) readError(ns string, err error) error {
	if err == nil {
		return nil
	}
	var se mongo.ServerError
	if !r.At.IsZero() && errors.As(err, &se) && se.HasErrorCode(239) {
		return fmt.Errorf("read %s at %s: %w (%v)", ns, r.At, ErrSnapshotTooOld, err)
	}
	if !r.At.IsZero() {
		return fmt.Errorf("read %s at %s: %w", ns, r.At, err)
	}
	return fmt.Errorf("read %s: %w", ns, err)
}

// ErrNoSnapshotReads means the source cannot read the data as of a past
// cluster time (source.Capabilities.SnapshotReads is false).
var ErrNoSnapshotReads = errors.New("the source cannot read at a past cluster time")

// At is a Reader of src as of cluster time at, or ErrNoSnapshotReads
// (wrapped, with what to do) when its server cannot read a past point:
// MongoDB before 5.0, and FerretDB, which takes readConcern "snapshot" and
// answers the current data, so asking it would compare the wrong state.
func At(src *source.Source, at optime.Timestamp) (Reader, error) {
	if !src.Caps.SnapshotReads {
		return Reader{}, fmt.Errorf("%w: %s %s has no snapshot reads with atClusterTime (MongoDB 5.0 or later has them); leave --at out to read the current data, on a source nothing writes to since that point",
			ErrNoSnapshotReads, src.Flavor, src.Version)
	}
	return Reader{Client: src.Client, At: at}, nil
}
