package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
)

// RestoreRequest is the body of POST /api/v1/restores: the options of
// `rewind restore`.
type RestoreRequest struct {
	Target            string            `json:"target"`               // connection string; required unless dry_run
	To                string            `json:"to"`                   // RFC 3339 time, SECONDS:INCREMENT or "latest"
	NS                []string          `json:"ns"`                   // db, db.* or db.coll; empty: all
	Rename            map[string]string `json:"rename"`               // FROM -> TO
	Drop              bool              `json:"drop"`                 // drop target collections holding data
	WithUsersAndRoles bool              `json:"with_users_and_roles"` // also restore users and roles
	Parallel          int               `json:"parallel"`             // chunks loaded at once; default 4
	DryRun            bool              `json:"dry_run"`              // plan only, change nothing
	ConnectTimeout    string            `json:"connect_timeout"`      // Go duration; default 30s
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
	Entries      *int64      `json:"entries,omitempty"` // oplog entries to replay (dry run only)
	Namespaces   []NSMapping `json:"namespaces"`
}

// NSMapping is one source namespace and where it goes.
type NSMapping struct {
	Source    string `json:"source"`
	Target    string `json:"target"`
	Documents int64  `json:"documents"`
	View      bool   `json:"view,omitempty"`
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
	// Phases is how long each step took, in order (check, create, load,
	// replay, indexes, users, count).
	Phases []PhaseTime `json:"phases"`
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

type restoreParams struct {
	req     restore.Request
	timeout time.Duration
}

// parseRestore checks a request as `rewind restore` checks its flags.
func parseRestore(in RestoreRequest) (restoreParams, error) {
	p := restoreParams{timeout: 30 * time.Second}
	if in.To == "" {
		return p, errors.New("to is required: an RFC 3339 time, SECONDS:INCREMENT or \"latest\"")
	}
	if in.Target == "" && !in.DryRun {
		return p, errors.New("target is required (the connection string to restore into), unless dry_run")
	}
	if in.Parallel < 0 {
		return p, fmt.Errorf("parallel %d: want at least 1 (or leave it out)", in.Parallel)
	}
	if in.ConnectTimeout != "" {
		d, err := time.ParseDuration(in.ConnectTimeout)
		if err != nil || d <= 0 {
			return p, fmt.Errorf("connect_timeout %q: want a duration like 30s", in.ConnectTimeout)
		}
		p.timeout = d
	}
	when, err := restore.ParseWhen(in.To)
	if err != nil {
		return p, err
	}
	for from, to := range in.Rename {
		if from == "" || to == "" {
			return p, fmt.Errorf("rename %q: %q: want non-empty names, for example {\"shop\": \"shop_0930\"}", from, to)
		}
	}
	if _, err := restore.NewMapper(in.NS, in.Rename); err != nil {
		return p, err
	}
	p.req = restore.Request{To: when, Include: in.NS, Rename: in.Rename, WithUsersAndRoles: in.WithUsersAndRoles}
	return p, nil
}

// startRestore plans at once (so a bad restore point is answered now), then
// answers a dry run with the plan or starts the restore as a job.
func (s *Server) startRestore(w http.ResponseWriter, r *http.Request) {
	var in RestoreRequest
	if !decodeBody(w, r, &in) {
		return
	}
	params, err := parseRestore(in)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "%v", err)
		return
	}
	ctx := r.Context()
	lock, err := s.d.Repo.Lock(ctx, repo.LockOptions{Kind: repo.LockShared, Purpose: "restore", Wait: 30 * time.Second})
	if err != nil {
		s.storageError(w, "lock the repository for reading", err)
		return
	}
	keep := false
	defer func() {
		if !keep {
			_ = lock.Unlock(context.Background())
		}
	}()
	plan, err := s.plan(ctx, params.req)
	if errors.Is(err, restore.ErrOutsideWindows) {
		writeError(w, http.StatusUnprocessableEntity, codeNotRestorable, "%v; GET /api/v1/timeline shows the windows", err)
		return
	} else if err != nil {
		writeError(w, http.StatusUnprocessableEntity, codeNotRestorable, "%v", err)
		return
	}
	view := planView(plan)
	if in.DryRun {
		n, err := restore.CountEntries(ctx, s.d.Repo, plan)
		if err != nil {
			s.storageError(w, "count oplog entries", err)
			return
		}
		view.Entries = &n
		writeData(w, http.StatusOK, view)
		return
	}
	keep = true
	j := s.runRestore(lock, plan, in, params)
	writeData(w, http.StatusAccepted, restoreJob{Job: j, Plan: view})
}

