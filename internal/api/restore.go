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

	"github.com/rewind-backup/rewind/internal/browse"
	"github.com/rewind-backup/rewind/internal/checksum"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/repo"
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
	// Filter restores only the documents that match this MongoDB query as
	// of To (evaluated by the target's server on a staging copy).
	Filter Filter `json:"filter"`
	// Merge writes into target namespaces that hold data: "missing" or
	// "overwrite"; left out, they must be absent or empty (or drop).
	Merge string `json:"merge"`
}

// Filter is a MongoDB query in a request body: a JSON object
// ({"grp": 3}, Extended JSON allowed: {"at": {"$gte": {"$date": "..."}}}),
// or the same as a string, as --filter takes it. It holds the query's
// text; restore.ParseFilter checks it when the request is validated.
type Filter string

// UnmarshalJSON implements json.Unmarshaler.
func (f *Filter) UnmarshalJSON(b []byte) error {
	var text string
	switch t := bytes.TrimSpace(b); {
	case len(t) > 0 && t[0] == '{':
		*f = Filter(t)
		return nil
	case json.Unmarshal(t, &text) == nil:
		*f = Filter(text)
		return nil
	case string(t) == "null":
		*f = ""
		return nil
	}
	return fmt.Errorf(`filter: want a query as a JSON object ({"grp": 3}) or a string of Extended JSON, not %s`, b)
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
	// Filter is the request's filter as canonical Extended JSON; Merge its
	// merge mode. Either makes the restore go through staging on the
	// target (see docs/API.md).
	Filter json.RawMessage `json:"filter,omitempty"`
	Merge  string          `json:"merge,omitempty"`
	// Estimate is how long the restore should take on the target (a dry
	// run with a target: restore.Estimate probes its write rate).
	Estimate *EstimateView `json:"estimate,omitempty"`
	// Orphans, for a sharded cluster, says whether the load skips
	// orphaned documents ("skipped: ...") or not and why ("not skipped:
	// ..."): restore.Plan.Orphans.
	Orphans string `json:"orphans,omitempty"`
}

// EstimateView is restore.Estimate in seconds: Total = setup + load
// (max of decode and insert) + replay + indexes, and the rates they come
// from (insert bytes/s and replay entries/s probed on the target, 0 when
// not probed; decode bytes/s and index keys/s documented constants).
type EstimateView struct {
	Seconds       float64 `json:"seconds"`
	LoadSeconds   float64 `json:"load_seconds"`
	DecodeSeconds float64 `json:"decode_seconds"`
	InsertSeconds float64 `json:"insert_seconds"`
	ReplaySeconds float64 `json:"replay_seconds"`
	IndexSeconds  float64 `json:"index_seconds"`
	SetupSeconds  float64 `json:"setup_seconds"`
	InsertRate    float64 `json:"insert_bytes_per_second"`
	ReplayRate    float64 `json:"replay_entries_per_second"`
	DecodeRate    float64 `json:"decode_bytes_per_second"`
	IndexRate     float64 `json:"index_keys_per_second"`
	DocumentBytes int64   `json:"document_bytes"`
	Summary       string  `json:"summary"`
	NotEstimated  string  `json:"not_estimated,omitempty"`
}

// NSMapping is one source namespace and where it goes.
type NSMapping struct {
	Source    string `json:"source"`
	Target    string `json:"target"`
	Documents int64  `json:"documents"`
	View      bool   `json:"view,omitempty"`
	// Late: the snapshot does not hold it; the oplog range creates or writes it.
	Late bool `json:"late,omitempty"`
	// Merged is what a filtered or merging restore did here (results only).
	Merged *MergedCounts `json:"merged,omitempty"`
	// OrphansSkipped counts, for a cluster, the snapshot's documents not
	// loaded because their shard did not own them (results only).
	OrphansSkipped int64 `json:"orphans_skipped,omitempty"`
}

// MergedCounts count what a filtered or merging restore did with the
// documents it restored (restore.Merged): each was inserted (the target
// lacked its _id), replaced (the target held another version) or left
// alone (the target held it: any version with merge "missing", the same
// bytes with "overwrite").
type MergedCounts struct {
	Inserted  int64 `json:"inserted"`
	Replaced  int64 `json:"replaced"`
	LeftAlone int64 `json:"left_alone"`
}

