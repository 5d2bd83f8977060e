package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"sort"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/redact"
)

// Audit entries (docs/FORMAT.md, "Audit entries"): who restored, undid,
// pruned or broke a lock, when, and what, kept in the repository so that an
// auditor with only the URL (and identity) can read them.
//
//	audit/STARTED-xxxxxxxx   an AuditEntry
//
// Kind 14 (audit entry), a data kind: entries name namespaces, so they are
// compressed and encrypted as segments are. Prune never deletes them.
const (
	prefixAudit = "audit/"
	// auditStamp is an id's time part, to the millisecond; 4 random bytes
	// in hex follow it.
	auditStamp      = "20060102T150405.000Z"
	auditFailed     = "failed: " // Outcome's prefix when the action failed
	maxAuditText    = 2000       // longest Outcome or Detail kept, in bytes
	auditTokenBytes = 4          // bytes of SHA-256 in a token fingerprint
)

// Audited actions (AuditEntry.Action) and outcomes (AuditEntry.Outcome).
const (
	AuditRestore   = "restore"
	AuditUndo      = "undo"
	AuditPrune     = "prune"
	AuditUnlock    = "unlock"     // rewind unlock removed a lock
	AuditLockBreak = "lock-break" // a contender removed a stale or dead holder's lock
	// AuditStarted is written before the action: an entry left so was cut
	// short (the process killed).
	AuditStarted = "started"
	AuditOK      = "ok" // the action finished; else "failed: MESSAGE"
)

// Actor is who asks for an audited action, carried in the context from
// the command line or the API request down to the code that records it
// (WithActor). Host, OS user and process id are filled in when the entry
// is written.
type Actor struct {
	// Via is how the request came: the command line ("rewind restore",
	// or "rewind agent" for its scheduled prunes) or "api".
	Via string `bson:"via" json:"via"`
	// Token is the API token's fingerprint (TokenFingerprint), never the
	// token; "" for the command line or an unauthenticated request.
	Token string `bson:"token,omitempty" json:"token,omitempty"`
	// Remote is the API client's address (HOST:PORT), "" for the CLI.
	Remote string `bson:"remote,omitempty" json:"remote,omitempty"`
}

type actorKey struct{}

// WithActor returns ctx carrying a as the actor of the audited actions
// done under it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor WithActor put in ctx; Via "rewind" when none.
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	if a.Via == "" {
		a.Via = "rewind"
	}
	return a
}

// TokenFingerprint is how an audit entry names an API token without
// holding it: "sha256:" and the first 8 hex digits of its SHA-256. It tells
// tokens apart (after a rotation) but gives nothing to guess the token from.
func TokenFingerprint(token string) string {
	if token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:auditTokenBytes])
}

// AuditEntry is one audited action.
type AuditEntry struct {
	ID      string    `bson:"id" json:"id"` // STARTED-xxxxxxxx, the key's last part
	Started time.Time `bson:"started" json:"started"`
	Ended   time.Time `bson:"ended,omitempty" json:"ended,omitzero"`
	// Action is restore, undo, prune, unlock or lock-break.
	Action string `bson:"action" json:"action"`
	// Who: the machine, OS user and process that did it, and the actor.
	Host  string `bson:"host" json:"host"`
	User  string `bson:"user" json:"user"`
	PID   int    `bson:"pid" json:"pid"`
	Actor Actor  `bson:"actor" json:"actor"`
	// What. Target is the connection string written to, without its
	// credentials; Namespaces the --ns patterns (empty: everything); To the
	// restore point or range end as given; Detail a one-line summary
	// (what a prune deleted, whose lock was broken).
	Target     string   `bson:"target,omitempty" json:"target,omitempty"`
	Namespaces []string `bson:"namespaces,omitempty" json:"namespaces,omitempty"`
	To         string   `bson:"to,omitempty" json:"to,omitempty"`
	Detail     string   `bson:"detail,omitempty" json:"detail,omitempty"`
	// Outcome is "started" while it runs (or when it was cut short: a
	// killed process leaves it so), "ok", or "failed: MESSAGE".
	Outcome string `bson:"outcome" json:"outcome"`
}

func auditKey(id string) string { return prefixAudit + id }

// clean fills who, redacts the target and scrubs its secrets from the
// texts: an entry never holds a password, whatever the caller passed.
func (e *AuditEntry) clean(secrets []string) {
	if e.Host == "" {
		e.Host, _ = os.Hostname()
	}
	if e.User == "" {
		if u, err := user.Current(); err == nil {
			e.User = u.Username
		}
	}
	if e.PID == 0 {
		e.PID = os.Getpid()
	}
	e.Target = redact.URL(e.Target)
	e.To = redact.Scrub(e.To, secrets...)
	e.Detail = redact.Scrub(clip(e.Detail), secrets...)
	e.Outcome = redact.Scrub(clip(e.Outcome), secrets...)
	e.Started, e.Ended = e.Started.UTC(), e.Ended.UTC()
}

func clip(s string) string {
	s = strings.ReplaceAll(s, "\n", "; ")
	if len(s) > maxAuditText {
		s = strings.ToValidUTF8(s[:maxAuditText], "") + "..." // (a cut rune goes)
	}
	return s
}

// AuditRecord is an entry written as started, to be finished with Finish.
type AuditRecord struct {
	r       *Repository
	entry   AuditEntry
	secrets []string
}

