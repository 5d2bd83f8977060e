package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
)

// Prepare checks, before any capture starts, that cfg can be backed up:
// it connects to the source (a replica set member or mongos, or the
// shards and config server; connecting checks that the oplog can be
// read), opens the repository, or creates it when the location holds none
// (recording the source, as `rewind init --source` does), and refuses a
// repository of another source (by name, and by the oplog: the source must
// continue the history stored). It writes nothing else and leaves nothing
// connected. created reports a new repository. Errors say what to fix and
// never show a password.
func Prepare(ctx context.Context, cfg config.Config, createdBy string) (created bool, err error) {
	if err := cfg.Validate(); err != nil {
		return false, err
	}
	in := cluster.Inputs{Router: cfg.Source.Reveal(), ConfigServer: cfg.ConfigServer.Reveal()}
	for _, s := range cfg.Shards {
		in.Shards = append(in.Shards, cluster.Shard{Name: s.Name, URI: s.URI.Reveal()})
	}
	d, err := source.OpenDeployment(ctx, in)
	if err != nil {
		return false, err
	}
	defer d.Close(context.WithoutCancel(ctx))
	store, err := storage.Open(ctx, cfg.Repo)
	if err != nil {
		return false, err
	}
	defer store.Close()
	loc := redact.URL(cfg.Repo)
	r, err := repo.Open(ctx, store, repo.OpenOptions{Location: loc})
	if errors.Is(err, repo.ErrNoRepository) {
		rec := d.Record()
		rec.CreatedBy = createdBy
		r, err = repo.Init(ctx, store, repo.InitOptions{Location: loc, Source: rec})
		created = err == nil
	}
	if err != nil {
		return false, err
	}
	if err := d.CheckRepository(r.Config()); err != nil {
		return created, fmt.Errorf("repository %s: %w", loc, err)
	}
	// The oplog tells sources apart where names cannot (FerretDB has none,
	// two replica sets may share one).
	if d.Single != nil {
		err = oplog.CheckContinues(ctx, r, d.Single.Shard(), d.Single)
	}
	for _, m := range d.Members {
		if err == nil {
			err = oplog.CheckContinues(ctx, r, m.Name, m.Source)
		}
	}
	if err != nil {
		return created, fmt.Errorf("repository %s: %w", loc, err)
	}
	return created, nil
}
