package verify

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
)

// TrialNamespace is one collection of a trial restore.
type TrialNamespace struct {
	Namespace string `json:"namespace"`
	Recorded  int64  `json:"recorded"` // documents the snapshot recorded
	Loaded    int64  `json:"loaded"`   // documents loaded from the snapshot
	Final     int64  `json:"final"`    // documents after the replay
}

// Trial is the outcome of a trial restore.
type Trial struct {
	Point      optime.Timestamp
	Snapshot   string
	Entries    int64
	Duration   time.Duration
	Namespaces []TrialNamespace
	Problems   []string
}

// ErrScratchNotEmpty means the trial restore target holds data.
var ErrScratchNotEmpty = fmt.Errorf("the scratch deployment is not empty")

// TrialRestore restores when (the newest point if when.Latest) into an
// empty scratch deployment the way `rewind restore` does (restore.Prepare,
// then Execute on it), then checks every collection received the documents
// its snapshot recorded (and, when the point is the snapshot's own, still
// holds exactly that many).
func TrialRestore(ctx context.Context, r *repo.Repository, client *mongo.Client, when restore.When, log *slog.Logger) (Trial, error) {
	var tr Trial
	if err := CheckScratch(ctx, client); err != nil {
		return tr, fmt.Errorf("trial restore: %w; point --restore-to at an empty deployment", err)
	}
	p, err := restore.Prepare(ctx, r, restore.Request{To: when})
	if err != nil {
		return tr, fmt.Errorf("trial restore: %w", err)
	}
	defer p.Release()
	t, err := restore.Use(ctx, client)
	if err != nil {
		return tr, fmt.Errorf("trial restore: %w", err)
	}
	rep, err := p.Execute(ctx, t, restore.Options{Log: log})
	if err != nil {
		return tr, fmt.Errorf("trial restore: %w", err)
	}
	plan := p.Plan
	tr = Trial{Point: plan.Target, Snapshot: plan.Snapshot.ID, Entries: rep.Entries, Duration: rep.Duration,
		Namespaces: []TrialNamespace{}}
	recorded := map[string]int64{}
	for _, c := range plan.Collections {
		recorded[c.Target.String()] = c.Manifest.Count
	}
	atSnapshot := plan.Target == plan.Snapshot.End
	for _, ns := range rep.Namespaces {
		n := TrialNamespace{Namespace: ns.Target.String(), Recorded: recorded[ns.Target.String()], Loaded: ns.Loaded, Final: ns.Final}
		tr.Namespaces = append(tr.Namespaces, n)
		if n.Loaded != n.Recorded {
			tr.Problems = append(tr.Problems, fmt.Sprintf("%s: loaded %d documents, the snapshot recorded %d", n.Namespace, n.Loaded, n.Recorded))
		}
		if atSnapshot && n.Final != n.Recorded {
			tr.Problems = append(tr.Problems, fmt.Sprintf("%s: holds %d documents at the snapshot's own point, the snapshot recorded %d", n.Namespace, n.Final, n.Recorded))
		}
	}
	return tr, nil
}

// CheckScratch refuses a scratch deployment that holds any user database
// (ErrScratchNotEmpty, naming them): a trial restore or a drill must never
// touch real data, and a drill drops everything it restored.
func CheckScratch(ctx context.Context, client *mongo.Client) error {
	names, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("list databases of the scratch deployment: %w", err)
	}
	var user []string
	for _, n := range names {
		if n != "admin" && n != "config" && n != "local" {
			user = append(user, n)
		}
	}
	if len(user) > 0 {
		return fmt.Errorf("%w: it holds %s", ErrScratchNotEmpty, strings.Join(user, ", "))
	}
	return nil
}
