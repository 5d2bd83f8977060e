package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/optime"
)

// Oplog is the capped collection every replica set member writes.
func (s *Source) Oplog() *mongo.Collection {
	return s.Client.Database("local").Collection("oplog.rs")
}

// checkOplogReadable reads one entry of the oplog, in no particular order:
// proof that it exists and the user may read it. Unlike the newest entry,
// this is cheap on every server (a server without SeekByTS answers a sorted
// query on the oplog with a scan of all of it, seconds on a large oplog).
func (s *Source) checkOplogReadable(ctx context.Context) error {
	opts := options.FindOne().SetProjection(bson.D{{Key: "ts", Value: 1}})
	err := s.Oplog().FindOne(ctx, bson.D{}, opts).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return s.checkOplogExists(ctx)
	}
	if err != nil {
		return fmt.Errorf("read local.oplog.rs: %w", explainConnectError(err))
	}
	return nil
}

// checkOplogExists tells an empty oplog (a new deployment: capture starts
// with its first entry) from a missing one.
func (s *Source) checkOplogExists(ctx context.Context) error {
	names, err := s.Client.Database("local").ListCollectionNames(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
	if err != nil {
		return fmt.Errorf("list collections of local: %w", explainConnectError(err))
	}
	if len(names) == 0 {
		return errors.New("it has no oplog (local.oplog.rs is missing): is it a replica set member?")
	}
	return nil
}

// OldestEntry returns the timestamp of the first entry still in the oplog:
// resuming after anything older means a gap. An empty oplog gives
// optime.Zero and no error.
func (s *Source) OldestEntry(ctx context.Context) (optime.Timestamp, error) {
	return s.edgeEntry(ctx, 1)
}

// NewestEntry returns the timestamp of the newest entry in the oplog. An
// empty oplog gives optime.Zero and no error.
func (s *Source) NewestEntry(ctx context.Context) (optime.Timestamp, error) {
	return s.edgeEntry(ctx, -1)
}

func (s *Source) edgeEntry(ctx context.Context, dir int) (optime.Timestamp, error) {
	opts := options.FindOne().SetSort(bson.D{{Key: "$natural", Value: dir}}).
		SetProjection(bson.D{{Key: "ts", Value: 1}})
	raw, err := s.Oplog().FindOne(ctx, bson.D{}, opts).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return optime.Zero, s.checkOplogExists(ctx)
	}
	if err != nil {
		return optime.Zero, fmt.Errorf("read local.oplog.rs: %w", explainConnectError(err))
	}
	return optime.OfEntry(raw)
}

// OplogFill returns how many bytes the oplog holds and its configured
// maximum (collStats size and maxSize; max is 0 when the server does not
// say). Until the oplog reaches its maximum nothing is dropped, so its
// window only grows.
func (s *Source) OplogFill(ctx context.Context) (size, max int64, err error) {
	var st struct {
		Size    int64 `bson:"size"`
		MaxSize int64 `bson:"maxSize"`
	}
	cmd := bson.D{{Key: "collStats", Value: "oplog.rs"}}
	if err := s.Client.Database("local").RunCommand(ctx, cmd).Decode(&st); err != nil {
		return 0, 0, fmt.Errorf("collStats local.oplog.rs: %w", explainConnectError(err))
	}
	return st.Size, st.MaxSize, nil
}

// MajorityCommitted returns the newest timestamp that a majority of the
// replica set has written: entries at or before it can never be rolled
// back. Without MajorityReads (a single node) everything logged is
// committed, and it returns the largest timestamp.
func (s *Source) MajorityCommitted(ctx context.Context) (optime.Timestamp, error) {
	if !s.Caps.MajorityReads {
		return optime.Timestamp{T: ^uint32(0), I: ^uint32(0)}, nil
	}
	var hello bson.Raw
	if err := s.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return optime.Zero, fmt.Errorf("ask the majority commit point: %w", err)
	}
	v, err := hello.LookupErr("lastWrite", "majorityOpTime", "ts")
	if err != nil {
		return optime.Zero, fmt.Errorf("hello has no lastWrite.majorityOpTime: %w", err)
	}
	t, i, ok := v.TimestampOK()
	if !ok {
		return optime.Zero, errors.New("hello's lastWrite.majorityOpTime.ts is not a timestamp")
	}
	return optime.Timestamp{T: t, I: i}, nil
}

