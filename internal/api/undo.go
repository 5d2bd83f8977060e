package api

import (
	"context"
	"encoding/json"
	"net/http"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/browse"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
)

// UndoRequest is the body of POST /api/v1/undos: the options of `rewind
// undo`, checked by restore.UndoRequest.Validate as the CLI's are.
type UndoRequest struct {
	Target         string   `json:"target"`          // connection string of the deployment to undo in; required, also for a dry run (it stages there)
	From           string   `json:"from"`            // the state to put back, exclusive start: RFC 3339 time (that whole second) or SECONDS:INCREMENT
	To             string   `json:"to"`              // inclusive end: RFC 3339 time, SECONDS:INCREMENT or "latest"
	NS             []string `json:"ns"`              // db, db.* or db.coll; required
	Filter         Filter   `json:"filter"`          // undo only the documents that match as of from (an inserted one: as of to)
	DryRun         bool     `json:"dry_run"`         // say what would change; write only the staging
	Force          bool     `json:"force"`           // put back the documents changed since to (conflicts) as well
	Parallel       int      `json:"parallel"`        // snapshot objects loaded at once while staging; 0 or left out: 4
	ConnectTimeout string   `json:"connect_timeout"` // a positive duration; left out: 30s
}

// request turns the body into a validated undo request.
func (in UndoRequest) request() (restore.UndoRequest, error) {
	req := restore.UndoRequest{Target: in.Target, Include: in.NS, Filter: string(in.Filter), DryRun: in.DryRun,
		Force: in.Force, Parallel: in.Parallel}
	var err error
	if in.From != "" {
		if req.From, err = restore.ParseFrom(in.From); err != nil {
			return req, err
		}
	}
	if req.To, req.ConnectTimeout, err = toAndTimeout(in.To, in.ConnectTimeout); err != nil {
		return req, err
	}
	return req, req.Validate()
}

// UndoCounts count the documents an undo looked at (restore.UndoCounts):
// every document the range changed (and filter selected) is in exactly
// one of restored, reinserted, deleted, unchanged, conflicts_left and
// conflicts_forced.
type UndoCounts struct {
	Changed         int64 `json:"changed"`          // documents the range changed, selected by filter
	Restored        int64 `json:"restored"`         // replaced by their version at from
	Reinserted      int64 `json:"reinserted"`       // inserted as they were at from (the range deleted them)
	Deleted         int64 `json:"deleted"`          // deleted (the range inserted them)
	Unchanged       int64 `json:"unchanged"`        // nothing to do
	ConflictsLeft   int64 `json:"conflicts_left"`   // changed since to: left alone
	ConflictsForced int64 `json:"conflicts_forced"` // changed since to: put back (force)
	NotSelected     int64 `json:"not_selected"`     // changed by the range, not selected by filter
	Written         int64 `json:"written"`          // documents written (a dry run: that would be)
}

func undoCounts(c restore.UndoCounts) UndoCounts {
	return UndoCounts{Changed: c.Changed, Restored: c.Restored, Reinserted: c.Reinserted, Deleted: c.Deleted,
		Unchanged: c.Unchanged, ConflictsLeft: c.ConflictsLeft, ConflictsForced: c.ConflictsForced,
		NotSelected: c.NotSelected, Written: c.Written()}
}

// UndoNamespace is what an undo did (would do) in one namespace.
type UndoNamespace struct {
	Namespace string `json:"namespace"`
	UndoCounts
	Recreated bool `json:"recreated"` // the range dropped the collection: it is created as it was at from
	// Sample is the first _ids written (would be), Conflicts the first
	// conflicts, at most restore.UndoSample each, as canonical Extended JSON.
	Sample    []json.RawMessage `json:"sample"`
	Conflicts []json.RawMessage `json:"conflicts"`
}

// UndoResult is an undo job's result (restore.UndoReport).
type UndoResult struct {
	From    *TS   `json:"from"` // the range (from, to]
	To      *TS   `json:"to"`
	Entries int64 `json:"entries"` // oplog entries in the range, every namespace
	DryRun  bool  `json:"dry_run"`
	Force   bool  `json:"force"`
	// Filter is the request's filter as canonical Extended JSON.
	Filter json.RawMessage `json:"filter,omitempty"`
	UndoCounts
	Namespaces []UndoNamespace `json:"namespaces"`
	Notes      []string        `json:"notes"` // what the range did that an undo leaves as it is
	Seconds    float64         `json:"seconds"`
	Phases     []PhaseTime     `json:"phases"`
}

func undoResult(rep restore.UndoReport) UndoResult {
	out := UndoResult{From: toTS(rep.From), To: toTS(rep.To), Entries: rep.Entries, DryRun: rep.DryRun, Force: rep.Force,
		UndoCounts: undoCounts(rep.UndoCounts), Namespaces: []UndoNamespace{}, Notes: nonNil(rep.Notes),
		Seconds: rep.Duration.Seconds(), Phases: []PhaseTime{}}
	if rep.Filter != nil {
		out.Filter = json.RawMessage(browse.DocJSON(rep.Filter))
	}
	for _, n := range rep.Namespaces {
		out.Namespaces = append(out.Namespaces, UndoNamespace{Namespace: n.Namespace.String(), UndoCounts: undoCounts(n.UndoCounts),
			Recreated: n.Recreated, Sample: idsJSON(n.Sample), Conflicts: idsJSON(n.Conflicts)})
	}
	for _, ph := range rep.Phases {
		out.Phases = append(out.Phases, PhaseTime{Name: ph.Name, Seconds: ph.Duration.Seconds()})
	}
	return out
}

func idsJSON(ids []bson.RawValue) []json.RawMessage {
	out := make([]json.RawMessage, len(ids))
	for i, id := range ids {
		out[i] = json.RawMessage(browse.ValueJSON(id))
	}
	return out
}

// startUndo plans the undo at once (so a bad range, or a namespace the
// range does not hold, is answered now), then runs it, or its dry run, as
// a job that keeps the plan's lock.
func (s *Server) startUndo(w http.ResponseWriter, r *http.Request) {
	req, u, ok := prepare[UndoRequest](s, w, r, "plan undo", restore.PrepareUndo)
	if !ok {
		return
	}
	j := s.targetJob(repo.ActorFrom(r.Context()), "undo", req.Target, req.ConnectTimeout, u.Release, nil,
		func(ctx context.Context, t *restore.Target, o restore.Options) (any, error) {
			rep, err := u.Execute(ctx, t, o)
			if err != nil {
				return nil, err
			}
			return undoResult(rep), nil
		})
	s.d.Log.Info("api: undo requested", "job", j.ID, "dry_run", req.DryRun, "from", req.From.String(), "to", req.To.String())
	WriteData(w, http.StatusAccepted, j)
}
