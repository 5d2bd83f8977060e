package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/storage"
)

// prepareTimeout bounds POST's and PATCH's checks of the source and the
// repository.
const prepareTimeout = 30 * time.Second

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	ds := s.sorted()
	out := make([]DeploymentView, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() { out[i] = s.viewOf(r.Context(), d) })
	}
	wg.Wait()
	api.WriteData(w, http.StatusOK, out)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	d := s.found(w, r)
	if d != nil {
		api.WriteData(w, http.StatusOK, s.viewOf(r.Context(), d))
	}
}

// found returns the deployment the path names, or answers 404.
func (s *Server) found(w http.ResponseWriter, r *http.Request) *deployment {
	d := s.find(r.PathValue("name"))
	if d == nil {
		api.WriteError(w, http.StatusNotFound, api.CodeNotFound, "no deployment %q: GET /api/v1/deployments lists them", r.PathValue("name"))
	}
	return d
}

// create is POST /api/v1/deployments: the body is one deployment as the
// file's deployments: entries write it, in JSON. It is checked (the
// source is connected and its oplog read, the repository opened or
// created and checked to be this source's) before anything is saved or
// started.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	spec, err := s.defaults().ParseDeployment(body)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, "%s; nothing was saved (see docs/API.md)", oneLine(err))
		return
	}
	if msg := s.clash(spec, ""); msg != "" {
		api.WriteError(w, http.StatusConflict, api.CodeConflict, "%s; nothing was saved", msg)
		return
	}
	if !s.prepare(w, r, spec) {
		return
	}
	docs := []json.RawMessage{body}
	if pin := pinRepo(body, spec); pin != nil {
		docs = append(docs, pin)
	}
	s.mu.Lock()
	d, err := s.addLocked(spec, docs)
	s.mu.Unlock()
	switch {
	case err == errClash:
		api.WriteError(w, http.StatusConflict, api.CodeConflict, "%s; nothing was saved", s.clash(spec, ""))
	case err != nil:
		api.WriteInternal(w, s.Log, "%v; the deployment was not added", err)
	default:
		s.Log.Info("deployment added over the API", "deployment", spec.Name, "repo", redact.URL(spec.Config.Repo))
		api.WriteData(w, http.StatusCreated, s.viewOf(r.Context(), d))
	}
}

// errClash: another request took the name or the repository meanwhile.
var errClash = errors.New("clash")

// addLocked saves and starts an API deployment, unless its name or
// repository was taken since it was checked.
func (s *Server) addLocked(spec config.Deployment, docs []json.RawMessage) (*deployment, error) {
	if s.clashLocked(spec, "") != "" {
		return nil, errClash
	}
	if err := s.saveLocked(spec.Name, docs); err != nil {
		return nil, err
	}
	s.startLocked(spec, OriginAPI, docs)
	return s.deps[spec.Name], nil
}

// patch is PATCH /api/v1/deployments/{name}: the body's keys replace the
// deployment's; it is checked as POST checks, then the deployment
// restarts (the others never do).
func (s *Server) patch(w http.ResponseWriter, r *http.Request) {
	d := s.found(w, r)
	if d == nil || !s.writable(w, d) {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	spec, err := s.defaults().PatchDeployment(d.spec, body)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, "%s; nothing was changed", oneLine(err))
		return
	}
	if msg := s.clash(spec, d.spec.Name); msg != "" {
		api.WriteError(w, http.StatusConflict, api.CodeConflict, "%s; nothing was changed", msg)
		return
	}
	if !s.prepare(w, r, spec) {
		return
	}
	docs := append(append([]json.RawMessage{}, d.docs...), body)
	s.mu.Lock()
	if s.deps[spec.Name] != d {
		s.mu.Unlock()
		api.WriteError(w, http.StatusConflict, api.CodeConflict, "deployment %q changed meanwhile; read it again and retry", spec.Name)
		return
	}
	if err := s.saveLocked(spec.Name, docs); err != nil {
		s.mu.Unlock()
		api.WriteInternal(w, s.Log, "%v; nothing was changed", err)
		return
	}
	s.removeLocked(spec.Name)
	s.mu.Unlock()
	d.stop() // (its repository is released before the new agent asks for it)
	s.mu.Lock()
	if _, ok := s.deps[spec.Name]; !ok { // (the state file's sync may have started it meanwhile)
		s.startLocked(spec, OriginAPI, docs)
	}
	nd := s.deps[spec.Name]
	s.mu.Unlock()
	s.Log.Info("deployment changed over the API", "deployment", spec.Name)
	api.WriteData(w, http.StatusOK, s.viewOf(r.Context(), nd))
}