// ClockTimestamp reads the server's clock (hello's localTime) as an oplog
// timestamp of that second with increment 0. Increments start at 1 on
// MongoDB and FerretDB, and entries take their seconds from the clock of
// the server that logs them, so every entry logged from now on is after
// it (given clocks in step across the replica set's members). It anchors a
// snapshot of an empty oplog, which has no entry to start from.
func (s *Source) ClockTimestamp(ctx context.Context) (optime.Timestamp, error) {
	var hello struct {
		LocalTime time.Time `bson:"localTime"`
	}
	if err := s.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return optime.Zero, fmt.Errorf("read the server's clock: %w", explainConnectError(err))
	}
	if hello.LocalTime.IsZero() {
		return optime.Zero, errors.New("read the server's clock: hello has no localTime")
	}
	return optime.Timestamp{T: uint32(hello.LocalTime.Unix())}, nil
}

// EntryAt returns the oplog entry whose ts is exactly ts, and whether the
// oplog holds one. On MongoDB a ts-bounded query on the oplog is a seek; a
// server without SeekByTS scans its oplog for it.
func (s *Source) EntryAt(ctx context.Context, ts optime.Timestamp) (bson.Raw, bool, error) {
	filter := bson.D{{Key: "ts", Value: bson.Timestamp{T: ts.T, I: ts.I}}}
	raw, err := s.Oplog().FindOne(ctx, filter).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the oplog entry at %s: %w", ts, explainConnectError(err))
	}
	return raw, true, nil
}

// EntryByID returns the oplog entry whose _id is id, and whether the oplog
// holds one. FerretDB gives each entry an _id and answers an _id equality
// query with one row read, unlike a query by ts (MongoDB's entries have
// no _id: use EntryAt there).
func (s *Source) EntryByID(ctx context.Context, id bson.RawValue) (bson.Raw, bool, error) {
	raw, err := s.Oplog().FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the oplog entry with _id %s: %w", id, explainConnectError(err))
	}
	return raw, true, nil
}

// NewestEntryAtOrBefore returns the timestamp of the newest oplog entry at
// or before ts (optime.Zero when there is none). It is an index seek only
// with Caps.SeekByTS; elsewhere it reads the whole oplog.
func (s *Source) NewestEntryAtOrBefore(ctx context.Context, ts optime.Timestamp) (optime.Timestamp, error) {
	opts := options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}}).
		SetProjection(bson.D{{Key: "ts", Value: 1}})
	filter := bson.D{{Key: "ts", Value: bson.D{{Key: "$lte", Value: bson.Timestamp{T: ts.T, I: ts.I}}}}}
	raw, err := s.Oplog().FindOne(ctx, filter, opts).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return optime.Zero, nil
	}
	if err != nil {
		return optime.Zero, fmt.Errorf("read local.oplog.rs: %w", explainConnectError(err))
	}
	return optime.OfEntry(raw)
}

// OplogMark is a cheap fingerprint of the oplog: how many entries it holds
// and its oldest entry. A capped oplog only grows at its end and drops at
// its start, so two equal marks taken at two moments mean that no entry was
// logged or dropped in between. Taking one costs two small reads on every
// server: the $collStats stage's count (a count kept by the storage engine;
// FerretDB reads SQLite's page statistics, where the collStats command
// would also run ANALYZE), and one entry read in natural order without a
// sort (which FerretDB answers with a single row, where a sorted query or
// a filter on ts reads its whole oplog).
type OplogMark struct {
	// Count is $collStats' count of local.oplog.rs: entries.
	Count int64
	// Oldest is the first entry in natural order; zero for an empty oplog.
	Oldest optime.Timestamp
}

