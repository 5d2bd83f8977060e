package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rewind-backup/rewind/internal/checksum"
	"github.com/rewind-backup/rewind/internal/restore"
)

// RestoreRequest is the body of POST /api/v1/restores: the options of
// `rewind restore`, checked by restore.Request.Validate as the CLI's are.
type RestoreRequest struct {
	Target            string   `json:"target"`               // connection string; required unless dry_run
	To                string   `json:"to"`                   // RFC 3339 time, SECONDS:INCREMENT or "latest"
	NS                []string `json:"ns"`                   // db, db.* or db.coll; empty: all
	Rename            Renames  `json:"rename"`               // FROM -> TO; a FROM given twice is refused
	Drop              bool     `json:"drop"`                 // drop and re-create target namespaces in the way
	WithUsersAndRoles bool     `json:"with_users_and_roles"` // also restore users and roles
	Parallel          int      `json:"parallel"`             // chunks loaded at once; 0 or left out: 4
	DryRun            bool     `json:"dry_run"`              // plan (and check the target, when given) only
	ConnectTimeout    string   `json:"connect_timeout"`      // a positive duration (30s, 2m); left out: 30s
	Checksum          bool     `json:"checksum"`             // content checksums of the restored collections in the result
}

// Renames is the "rename" object, FROM -> TO. Decoding it refuses a FROM
// given twice (JSON decoders would keep the last), as --rename does.
type Renames map[string]string

// UnmarshalJSON implements json.Unmarshaler.
func (r *Renames) UnmarshalJSON(b []byte) error {
	var pairs []restore.RenamePair
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok == nil {
		*r = nil // null
		return err
	} else if tok != json.Delim('{') {
		return errors.New(`rename: want an object {"FROM": "TO"}`)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return err
		}
		var to string
		if err := dec.Decode(&to); err != nil {
			return fmt.Errorf("rename %q: want a string: %w", key, err)
		}
		pairs = append(pairs, restore.RenamePair{From: key.(string), To: to})
	}
	m, err := restore.Renames(pairs)
	var inv *restore.InvalidError
	if errors.As(err, &inv) {
		return errors.New(inv.API())
	}
	*r = m
	return err
}

// PlanView is a restore plan: what a dry run answers and a restore job shows.
type PlanView struct {
	RestorePoint string      `json:"restore_point"`
	Target       *TS         `json:"target"`
	Snapshot     string      `json:"snapshot"`
	ReplayFrom   *TS         `json:"replay_from"`
	Timeline     string      `json:"timeline"`
	Segments     int         `json:"segments"`
	SegmentBytes int64       `json:"segment_bytes"`
	Chunks       int         `json:"chunks"`
	ChunkBytes   int64       `json:"chunk_bytes"`
	Documents    int64       `json:"documents"`
	Entries      *int64      `json:"entries,omitempty"` // oplog entries to replay
	Namespaces   []NSMapping `json:"namespaces"`
	// Note says why Namespaces is empty: the deployment held no collection
	// or view at the restore point (a new deployment's base snapshot before
	// its first write). Such a restore succeeds and creates nothing.
	Note string `json:"note,omitempty"`
	// TargetCheck is what a dry run with a target found there: the verdict
	// the restore itself would reach.
	TargetCheck *TargetCheck `json:"target_check,omitempty"`
}

// NSMapping is one source namespace and where it goes.
type NSMapping struct {
	Source    string `json:"source"`
	Target    string `json:"target"`
	Documents int64  `json:"documents"`
	View      bool   `json:"view,omitempty"`
	// Late: the snapshot does not hold it; the oplog range creates or writes it.
	Late bool `json:"late,omitempty"`
}

// TargetCheck is the dry run's look at the target (restore.Check).
type TargetCheck struct {
	Verdict  string     `json:"verdict"`
	Refused  bool       `json:"refused"` // the restore would refuse (something in the way, no drop)
	InTheWay []InTheWay `json:"in_the_way"`
}

// InTheWay is one target namespace in the way and why.
type InTheWay struct {
	Namespace string   `json:"namespace"`
	Reasons   []string `json:"reasons"`
}