func mergedCounts(m restore.Merged) *MergedCounts {
	return &MergedCounts{Inserted: m.Inserted, Replaced: m.Replaced, LeftAlone: m.LeftAlone}
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
	// Merged, for a filtered or merging restore (which loads the snapshot
	// into staging on the target: Documents counts what was staged), is
	// what reached the target; each namespace has its own.
	Merged *MergedCounts `json:"merged,omitempty"`
	// Sharding, for a restore into a sharded cluster through its mongos,
	// is how the data was placed: databases on their old primary shards,
	// collections sharded with their old keys, zone ranges, and what was
	// not carried over.
	Sharding *restore.Sharding `json:"sharding,omitempty"`
	// OrphansSkipped counts, for a cluster, the snapshot's documents not
	// loaded because their shard did not own them (per namespace in
	// Namespaces).
	OrphansSkipped int64 `json:"orphans_skipped,omitempty"`
}

// PhaseTime is one step of a restore and its duration.
type PhaseTime struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// RestoreProgress is a restore job's progress.
type RestoreProgress struct {
	Summary string `json:"summary"`
	// ETASeconds is the time left in the current step (load or replay),
	// from its rate so far; left out until a few seconds of it are measured.
	ETASeconds *float64 `json:"eta_seconds,omitempty"`
	ETAStep    string   `json:"eta_step,omitempty"`
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
		WithUsersAndRoles: in.WithUsersAndRoles, Parallel: in.Parallel, DryRun: in.DryRun, Checksum: in.Checksum,
		Filter: string(in.Filter), Merge: restore.Merge(in.Merge)}
	var err error
	if req.To, req.ConnectTimeout, err = toAndTimeout(in.To, in.ConnectTimeout); err != nil {
		return req, err
	}
	return req, req.Validate()
}

// toAndTimeout reads the to and connect_timeout fields restores and undos
// share; left out, zero values (Validate says what is required and sets
// the defaults).
func toAndTimeout(to, timeout string) (w restore.When, d config.Duration, err error) {
	if to != "" {
		if w, err = restore.ParseWhen(to); err != nil {
			return w, d, err
		}
	}
	if timeout != "" {
		d, err = restore.ParseConnectTimeout(timeout)
	}
	return w, d, err
}

// startRestore plans at once (so a bad restore point is answered now), then
// answers a dry run with the plan (and what is in the way on the target) or
// starts the restore as a job, which keeps the plan's lock.
func (s *Server) startRestore(w http.ResponseWriter, r *http.Request) {
	req, p, ok := prepare[RestoreRequest](s, w, r, "plan restore", restore.Prepare)
	if !ok {
		return
	}
	view := planView(p.Plan)
	if req.DryRun {
		defer p.Release()
		if req.Target != "" {
			var err error
			if view.TargetCheck, view.Estimate, err = s.checkTarget(r.Context(), p); err != nil {
				WriteError(w, http.StatusBadGateway, CodeUnavailable, "%v", err)
				return
			}
		}
		WriteData(w, http.StatusOK, view)
		return
	}
	j := s.runRestore(repo.ActorFrom(r.Context()), p)
	WriteData(w, http.StatusAccepted, restoreJob{Job: j, Plan: view})
}

