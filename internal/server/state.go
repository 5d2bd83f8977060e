package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"
)

// stateFile holds the deployments added over the API, in state_dir. Each
// is kept as the request bodies it was made of (POST, then every PATCH),
// replayed over the file's defaults at start: a default changed in the
// file reaches them too. The bodies hold connection strings with their
// credentials: the file is written with mode 0600 in a 0700 directory.
const stateFile = "deployments.json"

// stored is one API deployment in the state file.
type stored struct {
	Name string            `json:"name"`
	Docs []json.RawMessage `json:"docs"`
}

type stateFileBody struct {
	Deployments []stored `json:"deployments"`
}

// loadState reads the API deployments; a missing file is none.
func loadState(dir string) ([]stored, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read server state: %w", err)
	}
	var b stateFileBody
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("read server state %s: %w; fix or remove the file (it lists the deployments added over the API)",
			filepath.Join(dir, stateFile), err)
	}
	return b.Deployments, nil
}

// updateState sets name's docs in the state file (nil docs: removes it),
// under a file lock, reading the file first: several servers may share
// one state_dir (one host, or a shared volume), and each writes only its
// own change.
func updateState(dir, name string, docs []json.RawMessage) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save server state: %w", err)
	}
	lock := flock.New(filepath.Join(dir, stateFile+".lock"))
	if err := lock.Lock(); err != nil {
		return fmt.Errorf("save server state: lock %s: %w", dir, err)
	}
	defer lock.Unlock()
	kept, err := loadState(dir)
	if err != nil {
		return err
	}
	out := make([]stored, 0, len(kept)+1)
	for _, k := range kept {
		if k.Name != name {
			out = append(out, k)
		}
	}
	if docs != nil {
		out = append(out, stored{Name: name, Docs: docs})
	}
	return saveState(dir, out)
}

// saveState replaces the state file atomically (write, sync, rename).
func saveState(dir string, ds []stored) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save server state: %w", err)
	}
	data, err := json.MarshalIndent(stateFileBody{Deployments: ds}, "", "  ")
	if err != nil {
		return fmt.Errorf("save server state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, stateFile+".*")
	if err != nil {
		return fmt.Errorf("save server state: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, stateFile))
	}
	if err != nil {
		return fmt.Errorf("save server state: %w", err)
	}
	return nil
}
