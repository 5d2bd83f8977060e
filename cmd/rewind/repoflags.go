package main

import (
	"context"
	"encoding/json"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// printJSON writes v as indented JSON, the form every --json flag prints.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// repoFlags are the flags of every command that reads a repository.
type repoFlags struct {
	url      string
	identity string
}

func (f *repoFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "repo", os.Getenv("REWIND_REPO"), "repository URL (file://, s3://, gs://, azblob:// or a directory); default $REWIND_REPO")
	cmd.Flags().StringVar(&f.identity, "identity", "", "age identity file, needed to read an encrypted repository; default $REWIND_IDENTITY (a file path or the key itself)")
}

func (f *repoFlags) require(cmd *cobra.Command) error {
	if f.url == "" {
		return usagef(cmd, "--repo is required (or set REWIND_REPO)")
	}
	return nil
}

// openedRepo is a repository and the store under it, closed together.
type openedRepo struct {
	*repo.Repository
	store storage.Store
}

func (o *openedRepo) Close() error { return o.store.Close() }

// open opens the repository; withIdentity loads the identity so encrypted
// data can be read.
func (f *repoFlags) open(ctx context.Context, withIdentity bool) (*openedRepo, error) {
	store, err := storage.Open(ctx, f.url)
	if err != nil {
		return nil, err
	}
	opts := repo.OpenOptions{Location: redact.URL(f.url)}
	if withIdentity {
		if opts.Identities, err = repo.ResolveIdentities(f.identity); err != nil {
			store.Close()
			return nil, err
		}
	}
	r, err := repo.Open(ctx, store, opts)
	if err != nil {
		store.Close()
		return nil, err
	}
	return &openedRepo{Repository: r, store: store}, nil
}