// checkTarget is a dry run's look at the target: what is in the way, and
// the estimate from a probe of its write rate.
func (s *Server) checkTarget(ctx context.Context, p *restore.Prepared) (*TargetCheck, *EstimateView, error) {
	t, err := restore.Connect(ctx, p.Request.Target, p.Request.ConnectTimeout)
	if err != nil {
		return nil, nil, err
	}
	defer t.Close(ctx)
	findings, err := p.Check(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	e, err := p.Estimate(ctx, t)
	return TargetCheckOf(findings, p.Request), EstimateOf(e, err), nil
}

// TargetCheckOf is what a dry run found on the target (restore.Check).
func TargetCheckOf(findings []restore.Finding, req restore.Request) *TargetCheck {
	tc := &TargetCheck{Verdict: restore.VerdictOf(findings, req), Refused: len(findings) > 0 && !req.Drop,
		InTheWay: []InTheWay{}}
	for _, f := range findings {
		tc.InTheWay = append(tc.InTheWay, InTheWay{Namespace: f.Target.String(), Reasons: f.Reasons})
	}
	return tc
}

// EstimateOf is an estimate as the API answers it; err (the probe failed)
// gives one that says why it is missing.
func EstimateOf(e restore.Estimate, err error) *EstimateView {
	if err != nil {
		return &EstimateView{NotEstimated: err.Error(), DecodeRate: restore.DecodeRate, IndexRate: restore.IndexRate}
	}
	return &EstimateView{Seconds: e.Total.Seconds(), LoadSeconds: e.Load.Seconds(), DecodeSeconds: e.Decode.Seconds(),
		InsertSeconds: e.Insert.Seconds(), ReplaySeconds: e.Replay.Seconds(), IndexSeconds: e.Indexes.Seconds(),
		SetupSeconds: e.Setup.Seconds(), InsertRate: e.InsertRate, ReplayRate: e.ReplayRate, DecodeRate: restore.DecodeRate,
		IndexRate: restore.IndexRate, DocumentBytes: e.DocBytes, Summary: e.String()}
}

// runRestore starts the restore job for actor (its audit entry's who);
// it owns p and releases it.
func (s *Server) runRestore(actor repo.Actor, p *restore.Prepared) Job {
	return s.targetJob(actor, "restore", p.Request.Target, p.Request.ConnectTimeout, p.Release, s.metrics.observeRestore,
		func(ctx context.Context, t *restore.Target, o restore.Options) (any, error) {
			rep, err := p.Execute(ctx, t, o)
			if err != nil {
				return nil, err
			}
			return restoreResult(rep), nil
		})
}

// targetJob starts a job of kind that connects to the target (uri) and
// runs fn there with a live restore.Progress: "connecting to the target"
// until fn starts. release (the plan's lock) is called when it ends;
// observe (nil: none) gets its duration and error, connecting included.
// The job runs as actor: the audit entry fn's restore or undo records.
func (s *Server) targetJob(actor repo.Actor, kind, uri string, timeout config.Duration, release func(), observe func(time.Duration, error),
	fn func(context.Context, *restore.Target, restore.Options) (any, error)) Job {
	prog := &restore.Progress{}
	var executing atomic.Bool // Progress.Line is meaningless before fn starts it
	progress := func() any {
		if !executing.Load() {
			return RestoreProgress{Summary: "connecting to the target"}
		}
		rp := RestoreProgress{Summary: strings.TrimSpace(prog.Line())}
		if left, step, ok := prog.ETA(); ok {
			secs := left.Seconds()
			rp.ETASeconds, rp.ETAStep = &secs, step
		}
		return rp
	}
	return s.jobs.start(repo.WithActor(s.jobContext(), actor), s.d.Log, kind, progress, func(ctx context.Context) (result any, err error) {
		defer release()
		if observe != nil {
			defer func(started time.Time) { observe(time.Since(started), err) }(time.Now())
		}
		t, err := restore.Connect(ctx, uri, timeout)
		if err != nil {
			return nil, err
		}
		defer t.Close(ctx)
		executing.Store(true)
		return fn(ctx, t, restore.Options{Progress: prog, Log: s.d.Log})
	})
}

// jobOf answers GET /api/v1/{kind}s/{id}: the job, if it is of kind.
func (s *Server) jobOf(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		j, ok := s.jobs.get(r.PathValue("id"))
		if !ok || j.Kind != kind {
			WriteError(w, http.StatusNotFound, CodeNotFound, "no %s %q: GET /api/v1/jobs lists the jobs", kind, r.PathValue("id"))
			return
		}
		WriteData(w, http.StatusOK, j)
	}
}

// PlanViewOf is a plan as the API answers it; `rewind restore --dry-run
// --json` prints the same.
func PlanViewOf(p restore.Plan) PlanView { return planView(p) }

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
	if p.Filter != nil {
		v.Filter = json.RawMessage(browse.DocJSON(p.Filter))
	}
	v.Merge = string(p.Merge)
	v.Orphans = p.Orphans
	return v
}

func restoreResult(rep restore.Report) RestoreResult {
	out := RestoreResult{Snapshot: rep.Snapshot, LastApplied: toTS(rep.LastApplied), Documents: rep.Documents,
		Entries: rep.Entries, Bytes: rep.Bytes, Seconds: rep.Duration.Seconds(), Indexes: rep.Indexes,
		Namespaces: []NSMapping{}}
	for _, n := range rep.Namespaces {
		m := NSMapping{Source: n.Source.String(), Target: n.Target.String(), Documents: n.Final, OrphansSkipped: n.OrphansSkipped}
		if rep.Staged {
			m.Merged = mergedCounts(n.Merged)
		}
		out.Namespaces = append(out.Namespaces, m)
	}
	if rep.Staged {
		out.Merged = mergedCounts(rep.Merged)
	}
	if len(rep.Namespaces) == 0 && rep.Views == 0 {
		out.Note = restore.EmptyNote
	}
	out.Checksums = rep.Checksums
	out.Sharding = rep.Sharding
	out.OrphansSkipped = rep.OrphansSkipped
	out.Phases = []PhaseTime{}
	for _, ph := range rep.Phases {
		out.Phases = append(out.Phases, PhaseTime{Name: ph.Name, Seconds: ph.Duration.Seconds()})
	}
	return out
}