// BeginAudit writes e (Action and what it does filled in by the caller)
// with the actor of ctx, the time and outcome "started", before the action
// changes anything: an action whose entry cannot be written is not done.
// Call Finish with the action's error when it ends.
func (r *Repository) BeginAudit(ctx context.Context, e AuditEntry) (*AuditRecord, error) {
	e.Actor = ActorFrom(ctx)
	if e.Started.IsZero() {
		e.Started = time.Now()
	}
	e.ID = e.Started.UTC().Format(auditStamp) + "-" + randomHex(4)
	e.Outcome = AuditStarted
	a := &AuditRecord{r: r, entry: e, secrets: redact.Secrets(e.Target)}
	a.entry.clean(a.secrets)
	if err := r.putBSON(ctx, auditKey(a.entry.ID), KindAudit, a.entry); err != nil {
		return nil, fmt.Errorf("record audit entry: %w", err)
	}
	return a, nil
}

// ID is the entry's id.
func (a *AuditRecord) ID() string { return a.entry.ID }

// Finish rewrites the entry with its end time, outcome (ok, or failed and
// the message of err, secrets removed) and detail ("" keeps it). It is
// bounded and runs even when ctx is cancelled (a failed action's ctx often
// is); its error is for the caller's log: the action itself is done.
func (a *AuditRecord) Finish(ctx context.Context, err error, detail string) error {
	a.entry.Ended = time.Now()
	a.entry.Outcome = AuditOK
	if err != nil {
		a.entry.Outcome = auditFailed + err.Error()
	}
	if detail != "" {
		a.entry.Detail = detail
	}
	a.entry.clean(a.secrets)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := a.r.putBSON(wctx, auditKey(a.entry.ID), KindAudit, a.entry); err != nil {
		return fmt.Errorf("record audit entry %s: %w", a.entry.ID, err)
	}
	return nil
}

// ErrNotAudited means an action was not done because its audit entry
// could not be written first; the caller's error adds what that left
// unchanged.
var ErrNotAudited = errors.New("not started: its audit entry could not be written")

// Audited runs fn, the part of an action that changes something, between
// the two writes of its audit entry e: BeginAudit first (an action whose
// entry cannot be written is not done: the error wraps ErrNotAudited), then Finish
// with fn's error and detail of its result (called only on success). A
// failed Finish is logged as a warning on log: the action is done.
func Audited[T any](ctx context.Context, r *Repository, log *slog.Logger, e AuditEntry, fn func() (T, error), detail func(T) string) (T, error) {
	rec, err := r.BeginAudit(ctx, e)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("%s: %w: %w", e.Action, ErrNotAudited, err)
	}
	out, err := fn()
	d := ""
	if err == nil {
		d = detail(out)
	}
	if ferr := rec.Finish(ctx, err, d); ferr != nil && log != nil {
		log.Warn("the audit entry keeps outcome \"started\"", "entry", rec.ID(), "err", ferr)
	}
	return out, err
}

// RecordAudit writes e as finished now with outcome ok: for an action
// done in one step (a lock removed).
func (r *Repository) RecordAudit(ctx context.Context, e AuditEntry) error {
	a, err := r.BeginAudit(ctx, e)
	if err != nil {
		return err
	}
	return a.Finish(ctx, nil, "")
}

// ListAudit lists the ids of the audit entries, oldest first, from their
// keys alone.
func (r *Repository) ListAudit(ctx context.Context) ([]string, error) {
	infos, err := r.listKeys(ctx, prefixAudit)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(infos))
	for _, i := range infos {
		id := strings.TrimPrefix(i.Key, prefixAudit)
		stamp, _, _ := strings.Cut(id, "-")
		if _, err := time.Parse(auditStamp, stamp); err != nil || checkID("audit id", id, "/") != nil {
			return nil, fmt.Errorf("list audit entries: %w: %s is not STARTED-xxxxxxxx", ErrCorrupt, i.Key)
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// ReadAudit loads one audit entry by id.
func (r *Repository) ReadAudit(ctx context.Context, id string) (AuditEntry, error) {
	var e AuditEntry
	key := auditKey(id)
	if err := r.getBSON(ctx, key, KindAudit, &e); err != nil {
		return e, err
	}
	if e.ID != id {
		return e, fmt.Errorf("decode object %s: %w: holds audit entry %s", key, ErrCorrupt, e.ID)
	}
	return e, nil
}

// ReadAuditEntries loads the newest limit audit entries (<= 0: all),
// newest first.
func (r *Repository) ReadAuditEntries(ctx context.Context, limit int) ([]AuditEntry, error) {
	ids, err := r.ListAudit(ctx)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = len(ids)
	}
	out := []AuditEntry{}
	for i := len(ids) - 1; i >= 0 && len(out) < limit; i-- {
		e, err := r.ReadAudit(ctx, ids[i])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// ReadAuditRecord reads and checks an audit entry by key (verify
// --read-data).
func (r *Repository) ReadAuditRecord(ctx context.Context, key string) error {
	id, ok := strings.CutPrefix(key, prefixAudit)
	if !ok {
		return fmt.Errorf("read audit entry %s: %w: not under %s", key, ErrCorrupt, prefixAudit)
	}
	_, err := r.ReadAudit(ctx, id)
	return err
}
