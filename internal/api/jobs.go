package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/runs"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/status"
)

// Job states.
const (
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
)

// Job is a snapshot, restore or undo run in the background.
type Job struct {
	ID       string     `json:"id"`
	Kind     string     `json:"kind"` // "snapshot", "restore" or "undo"
	State    string     `json:"state"`
	Started  time.Time  `json:"started"`
	Ended    *time.Time `json:"ended"`
	Error    string     `json:"error,omitempty"`
	Progress any        `json:"progress,omitempty"`
	Result   any        `json:"result,omitempty"`
}

// job is a Job while it runs: progress is read live until it ends.
type job struct {
	Job
	progress func() any
}

type jobs struct {
	mu   sync.Mutex
	seq  int
	all  map[string]*job
	wg   sync.WaitGroup
	keep int // finished jobs kept for listing
}

func newJobs() *jobs { return &jobs{all: map[string]*job{}, keep: 100} }

// start runs fn in the background as a new job. The job always records its
// end: fn's error, or a recovered panic, makes it failed. The job's error
// is one line for the API and the dashboard; log (nil: slog.Default())
// gets the whole of it, a panic's stack included.
func (js *jobs) start(ctx context.Context, log *slog.Logger, kind string, progress func() any, fn func(ctx context.Context) (any, error)) Job {
	if log == nil {
		log = slog.Default()
	}
	js.mu.Lock()
	js.seq++
	j := &job{Job: Job{ID: fmt.Sprintf("%s-%s-%d", kind, time.Now().UTC().Format("20060102T150405Z"), js.seq),
		Kind: kind, State: StateRunning, Started: time.Now().UTC()}, progress: progress}
	js.all[j.ID] = j
	js.prune()
	snap := js.view(j)
	js.mu.Unlock()
	js.wg.Add(1)
	go func() {
		defer js.wg.Done()
		var (
			result any
			err    error
		)
		defer func() {
			if p := recover(); p != nil {
				log.Error("api: job panicked", "job", j.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				err = fmt.Errorf("panic: %s (a bug in rewind; the agent's log has the stack)", oneLine(fmt.Sprint(p)))
			} else if err != nil {
				log.Warn("api: job failed", "job", j.ID, "err", err)
			}
			js.finish(j, result, err)
		}()
		result, err = fn(ctx)
	}()
	return snap
}

func (js *jobs) finish(j *job, result any, err error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	now := time.Now().UTC()
	j.Ended = &now
	j.Result = result
	if j.progress != nil {
		j.Progress = j.progress()
	}
	if err != nil {
		j.State, j.Error = StateFailed, oneLine(err.Error())
	} else {
		j.State = StateSucceeded
	}
}

// oneLine joins a multi-line message (a store's XML error body, a panic
// value) into one line.
func oneLine(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(slices.DeleteFunc(lines, func(l string) bool { return l == "" }), "; ")
}

// prune forgets the oldest finished jobs beyond keep. js.mu is held.
func (js *jobs) prune() {
	var done []*job
	for _, j := range js.all {
		if j.State != StateRunning {
			done = append(done, j)
		}
	}
	if len(done) <= js.keep {
		return
	}
	sort.Slice(done, func(a, b int) bool { return done[a].Started.Before(done[b].Started) })
	for _, j := range done[:len(done)-js.keep] {
		delete(js.all, j.ID)
	}
}

// view copies a job with its current progress. js.mu is held.
func (js *jobs) view(j *job) Job {
	v := j.Job
	if v.State == StateRunning && j.progress != nil {
		v.Progress = j.progress()
	}
	return v
}

func (js *jobs) get(id string) (Job, bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	j, ok := js.all[id]
	if !ok {
		return Job{}, false
	}
	return js.view(j), true
}

func (js *jobs) list() []Job {
	js.mu.Lock()
	defer js.mu.Unlock()
	out := []Job{}
	for _, j := range js.all {
		out = append(out, js.view(j))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Started.Before(out[b].Started) })
	return out
}

// wait waits up to d for running jobs to end (they see ctx end).
func (js *jobs) wait(d time.Duration) {
	done := make(chan struct{})
	go func() { js.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func (s *Server) listJobs(w http.ResponseWriter, _ *http.Request) {
	WriteData(w, http.StatusOK, s.jobs.list())
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	j, ok := s.jobs.get(r.PathValue("id"))
	if !ok {
		WriteError(w, http.StatusNotFound, CodeNotFound, "no job %q: GET /api/v1/jobs lists them", r.PathValue("id"))
		return
	}
	WriteData(w, http.StatusOK, j)
}

// SnapshotRequest is the body of POST /api/v1/snapshots (optional).
type SnapshotRequest struct {
	Parallel int `json:"parallel"` // collections copied at once; default snapshot.parallel
}

// SnapshotProgress is a snapshot job's progress.
type SnapshotProgress struct {
	Documents int64  `json:"documents"`
	Bytes     int64  `json:"bytes"`
	Chunks    int64  `json:"chunks"`
	Summary   string `json:"summary"`
}

// takeSnapshot starts a snapshot now, the way the agent's schedule takes
// one: the agent captures the snapshot's oplog range itself.
func (s *Server) takeSnapshot(w http.ResponseWriter, r *http.Request) {
	var req SnapshotRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Parallel < 0 {
		WriteError(w, http.StatusBadRequest, CodeBadRequest, "parallel %d: want at least 1 (or leave it out)", req.Parallel)
		return
	}
	if req.Parallel == 0 {
		req.Parallel = s.d.SnapshotParallel
	}
	prog := &snapshot.Progress{}
	progress := func() any {
		d, b, c := prog.Counts()
		return SnapshotProgress{Documents: d, Bytes: b, Chunks: c, Summary: prog.Line()}
	}
	j := s.jobs.start(s.jobContext(), s.d.Log, "snapshot", progress, func(ctx context.Context) (any, error) {
		started := time.Now()
		m, err := snapshot.Take(ctx, s.d.Source, s.d.Repo, snapshot.Options{Parallel: req.Parallel,
			Capture: snapshot.CaptureByAgent, Progress: prog, Log: s.d.Log})
		s.d.Runs.Record(runs.Snapshot, started, err)
		if err != nil {
			return nil, fmt.Errorf("take snapshot: %w", err)
		}
		return status.Snapshots([]catalog.Snapshot{catalog.NewSnapshot(m)})[0], nil
	})
	s.d.Log.Info("api: snapshot requested", "job", j.ID)
	WriteData(w, http.StatusAccepted, j)
}