// RestoreResult is a finished restore.
type RestoreResult struct {
	Snapshot    string      `json:"snapshot"`
	LastApplied *TS         `json:"last_applied"`
	Documents   int64       `json:"documents"`
	Entries     int64       `json:"entries"`
	Bytes       int64       `json:"bytes"`
	Seconds     float64     `json:"seconds"`
	Indexes     int         `json:"indexes"`
	Namespaces  []NSMapping `json:"namespaces"`
	Note        string      `json:"note,omitempty"` // as the plan's: why Namespaces is empty
	// Phases is how long each step took, in order (check, create, load,
	// replay, indexes, users, count, and checksum when asked).
	Phases []PhaseTime `json:"phases"`
	// Checksums are the restored collections' content checksums, by
	// namespace, when the request asked for them ("checksum": true).
	Checksums []checksum.Sum `json:"checksums,omitempty"`
}

// PhaseTime is one step of a restore and its duration.
type PhaseTime struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// RestoreProgress is a restore job's progress.
type RestoreProgress struct {
	Summary string `json:"summary"`
}

// restoreJob is a running restore job's answer: the job plus its plan.
type restoreJob struct {
	Job
	Plan PlanView `json:"plan"`
}

// request turns the body into a validated restore request; errors are the
// field's own message in the API's words.
func (in RestoreRequest) request() (restore.Request, error) {
	req := restore.Request{Target: in.Target, Include: in.NS, Rename: in.Rename, Drop: in.Drop,
		WithUsersAndRoles: in.WithUsersAndRoles, Parallel: in.Parallel, DryRun: in.DryRun, Checksum: in.Checksum}
	var err error
	if in.To != "" {
		if req.To, err = restore.ParseWhen(in.To); err != nil {
			return req, err
		}
	}
	if in.ConnectTimeout != "" {
		if req.ConnectTimeout, err = restore.ParseConnectTimeout(in.ConnectTimeout); err != nil {
			return req, err
		}
	}
	return req, req.Validate()
}

// startRestore plans at once (so a bad restore point is answered now), then
// answers a dry run with the plan (and what is in the way on the target) or
// starts the restore as a job, which keeps the plan's lock.
func (s *Server) startRestore(w http.ResponseWriter, r *http.Request) {
	var in RestoreRequest
	if !decodeBody(w, r, &in) {
		return
	}
	req, err := in.request()
	var inv *restore.InvalidError
	if errors.As(err, &inv) {
		writeError(w, http.StatusBadRequest, codeBadRequest, "%s", inv.API())
		return
	} else if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "%v", err)
		return
	}
	// The plan's lock outlives this request when a job carries it on.
	p, err := restore.Prepare(s.jobContext(), s.d.Repo, req)
	switch {
	case errors.Is(err, restore.ErrNoLock):
		s.storageError(w, "plan the restore", err)
		return
	case errors.Is(err, restore.ErrOutsideWindows):
		writeError(w, http.StatusUnprocessableEntity, codeNotRestorable, "%v; GET /api/v1/timeline shows the windows", err)
		return
	case errors.As(err, &inv): // an ns or rename name the restore point cannot satisfy
		writeError(w, http.StatusUnprocessableEntity, codeNotRestorable, "plan restore: %s", inv.API())
		return
	case err != nil:
		writeError(w, http.StatusUnprocessableEntity, codeNotRestorable, "%v", err)
		return
	}
	view := planView(p.Plan)
	if req.DryRun {
		defer p.Release()
		if req.Target != "" {
			if view.TargetCheck, err = s.checkTarget(r.Context(), p); err != nil {
				writeError(w, http.StatusBadGateway, codeUnavailable, "%v", err)
				return
			}
		}
		writeData(w, http.StatusOK, view)
		return
	}
	j := s.runRestore(p)
	writeData(w, http.StatusAccepted, restoreJob{Job: j, Plan: view})
}

