package oplog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/redact"
)

// Flavor names the kind of server a source is. It changes the meaning of
// update entries (see DESIGN.md), so it is recorded with every timeline.
type Flavor string

const (
	// FlavorMongoDB is a MongoDB replica set.
	FlavorMongoDB Flavor = "mongodb"
	// FlavorFerretDB is FerretDB, which logs every update as a whole-document $set.
	FlavorFerretDB Flavor = "ferretdb"
)

// Source is a connected MongoDB deployment whose oplog rewind reads.
type Source struct {
	Client *mongo.Client
	Flavor Flavor
	// SetName is the replica set name; empty for FerretDB.
	SetName string
	// Version is the server version the source reports.
	Version string
}

// Connect opens a client to uri, checks that the server answers and has an
// oplog, and detects its flavor. Errors say what to fix and never contain the
// password of uri.
func Connect(ctx context.Context, uri string) (*Source, error) {
	safe := redact.URL(uri)
	opts := options.Client().ApplyURI(uri).SetAppName("rewind")
	if opts.ServerSelectionTimeout == nil {
		opts.SetServerSelectionTimeout(10 * time.Second)
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("source URI %s is not valid (%v): use mongodb://host:port/ or mongodb+srv://", safe, scrub(err, uri))
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to source %s: %v", safe, scrub(err, uri))
	}
	src := &Source{Client: client}
	if err := src.identify(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("source %s: %w", safe, err)
	}
	return src, nil
}

// Close disconnects from the source.
func (s *Source) Close(ctx context.Context) error { return s.Client.Disconnect(ctx) }

// identify asks the server who it is and checks that it keeps an oplog.
func (s *Source) identify(ctx context.Context) error {
	var build bson.Raw
	err := s.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build)
	if err != nil {
		return explainConnectError(err)
	}
	s.Version, _ = build.Lookup("version").StringValueOK()
	if _, ok := build.Lookup("ferretdbVersion").StringValueOK(); ok {
		s.Flavor = FlavorFerretDB
	} else {
		s.Flavor = FlavorMongoDB
	}
	var hello bson.Raw
	if err := s.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return explainConnectError(err)
	}
	s.SetName, _ = hello.Lookup("setName").StringValueOK()
	if s.Flavor == FlavorMongoDB && s.SetName == "" {
		return errors.New("it is not a replica set member, so it has no oplog: start mongod with --replSet (a one-member replica set is enough)")
	}
	return s.checkOplogReadable(ctx)
}

// checkOplogReadable reads one entry of the oplog, in no particular order:
// proof that it exists and the user may read it. Unlike the newest entry,
// this is cheap on every server (FerretDB answers a sorted query on the
// oplog with a scan of all of it, seconds on a large oplog).
func (s *Source) checkOplogReadable(ctx context.Context) error {
	opts := options.FindOne().SetProjection(bson.D{{Key: "ts", Value: 1}})
	err := s.oplogColl().FindOne(ctx, bson.D{}, opts).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return s.checkOplogExists(ctx)
	}
	if err != nil {
		return fmt.Errorf("read local.oplog.rs: %w", explainConnectError(err))
	}
	return nil
}

// explainConnectError turns the driver's errors into advice.
func explainConnectError(err error) error {
	msg := err.Error()
	switch {
	case mongo.IsTimeout(err) || strings.Contains(msg, "server selection"):
		return errors.New("no server answered: check the host and port in the URI and that the server is running")
	case strings.Contains(msg, "Authentication failed") || strings.Contains(msg, "auth error") || strings.Contains(msg, "AuthenticationFailed"):
		return errors.New("authentication failed: check the user name, password and authSource in the URI")
	case strings.Contains(msg, "Unauthorized") || strings.Contains(msg, "not authorized"):
		return fmt.Errorf("the user lacks a permission rewind needs (the backup role covers it): %v", err)
	}
	return err
}

// scrub removes the secrets of the URI (a password, a token) from a driver
// error.
func scrub(err error, uri string) string { return redact.Error(err, uri) }

// Identity says which source a repository belongs to: its replica set name,
// or for FerretDB (which has none) the flavor alone.
func (s *Source) Identity() string {
	if s.SetName != "" {
		return "rs:" + s.SetName
	}
	return string(s.Flavor)
}

// oplogColl is the capped collection every replica set member writes.
func (s *Source) oplogColl() *mongo.Collection {
	return s.Client.Database("local").Collection("oplog.rs")
}

// newestEntry returns the timestamp of the last entry in the source's oplog.
func (s *Source) newestEntry(ctx context.Context) (optime.Timestamp, error) {
	return s.edgeEntry(ctx, -1)
}

// OldestEntry returns the timestamp of the first entry still in the oplog:
// resuming after anything older means a gap.
func (s *Source) OldestEntry(ctx context.Context) (optime.Timestamp, error) {
	return s.edgeEntry(ctx, 1)
}

// NewestEntry returns the timestamp of the newest entry in the oplog.
func (s *Source) NewestEntry(ctx context.Context) (optime.Timestamp, error) {
	return s.newestEntry(ctx)
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

func (s *Source) edgeEntry(ctx context.Context, dir int) (optime.Timestamp, error) {
	opts := options.FindOne().SetSort(bson.D{{Key: "$natural", Value: dir}}).
		SetProjection(bson.D{{Key: "ts", Value: 1}})
	raw, err := s.oplogColl().FindOne(ctx, bson.D{}, opts).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return optime.Zero, s.checkOplogExists(ctx)
	}
	if err != nil {
		return optime.Zero, fmt.Errorf("read local.oplog.rs: %w", explainConnectError(err))
	}
	return EntryTS(raw)
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

// EntryTS reads the ts field of a raw oplog entry.
func EntryTS(entry bson.Raw) (optime.Timestamp, error) {
	v, err := entry.LookupErr("ts")
	if err != nil {
		return optime.Zero, fmt.Errorf("oplog entry has no ts field: %w", err)
	}
	t, i, ok := v.TimestampOK()
	if !ok {
		return optime.Zero, fmt.Errorf("oplog entry ts is a %s, not a timestamp", v.Type)
	}
	return optime.Timestamp{T: t, I: i}, nil
}

// MajorityCommitted returns the newest timestamp that a majority of the
// replica set has written: entries at or before it can never be rolled back.
// FerretDB has a single node, so everything it logged is committed.
func (s *Source) MajorityCommitted(ctx context.Context) (optime.Timestamp, error) {
	if s.Flavor == FlavorFerretDB {
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