// MarkOplog returns the oplog's mark (see OplogMark).
func (s *Source) MarkOplog(ctx context.Context) (OplogMark, error) {
	var st struct {
		Count struct {
			N int64 `bson:"count"`
		} `bson:"storageStats"`
		N int64 `bson:"count"` // where a server puts it at the top level
	}
	pipeline := bson.A{bson.D{{Key: "$collStats", Value: bson.D{{Key: "count", Value: bson.D{}}}}}}
	cur, err := s.Oplog().Aggregate(ctx, pipeline)
	if err != nil {
		return OplogMark{}, fmt.Errorf("$collStats of local.oplog.rs: %w", explainConnectError(err))
	}
	if !cur.Next(ctx) {
		_ = cur.Close(ctx)
		return OplogMark{}, fmt.Errorf("$collStats of local.oplog.rs answered nothing: %w", explainConnectError(cur.Err()))
	}
	err = cur.Decode(&st)
	_ = cur.Close(ctx)
	if err != nil {
		return OplogMark{}, fmt.Errorf("$collStats of local.oplog.rs: %w", err)
	}
	count := max(st.Count.N, st.N)
	opts := options.FindOne().SetProjection(bson.D{{Key: "ts", Value: 1}})
	raw, err := s.Oplog().FindOne(ctx, bson.D{}, opts).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return OplogMark{Count: count}, nil
	}
	if err != nil {
		return OplogMark{}, fmt.Errorf("read local.oplog.rs: %w", explainConnectError(err))
	}
	oldest, err := optime.OfEntry(raw)
	return OplogMark{Count: count, Oldest: oldest}, err
}

// OplogScan is what one read of the whole oplog found.
type OplogScan struct {
	// Count is the number of entries read.
	Count int64
	// Newest is the entry with the greatest ts, and NewestID its _id
	// (FerretDB gives every entry one; MongoDB's entries have none, and
	// NewestID is then the zero RawValue).
	Newest   optime.Timestamp
	NewestID bson.RawValue
	// NewestBefore is the greatest ts before the scan's before argument
	// (zero if none).
	NewestBefore optime.Timestamp
}

// ScanOplog reads the timestamp of every oplog entry, in natural order
// without a sort, which a server without SeekByTS streams instead of
// sorting its oplog in memory. It is one full read of the oplog: use it
// where one cannot be avoided, never on MongoDB, which seeks by ts.
func (s *Source) ScanOplog(ctx context.Context, before optime.Timestamp) (OplogScan, error) {
	opts := options.Find().SetProjection(bson.D{{Key: "ts", Value: 1}}).SetBatchSize(10000)
	cur, err := s.Oplog().Find(ctx, bson.D{}, opts)
	if err != nil {
		return OplogScan{}, fmt.Errorf("read local.oplog.rs: %w", explainConnectError(err))
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	var sc OplogScan
	for cur.Next(ctx) {
		ts, err := optime.OfEntry(cur.Current)
		if err != nil {
			return OplogScan{}, err
		}
		sc.Count++
		if ts.After(sc.Newest) {
			sc.Newest = ts
			sc.NewestID, _ = cur.Current.LookupErr("_id")
			sc.NewestID = bson.RawValue{Type: sc.NewestID.Type, Value: append([]byte(nil), sc.NewestID.Value...)}
		}
		if ts.Before(before) && ts.After(sc.NewestBefore) {
			sc.NewestBefore = ts
		}
	}
	if err := cur.Err(); err != nil {
		return OplogScan{}, fmt.Errorf("read local.oplog.rs: %w", explainConnectError(err))
	}
	return sc, nil
}