func (s *Server) plan(ctx context.Context, req restore.Request) (restore.Plan, error) {
	cat, err := catalog.Load(ctx, s.d.Repo)
	if err != nil {
		return restore.Plan{}, err
	}
	plan, err := restore.Build(cat, req)
	if err != nil {
		return plan, err
	}
	if plan.Flavor == "" {
		plan.Flavor = s.d.Repo.Config().Source.Flavor
	}
	return plan, restore.Resolve(ctx, s.d.Repo, &plan)
}

// runRestore starts the restore job; it owns lock and releases it.
func (s *Server) runRestore(lock *repo.Lock, plan restore.Plan, in RestoreRequest, p restoreParams) Job {
	prog := &restore.Progress{}
	var executing atomic.Bool // Progress.Line is meaningless before Execute starts it
	progress := func() any {
		if !executing.Load() {
			return RestoreProgress{Summary: "connecting to the target"}
		}
		return RestoreProgress{Summary: strings.TrimSpace(prog.Line())}
	}
	return s.jobs.start(s.jobContext(), s.d.Log, "restore", progress, func(ctx context.Context) (any, error) {
		ctx, release := lock.Hold(ctx)
		defer release()
		started := time.Now()
		rep, err := s.execute(ctx, plan, in, p, prog, &executing)
		s.metrics.observeRestore(time.Since(started), err)
		if err != nil {
			return nil, repo.LostError(ctx, err)
		}
		return restoreResult(rep), nil
	})
}

func (s *Server) execute(ctx context.Context, plan restore.Plan, in RestoreRequest, p restoreParams,
	prog *restore.Progress, executing *atomic.Bool) (restore.Report, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(in.Target).SetServerSelectionTimeout(p.timeout))
	if err != nil {
		return restore.Report{}, fmt.Errorf("connect to target: %w; check target (a mongodb:// connection string)", err)
	}
	defer client.Disconnect(context.Background())
	if err := client.Ping(ctx, nil); err != nil {
		return restore.Report{}, fmt.Errorf("connect to target: %w; check target and that the deployment is up", err)
	}
	executing.Store(true)
	return restore.Execute(ctx, s.d.Repo, client, plan, restore.Options{Parallel: in.Parallel, Drop: in.Drop,
		Progress: prog, Log: s.d.Log})
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
	v := PlanView{RestorePoint: p.Request.String(), Target: toTS(p.Target), Snapshot: p.Snapshot.ID,
		ReplayFrom: toTS(p.ReplayFrom), Timeline: p.Window.Timeline, Segments: len(p.Segments),
		SegmentBytes: p.SegmentBytes, Chunks: p.Chunks, ChunkBytes: p.ChunkBytes, Documents: p.Documents,
		Namespaces: []NSMapping{}}
	for _, c := range p.Collections {
		v.Namespaces = append(v.Namespaces, NSMapping{Source: c.Source.String(), Target: c.Target.String(), Documents: c.Manifest.Count})
	}
	for _, vw := range p.Views {
		v.Namespaces = append(v.Namespaces, NSMapping{Source: vw.Source.String(), Target: vw.Target.String(), View: true})
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
	out.Phases = []PhaseTime{}
	for _, ph := range rep.Phases {
		out.Phases = append(out.Phases, PhaseTime{Name: ph.Name, Seconds: ph.Duration.Seconds()})
	}
	return out
}
