package snapshot

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
)

// readRouting reads a cluster's routing metadata from its config server:
// config.databases (each database's primary shard), config.collections
// (shard keys, unique, options), config.chunks (which shard owns which
// shard-key range: a restore drops documents a shard did not own at T),
// config.tags (zones) and config.settings without the balancer's document
// (its state is the snapshot's to change, never a restore's). The balancer
// is stopped meanwhile, so chunks do not move while they are read. A
// collection the config server lacks (a cluster with no sharded
// collection has no config.chunks documents) reads as empty.
func readRouting(ctx context.Context, cfg *source.Source) (repo.Routing, error) {
	var rt repo.Routing
	// The read time is informative only: zero when the clock is unknown.
	rt.Read, _ = cfg.ClockTimestamp(ctx)
	var err error
	for _, c := range []struct {
		name   string
		filter bson.D
		into   *[]bson.Raw
	}{
		{"databases", nil, &rt.Databases},
		{"collections", nil, &rt.Collections},
		{"chunks", nil, &rt.Chunks},
		{"tags", nil, &rt.Tags},
		{"settings", bson.D{{Key: "_id", Value: bson.D{{Key: "$ne", Value: "balancer"}}}}, &rt.Settings},
	} {
		if *c.into, err = readAll(ctx, cfg, c.name, c.filter); err != nil {
			return rt, err
		}
	}
	return rt, nil
}

// readAll reads every document of config.NAME matching filter, raw.
func readAll(ctx context.Context, cfg *source.Source, name string, filter bson.D) ([]bson.Raw, error) {
	if filter == nil {
		filter = bson.D{}
	}
	cur, err := cfg.Client.Database("config").Collection(name).Find(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("read config.%s on the config server: %w", name, explain(err))
	}
	defer cur.Close(context.WithoutCancel(ctx))
	out := []bson.Raw{}
	for cur.Next(ctx) {
		out = append(out, slices.Clone(cur.Current))
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("read config.%s on the config server: %w", name, explain(err))
	}
	return out, nil
}
