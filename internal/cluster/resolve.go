package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/redact"
)

// Inputs are the ways an operator names a cluster: a mongos (Router), the
// shards by hand (Shards, with the config server's URI or none), or the
// config server alone (its config.shards lists the shards).
type Inputs struct {
	Router       string
	Shards       []Shard
	ConfigServer string
}

// Resolve finds the cluster's topology from the inputs: through mongos
// (listShards, getShardMap), as given, or from the config server. It
// connects to mongos or the config server for as long as it asks them;
// errors never show a password.
func Resolve(ctx context.Context, in Inputs) (Topology, error) {
	switch {
	case len(in.Shards) > 0:
		return Explicit(in.Shards, in.ConfigServer)
	case in.Router != "":
		return withClient(ctx, in.Router, "mongos", func(c *mongo.Client) (Topology, error) { return Discover(ctx, c, in.Router) })
	case in.ConfigServer != "":
		return withClient(ctx, in.ConfigServer, "the config server", func(c *mongo.Client) (Topology, error) {
			return FromConfigServer(ctx, c, in.ConfigServer)
		})
	}
	return Topology{}, errors.New("no cluster given: give --source with a mongos URI, --shard NAME=URI, or --config-server URI")
}

// Client opens a client to a cluster's mongos or config server, with the
// same bounded server selection as a source. The caller disconnects it.
func Client(uri string) (*mongo.Client, error) {
	opts := options.Client().ApplyURI(uri).SetAppName("rewind")
	if opts.ServerSelectionTimeout == nil {
		opts.SetServerSelectionTimeout(10 * time.Second)
	}
	c, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %s", redact.URL(uri), redact.Error(err, uri))
	}
	return c, nil
}

func withClient(ctx context.Context, uri, what string, f func(*mongo.Client) (Topology, error)) (Topology, error) {
	c, err := Client(uri)
	if err != nil {
		return Topology{}, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = c.Disconnect(dctx)
	}()
	t, err := f(c)
	if err != nil {
		return Topology{}, fmt.Errorf("find the cluster's shards through %s %s: %s", what, redact.URL(uri), redact.Error(err, uri))
	}
	return t, nil
}