// checkTarget is a dry run's look at the target.
func (s *Server) checkTarget(ctx context.Context, p *restore.Prepared) (*TargetCheck, error) {
	t, err := restore.Connect(ctx, p.Request.Target, p.Request.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	defer t.Close(ctx)
	findings, err := p.Check(ctx, t)
	if err != nil {
		return nil, err
	}
	tc := &TargetCheck{Verdict: restore.Verdict(findings, p.Request.Drop), Refused: len(findings) > 0 && !p.Request.Drop,
		InTheWay: []InTheWay{}}
	for _, f := range findings {
		tc.InTheWay = append(tc.InTheWay, InTheWay{Namespace: f.Target.String(), Reasons: f.Reasons})
	}
	return tc, nil
}

// runRestore starts the restore job; it owns p and releases it.
func (s *Server) runRestore(p *restore.Prepared) Job {
	prog := &restore.Progress{}
	var executing atomic.Bool // Progress.Line is meaningless before Execute starts it
	progress := func() any {
		if !executing.Load() {
			return RestoreProgress{Summary: "connecting to the target"}
		}
		return RestoreProgress{Summary: strings.TrimSpace(prog.Line())}
	}
	return s.jobs.start(s.jobContext(), s.d.Log, "restore", progress, func(ctx context.Context) (any, error) {
		defer p.Release()
		started := time.Now()
		rep, err := s.execute(ctx, p, prog, &executing)
		s.metrics.observeRestore(time.Since(started), err)
		if err != nil {
			return nil, err
		}
		return restoreResult(rep), nil
	})
}

func (s *Server) execute(ctx context.Context, p *restore.Prepared, prog *restore.Progress, executing *atomic.Bool) (restore.Report, error) {
	t, err := restore.Connect(ctx, p.Request.Target, p.Request.ConnectTimeout)
	if err != nil {
		return restore.Report{}, err
	}
	defer t.Close(ctx)
	executing.Store(true)
	return p.Execute(ctx, t, restore.Options{Progress: prog, Log: s.d.Log})
}

func (s *Server) getRestore(w http.ResponseWriter, r *http.Request) {
	j, ok := s.jobs.get(r.PathValue("id"))
	if !ok || j.Kind != "restore" {
		writeError(w, http.StatusNotFound, codeNotFound, "no restore %q: GET /api/v1/jobs lists the jobs", r.PathValue("id"))
		return
	}
	writeData(w, http.StatusOK, j)
}

func planView(p restore.Plan) PlanView {
	entries := p.Entries
	v := PlanView{RestorePoint: p.Request.String(), Target: toTS(p.Target), Snapshot: p.Snapshot.ID,
		ReplayFrom: toTS(p.ReplayFrom), Timeline: p.Window.Timeline, Segments: len(p.Segments),
		SegmentBytes: p.SegmentBytes, Chunks: p.Chunks, ChunkBytes: p.ChunkBytes, Documents: p.Documents,
		Entries: &entries, Namespaces: []NSMapping{}}
	for _, c := range p.Collections {
		v.Namespaces = append(v.Namespaces, NSMapping{Source: c.Source.String(), Target: c.Target.String(), Documents: c.Manifest.Count})
	}
	for _, vw := range p.Views {
		v.Namespaces = append(v.Namespaces, NSMapping{Source: vw.Source.String(), Target: vw.Target.String(), View: true})
	}
	for _, l := range p.Late {
		v.Namespaces = append(v.Namespaces, NSMapping{Source: l.Source.String(), Target: l.Target.String(), View: l.View, Late: true})
	}
	if p.Empty() {
		v.Note = restore.EmptyNote
	}
	return v
}

func restoreResult(rep restore.Report) RestoreResult {
	out := RestoreResult{Snapshot: rep.Snapshot, LastApplied: toTS(rep.LastApplied), Documents: rep.Documents,
		Entries: rep.Entries, Bytes: rep.Bytes, Seconds: rep.Duration.Seconds(), Indexes: rep.Indexes,
		Namespaces: []NSMapping{}}
	for _, n := range rep.Namespaces {
		out.Namespaces = append(out.Namespaces, NSMapping{Source: n.Source.String(), Target: n.Target.String(), Documents: n.Final})
	}
	if len(rep.Namespaces) == 0 && rep.Views == 0 {
		out.Note = restore.EmptyNote
	}
	out.Checksums = rep.Checksums
	out.Phases = []PhaseTime{}
	for _, ph := range rep.Phases {
		out.Phases = append(out.Phases, PhaseTime{Name: ph.Name, Seconds: ph.Duration.Seconds()})
	}
	return out
}