// remove is DELETE /api/v1/deployments/{name}: capture stops (what was
// read is flushed first) and the repository, with every backup in it,
// stays.
func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	d := s.found(w, r)
	if d == nil || !s.writable(w, d) {
		return
	}
	s.mu.Lock()
	if s.deps[d.spec.Name] != d {
		s.mu.Unlock()
		api.WriteError(w, http.StatusNotFound, api.CodeNotFound, "deployment %q was removed meanwhile", d.spec.Name)
		return
	}
	if err := s.saveLocked(d.spec.Name, nil); err != nil {
		s.mu.Unlock()
		api.WriteInternal(w, s.Log, "%v; the deployment was not removed", err)
		return
	}
	s.removeLocked(d.spec.Name)
	s.mu.Unlock()
	d.stop()
	s.Log.Info("deployment removed over the API; its repository is kept", "deployment", d.spec.Name)
	api.WriteData(w, http.StatusOK, map[string]any{"name": d.spec.Name, "stopped": true, "repo": redact.URL(d.spec.Config.Repo),
		"backups": "kept: the repository is untouched; restore from it with rewind restore --repo"})
}

// writable answers 409 for a deployment declared in the file.
func (s *Server) writable(w http.ResponseWriter, d *deployment) bool {
	if d.origin == OriginFile {
		api.WriteError(w, http.StatusConflict, api.CodeConflict,
			"deployment %q is declared in %s: change it there and reload (SIGHUP or POST /-/reload); the API changes only the deployments it added", d.spec.Name, s.Path)
		return false
	}
	return true
}

// prepare runs the agent's checks for spec, answering 400 when they fail.
func (s *Server) prepare(w http.ResponseWriter, r *http.Request, spec config.Deployment) bool {
	ctx, cancel := context.WithTimeout(r.Context(), prepareTimeout)
	defer cancel()
	host, _ := os.Hostname()
	if _, err := agent.Prepare(ctx, spec.Config, fmt.Sprintf("rewind %s server on %s", s.Version, host)); err != nil {
		api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, "deployment %q cannot be backed up: %s; nothing was saved", spec.Name, oneLine(err))
		return false
	}
	return true
}

// clash says why spec cannot join the deployments (a name or repository
// taken), "" when it can; self is the name of the deployment spec
// replaces, if any.
func (s *Server) clash(spec config.Deployment, self string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clashLocked(spec, self)
}

func (s *Server) clashLocked(spec config.Deployment, self string) string {
	for name, d := range s.deps {
		switch {
		case name == self:
		case name == spec.Name:
			return fmt.Sprintf("a deployment named %q exists already (origin %s): choose another name", name, d.origin)
		case storage.Canonical(d.spec.Config.Repo) == storage.Canonical(spec.Config.Repo):
			return fmt.Sprintf("deployment %q backs up into that repository already: give each deployment a repository of its own", name)
		}
	}
	return ""
}

// saveLocked writes name's docs to the state file (nil docs: removes it).
func (s *Server) saveLocked(name string, docs []json.RawMessage) error {
	return updateState(s.stateDir, name, docs)
}

// defaults is the server configuration deployments are parsed over.
func (s *Server) defaults() config.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// pinRepo is the doc that keeps a deployment in the repository it was
// given under repo_prefix, nil when the body named its own: a later
// change of the prefix must not move it to an empty repository.
func pinRepo(body []byte, spec config.Deployment) json.RawMessage {
	var keys map[string]json.RawMessage
	if json.Unmarshal(body, &keys) != nil {
		return nil
	}
	if _, ok := keys["repo"]; ok {
		return nil
	}
	pin, _ := json.Marshal(map[string]string{"repo": spec.Config.Repo})
	return pin
}

// readBody reads a request body of one JSON object (at most 1 MiB).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err == nil {
		var probe map[string]json.RawMessage
		if jerr := json.Unmarshal(body, &probe); jerr != nil {
			err = fmt.Errorf("want one JSON object: %v", jerr)
		}
	}
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, "read request body: %v (see docs/API.md)", err)
		return nil, false
	}
	return body, true
}

// oneLine joins a multi-problem error's lines.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
