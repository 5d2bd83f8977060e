// Package runs records how the agent's background work ends: every
// snapshot (scheduled or requested over the API), every prune run and
// every scheduled restore drill. The
// agent owns one Recorder; the metrics observe each run as it is recorded
// and the alerts read the latest outcome of each kind.
package runs

import (
	"sync"
	"time"
)

// Kind is what ran.
type Kind string

// Kinds of runs.
const (
	Snapshot Kind = "snapshot"
	Prune    Kind = "prune"
	// Drill is a restore drill; it failed when it could not run or did
	// not find the point exact (Err says which).
	Drill Kind = "drill"
)

// Run is one finished run.
type Run struct {
	Kind     Kind
	Started  time.Time
	Duration time.Duration
	// Err is why the run failed, nil when it succeeded.
	Err error
	// Failures counts the failed runs of this kind in a row, this one
	// included (0 when it succeeded).
	Failures int
}

// Recorder keeps the latest run of each kind and tells observers of every
// run. The zero value is ready to use; it is safe for concurrent use.
type Recorder struct {
	mu        sync.Mutex
	last      map[Kind]Run
	observers []func(Run)
}

// Observe calls fn with every run recorded from now on, in the recording
// goroutine: fn must be quick (a metric update).
func (r *Recorder) Observe(fn func(Run)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observers = append(r.observers, fn)
}

// Record notes a run that started at started and ended now with err.
func (r *Recorder) Record(kind Kind, started time.Time, err error) {
	run := Run{Kind: kind, Started: started, Duration: time.Since(started), Err: err}
	r.mu.Lock()
	if r.last == nil {
		r.last = map[Kind]Run{}
	}
	if err != nil {
		run.Failures = r.last[kind].Failures + 1
	}
	r.last[kind] = run
	obs := r.observers
	r.mu.Unlock()
	for _, fn := range obs {
		fn(run)
	}
}

// Last is the latest run of kind; ok is false before the first.
func (r *Recorder) Last(kind Kind) (run Run, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	run, ok = r.last[kind]
	return run, ok
}
