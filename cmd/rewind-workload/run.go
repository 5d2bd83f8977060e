package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

type runOptions struct {
	uri       string
	cfg       workload.Config
	kinds     string
	marks     string
	markEvery int
}

func addRunFlags(cmd *cobra.Command, o *runOptions) {
	f := cmd.Flags()
	f.StringVar(&o.uri, "uri", "", "connection string of the deployment to write to (required)")
	f.Uint64Var(&o.cfg.Seed, "seed", 1, "seed: the same seed writes the same operations")
	f.StringVar(&o.cfg.Prefix, "prefix", "wl_", "prefix of every database name the workload writes")
	f.IntVar(&o.cfg.Databases, "databases", 3, "number of databases")
	f.IntVar(&o.cfg.Collections, "collections", 4, "collections per database")
	f.IntVar(&o.cfg.Ops, "ops", 0, "stop after this many operations")
	f.DurationVar(&o.cfg.Duration, "duration", 0, "stop after this long (at a batch boundary)")
	f.Float64Var(&o.cfg.Rate, "rate", 0, "operations per second (0: as fast as possible)")
	f.IntVar(&o.cfg.BatchSize, "batch", 20, "operations per batch (marks are taken between batches)")
	f.IntVar(&o.cfg.LargeEvery, "large-every", 200, "one insert or replacement in N carries a large value (0: never)")
	f.IntVar(&o.cfg.LargeSize, "large-size", 900<<10, "size of the large value in bytes")
	f.StringVar(&o.kinds, "kinds", "auto", "value kinds: auto (what the server accepts), all, or ferretdb")
	f.StringVar(&o.marks, "marks", "", "write marks to this JSON file")
	f.IntVar(&o.markEvery, "mark-every", 10, "record a mark every N batches")
}

func connect(ctx context.Context, uri string) (*mongo.Client, error) {
	if uri == "" {
		return nil, usagef("--uri is required, for example --uri 'mongodb://127.0.0.1:27017/?directConnection=true'")
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", uri, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := client.Ping(pctx, nil); err != nil {
		disconnect(client)
		return nil, fmt.Errorf("connect to %s: %w (is the server running?)", uri, err)
	}
	return client, nil
}

// disconnect closes client, waiting at most 10 s for a server that went away.
func disconnect(client *mongo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = client.Disconnect(ctx)
}

func runWorkload(ctx context.Context, out io.Writer, o runOptions) error {
	if o.cfg.Ops <= 0 && o.cfg.Duration <= 0 {
		return usagef("set --ops or --duration, or the workload never ends")
	}
	client, err := connect(ctx, o.uri)
	if err != nil {
		return err
	}
	defer disconnect(client)
	if o.cfg.Kinds, err = kinds(ctx, client, o.kinds); err != nil {
		return err
	}

	var onBatch workload.OnBatch
	rec := &oracle.Recorder{Client: client, Every: o.markEvery,
		Filter: oracle.Filter{Include: workload.Databases(o.cfg)}}
	if o.marks != "" {
		onBatch = rec.OnBatch
	}
	st, err := workload.Run(ctx, client, o.cfg, onBatch)
	interrupted := errors.Is(err, context.Canceled)
	if err != nil && !interrupted {
		return err
	}
	fmt.Fprintf(out, "%d operations (%d inserts, %d updates, %d replacements, %d deletes), %.1f MB written in %s: %.0f ops/s\n",
		st.Ops, st.Inserts, st.Updates, st.Replaces, st.Deletes, float64(st.Bytes)/1e6,
		st.Elapsed.Round(time.Millisecond), float64(st.Ops)/st.Elapsed.Seconds())
	if o.marks == "" {
		return nil
	}
	if !interrupted && (len(rec.Marks) == 0 || rec.Marks[len(rec.Marks)-1].Ops != st.Ops) {
		b := workload.Batch{N: st.Batches, Ops: st.Ops, Writes: st.Writes()}
		if _, err := rec.Record(ctx, b); err != nil {
			return err
		}
	}
	if err := oracle.SaveMarks(o.marks, rec.Marks); err != nil {
		return err
	}
	for _, m := range rec.Marks {
		fmt.Fprintf(out, "mark %d: ts %s, after %d operations\n", m.N, m.TS, m.Ops)
	}
	fmt.Fprintf(out, "%d marks written to %s\n", len(rec.Marks), o.marks)
	return nil
}

// kinds resolves --kinds; "auto" asks the server whether it is FerretDB,
// which refuses some types (the list lives in the test harness).
func kinds(ctx context.Context, client *mongo.Client, name string) (workload.Kinds, error) {
	switch name {
	case "all":
		return workload.AllKinds, nil
	case "ferretdb":
		return testserver.FerretDBKinds, nil
	case "auto":
		raw, err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Raw()
		if err != nil {
			return 0, fmt.Errorf("ask the server its version: %w", err)
		}
		if _, err := raw.LookupErr("ferretdbVersion"); err == nil {
			return testserver.FerretDBKinds, nil
		}
		return workload.AllKinds, nil
	}
	return 0, usagef("--kinds %q: want auto, all or ferretdb", name)
}
