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
