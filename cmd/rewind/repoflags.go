package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"filippo.io/age"
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

// repoFlags are the repository inputs of a command: --repo, and --identity
// for the commands that read encrypted data (snapshot manifests, chunks
// and segments: list, verify, prune, restore). The others have no
// --identity flag at all.
type repoFlags struct {
	repo, identity *input
	// fileRepo and fileIdentity are the config file's values, for the
	// commands that take --config; "" otherwise.
	fileRepo, fileIdentity string

	url string         // the resolved repository URL, set by require
	ids []age.Identity // the loaded identity, set by require
}

// add adds --repo.
func (f *repoFlags) add(cmd *cobra.Command) {
	f.repo = repoInput.bind(cmd, "repository URL (file://, s3://, gs://, azblob:// or a directory)")
}

// addIdentity adds --identity: the command reads encrypted data.
func (f *repoFlags) addIdentity(cmd *cobra.Command) {
	f.identity = identityInput.bind(cmd, "age identity that decrypts the repository: a file path (the variable may also hold the key itself)")
}

// require resolves the repository URL (a usage error when there is none,
// or when it is not a form rewind opens) and loads the identity, when the
// command takes one: a missing or unreadable identity file is bad input
// too, refused before anything is read.
func (f *repoFlags) require(cmd *cobra.Command) error {
	var from origin
	if f.url, from = f.repo.resolve(cmd, f.fileRepo); f.url == "" {
		return usagef(cmd, "--repo is required (or set REWIND_REPO)")
	}
	if err := storage.CheckURL(f.url); err != nil {
		return usagef(cmd, "%s: %v", from.describe("repo"), err)
	}
	if f.identity == nil {
		return nil
	}
	var err error
	f.ids, _, _, err = loadIdentity(cmd, f.identity, f.fileIdentity)
	return err
}

// loadIdentity resolves an --identity input and loads it, returning the
// value and where it came from. A value that names no readable identity is
// a usage error that says where it came from.
func loadIdentity(cmd *cobra.Command, in *input, fromConfig string) ([]age.Identity, string, origin, error) {
	v, from := in.resolve(cmd, fromConfig)
	ids, err := repo.ParseIdentity(v)
	if err != nil {
		return nil, v, from, &usageError{fmt.Errorf("%w (given by %s)", err, from.describe("identity"))}
	}
	return ids, v, from, nil
}

// openedRepo is a repository and the store under it, closed together.
type openedRepo struct {
	*repo.Repository
	store storage.Store
}

func (o *openedRepo) Close() error { return o.store.Close() }

// open opens the repository resolved by require. A command that reads
// encrypted data (it has --identity) is refused at once on an encrypted
// repository when no identity was given, with what to do.
func (f *repoFlags) open(ctx context.Context) (*openedRepo, error) {
	store, err := storage.Open(ctx, f.url)
	if err != nil {
		return nil, err
	}
	loc := redact.URL(f.url)
	r, err := repo.Open(ctx, store, repo.OpenOptions{Location: loc, Identities: f.ids})
	if err != nil {
		store.Close()
		return nil, err
	}
	if f.identity != nil && r.Config().Encrypted() && len(f.ids) == 0 {
		store.Close()
		return nil, fmt.Errorf("the repository at %s is encrypted and this command reads its data: give its identity with --identity FILE or set %s (a file path or the key itself): %w",
			loc, identityInput.env, repo.ErrNeedIdentity)
	}
	return &openedRepo{Repository: r, store: store}, nil
}
