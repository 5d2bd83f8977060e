package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rewind-backup/rewind/internal/checksum"
	"github.com/rewind-backup/rewind/internal/repo"
)

// Drill is a drill result as JSON: `rewind drill --json`, `rewind status
// --json`'s last drill and the API's status show it.
type Drill struct {
	ID          string            `json:"id,omitempty"`
	Started     time.Time         `json:"started"`
	Point       *TS               `json:"point"`
	Chosen      string            `json:"chosen"` // latest, random, snapshot or the --to text
	Snapshot    string            `json:"snapshot,omitempty"`
	Verdict     string            `json:"verdict"`           // exact, mismatch, failed, no-reference
	Against     string            `json:"against,omitempty"` // source or reference
	Problem     string            `json:"problem,omitempty"`
	Collections int               `json:"collections"`
	Documents   int64             `json:"documents"`
	Bytes       int64             `json:"bytes"`
	Phases      []repo.DrillPhase `json:"phases"`
	Seconds     float64           `json:"seconds"`
	// RestoreSeconds is the restore's own time; RTOSecondsPerGB that per
	// 10^9 bytes of restored documents.
	RestoreSeconds  float64 `json:"restore_seconds"`
	RTOSecondsPerGB float64 `json:"rto_seconds_per_gb"`
	// The details of a drill just run (not recorded).
	Checksums   []checksum.Sum     `json:"checksums,omitempty"`
	Reference   []checksum.Sum     `json:"reference,omitempty"`
	Differences []DrillDifference  `json:"differences,omitempty"`
	Document    *checksum.Document `json:"first_difference,omitempty"`
}

// DrillDifference is one collection whose checksums differ, as JSON.
type DrillDifference struct {
	Namespace string       `json:"namespace"`
	Want      checksum.Sum `json:"want"`
	Got       checksum.Sum `json:"got"`
}

// DrillOf is a recorded drill result as JSON.
func DrillOf(r repo.DrillResult) Drill {
	v := Drill{ID: r.ID, Started: r.Started, Chosen: r.Chosen, Snapshot: r.Snapshot, Verdict: r.Verdict,
		Against: r.Against, Problem: r.Problem, Collections: r.Collections, Documents: r.Documents, Bytes: r.Bytes,
		Phases: r.Phases, Seconds: r.Seconds, RestoreSeconds: r.RestoreSeconds, RTOSecondsPerGB: r.RTO}
	if !r.Point.IsZero() {
		v.Point = ToTS(r.Point)
	}
	if v.Phases == nil {
		v.Phases = []repo.DrillPhase{}
	}
	return v
}

// loadDrill reads the shard's newest drill result. Drill records are
// encrypted in an encrypted repository: without the identity, status says
// so rather than fail.
func (s *Report) loadDrill(ctx context.Context, r *repo.Repository, shard string) {
	res, ok, err := r.LastDrillResult(ctx, shard)
	switch {
	case errors.Is(err, repo.ErrNeedIdentity):
		s.Warnings = append(s.Warnings, "the last restore drill is encrypted, as the repository is: the agent's GET /api/v1/status shows it")
	case err != nil:
		s.Warnings = append(s.Warnings, fmt.Sprintf("the last restore drill cannot be read (%v); `rewind verify --read-data` checks the repository", err))
	case ok:
		d := DrillOf(res)
		s.LastDrill = &d
		if res.Verdict != "exact" {
			s.Warnings = append(s.Warnings, fmt.Sprintf("the last restore drill (%s) did not pass: %s: %s", res.Started.Format(time.RFC3339), res.Verdict, res.Problem))
		}
	}
}

// DrillReport is a repository's drill history, the evidence auditors ask
// for: `rewind drill history --json` and GET /api/v1/drills answer it.
type DrillReport struct {
	// Repository is the repository's id, Location its URL without secrets.
	Repository string       `json:"repository"`
	Location   string       `json:"location"`
	Shard      string       `json:"shard"`
	Generated  time.Time    `json:"generated"`
	Summary    DrillSummary `json:"summary"`
	// Drills are the recorded drills, newest first (the repository keeps
	// the newest 100).
	Drills []Drill `json:"drills"`
}

// DrillSummary counts a report's drills by verdict.
type DrillSummary struct {
	Total       int `json:"total"`
	Exact       int `json:"exact"`
	Mismatch    int `json:"mismatch"`
	Failed      int `json:"failed"`
	NoReference int `json:"no_reference"`
	// LastExact and LastNotExact are when the newest drill of each kind
	// started (null when none).
	LastExact    *time.Time `json:"last_exact"`
	LastNotExact *time.Time `json:"last_not_exact"`
	// MeanRTOSecondsPerGB is the mean of the exact drills' RTO (0 when none).
	MeanRTOSecondsPerGB float64 `json:"mean_rto_seconds_per_gb"`
}
