package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/repo"
)

// ErrRouter is Connect's error for a mongos: a router has no oplog of its
// own. The agent then finds the cluster's shards through it and captures
// each directly; a command that works on one replica set only says so.
var ErrRouter = errors.New("it is a mongos (a sharded cluster's router), which has no oplog of its own")

// Source is a connected deployment whose oplog rewind reads. Every field is
// set once by Connect and never changes.
type Source struct {
	Client *mongo.Client
	Flavor Flavor
	Caps   Capabilities
	// SetName is the replica set name (hello's setName); empty for FerretDB.
	SetName string
	// SetID is the replica set's id (replSetGetConfig's
	// settings.replicaSetId, hex); empty when the user may not read the
	// configuration (it needs clusterMonitor) or the server has none.
	SetID string
	// Version is the server version buildInfo reports.
	Version string
}

// Connect opens a client to uri, asks the server who it is, checks that it
// keeps a readable oplog, and sets the flavor and capabilities. Errors say
// what to fix and never contain the password of uri.
func Connect(ctx context.Context, uri string) (*Source, error) {
	safe := redact.URL(uri)
	opts := options.Client().ApplyURI(uri).SetAppName("rewind")
	if opts.ServerSelectionTimeout == nil {
		opts.SetServerSelectionTimeout(10 * time.Second)
	}
	if err := opts.Validate(); err != nil {
		if advice := TLSAdvice(err); advice != "" {
			return nil, fmt.Errorf("source URI %s: %s (%v)", safe, advice, scrub(err, uri))
		}
		return nil, fmt.Errorf("source URI %s is not valid (%v): use mongodb://host:port/ or mongodb+srv://", safe, scrub(err, uri))
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to source %s: %v", safe, scrub(err, uri))
	}
	src := &Source{Client: client}
	if err := src.identify(ctx); err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
		return nil, fmt.Errorf("source %s: %w", safe, err)
	}
	return src, nil
}

// Close disconnects from the source.
func (s *Source) Close(ctx context.Context) error { return s.Client.Disconnect(ctx) }

// Shard is the id this source's timelines, snapshots and heartbeats are
// stored under: its replica set name (made key-safe by repo.ShardID), or
// for a FerretDB source, which has none, the flavor. It is the one rule:
// if capture and snapshots disagreed on it, they would land under
// different shards and restore windows would vanish.
func (s *Source) Shard() string {
	if s.SetName == "" {
		return string(s.Flavor)
	}
	return repo.ShardID(s.SetName)
}

// Identity says which source a repository belongs to: its replica set name,
// or for FerretDB (which has none) the flavor alone.
func (s *Source) Identity() string {
	if s.SetName != "" {
		return "rs:" + s.SetName
	}
	return string(s.Flavor)
}

// Record is what a repository records of its source at init.
func (s *Source) Record() repo.Source {
	return repo.Source{Flavor: string(s.Flavor), ReplicaSet: s.SetName, ReplicaSetID: s.SetID}
}

// CheckRepository refuses a repository that was made for another source.
func (s *Source) CheckRepository(cfg repo.Config) error {
	want := cfg.Source
	switch {
	case want.Cluster != nil:
		return fmt.Errorf("the repository backs up a sharded cluster (shards %s), not one replica set: give the cluster (--source with its mongos, or --shard NAME=URI), or use a repository of its own for this replica set",
			strings.Join(want.Cluster.Names(), ", "))
	case want.Flavor == "":
		return nil
	case want.Flavor != string(s.Flavor):
		return fmt.Errorf("the repository backs up a %s source, not this %s one: use a repository of its own for each source", want.Flavor, s.Flavor)
	case want.ReplicaSet != s.SetName:
		return fmt.Errorf("the repository backs up replica set %q, not %q: use a repository of its own for each source", want.ReplicaSet, s.SetName)
	case want.ReplicaSetID != "" && s.SetID != "" && want.ReplicaSetID != s.SetID:
		return fmt.Errorf("the repository backs up replica set %q with id %s, not this one with id %s (another set of the same name): use a repository of its own for each source",
			want.ReplicaSet, want.ReplicaSetID, s.SetID)
	}
	return nil
}

// identify asks the server who it is and checks that it keeps an oplog.
func (s *Source) identify(ctx context.Context) error {
	var build bson.Raw
	err := s.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build)
	if err != nil {
		return explainConnectError(err)
	}
	s.Version, _ = build.Lookup("version").StringValueOK()
	s.Flavor = MongoDB
	if _, ok := build.Lookup("ferretdbVersion").StringValueOK(); ok {
		s.Flavor = FerretDB
	}
	s.Caps = capabilitiesOf(s.Flavor, s.Version)
	var hello bson.Raw
	if err := s.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return explainConnectError(err)
	}
	s.SetName, _ = hello.Lookup("setName").StringValueOK()
	if cluster.IsRouter(hello) {
		return ErrRouter
	}
	if s.Caps.MajorityReads && s.SetName == "" {
		return errors.New("it is not a replica set member, so it has no oplog: start mongod with --replSet (a one-member replica set is enough)")
	}
	if s.SetName != "" {
		s.SetID = s.replicaSetID(ctx)
	}
	return s.checkOplogReadable(ctx)
}

// replicaSetID reads the replica set's id, best effort: replSetGetConfig
// needs the clusterMonitor role, which a user with only the backup role
// lacks; then the set is known by its name alone.
func (s *Source) replicaSetID(ctx context.Context) string {
	var reply struct {
		Config struct {
			Settings struct {
				ReplicaSetID bson.ObjectID `bson:"replicaSetId"`
			} `bson:"settings"`
		} `bson:"config"`
	}
	err := s.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "replSetGetConfig", Value: 1}}).Decode(&reply)
	if err != nil || reply.Config.Settings.ReplicaSetID.IsZero() {
		return ""
	}
	return reply.Config.Settings.ReplicaSetID.Hex()
}

// explainConnectError turns the driver's errors into advice.
func explainConnectError(err error) error {
	msg := err.Error()
	if advice := TLSAdvice(err); advice != "" {
		return errors.New(advice)
	}
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

// scrub formats a driver error with every secret of uri removed.
func scrub(err error, uri string) string { return redact.Error(err, uri) }
