package repo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestAuditEntryNeverHoldsSecrets: whatever the caller passes, the stored
// entry (read back, and its raw bytes in an unencrypted repository) holds
// the target without its password, and an error quoting the password is
// scrubbed.
func TestAuditEntryNeverHoldsSecrets(t *testing.T) {
	ctx := WithActor(context.Background(), Actor{Via: "api", Token: TokenFingerprint("tok-secret-1234"), Remote: "10.0.0.9:5000"})
	r, st := newRepo(t, nil, "none")
	const target = "mongodb://admin:hunter2pass@db1:27017/?authSource=admin"
	a, err := r.BeginAudit(ctx, AuditEntry{Action: AuditRestore, Target: target, Namespaces: []string{"shop.orders"}, To: "2026-11-30T01:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Finish(ctx, errors.New("connect to mongodb://admin:hunter2pass@db1:27017: refused"), ""); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadAuditEntries(ctx, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("entries: %+v, %v", got, err)
	}
	e := got[0]
	if strings.Contains(e.Target, "hunter2pass") || strings.Contains(e.Outcome, "hunter2pass") || !strings.Contains(e.Target, "db1:27017") {
		t.Errorf("entry holds the password or lost the host: target %q outcome %q", e.Target, e.Outcome)
	}
	if !strings.HasPrefix(e.Outcome, "failed: connect to") {
		t.Errorf("outcome %q", e.Outcome)
	}
	host, _ := os.Hostname()
	if e.Action != AuditRestore || e.Host != host || e.User == "" || e.PID != os.Getpid() || e.Actor.Via != "api" ||
		e.Actor.Remote != "10.0.0.9:5000" || e.Ended.IsZero() || e.To != "2026-11-30T01:00:00Z" || len(e.Namespaces) != 1 {
		t.Errorf("entry %+v", e)
	}
	if !strings.HasPrefix(e.Actor.Token, "sha256:") || len(e.Actor.Token) != len("sha256:")+8 {
		t.Errorf("token fingerprint %q", e.Actor.Token)
	}
	raw := st.raw(auditKey(e.ID))
	for _, secret := range []string{"hunter2pass", "tok-secret-1234"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("stored object holds %q", secret)
		}
	}
}

// TestAuditStartedSurvivesAKill: the entry is written before the action,
// so an action cut short (the process killed before Finish) still shows.
func TestAuditStartedSurvivesAKill(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, newIdentity(t), "")
	if _, err := r.BeginAudit(ctx, AuditEntry{Action: AuditPrune}); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadAuditEntries(ctx, 0)
	if err != nil || len(got) != 1 || got[0].Outcome != AuditStarted || got[0].Actor.Via != "rewind" {
		t.Fatalf("entries: %+v, %v", got, err)
	}
}

// TestAuditNewestFirstAndLimit: ReadAuditEntries answers the newest first.
func TestAuditNewestFirstAndLimit(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	start := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	for i, action := range []string{AuditRestore, AuditUndo, AuditPrune} {
		if _, err := r.BeginAudit(ctx, AuditEntry{Action: action, Started: start.Add(time.Duration(i) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.ReadAuditEntries(ctx, 2)
	if err != nil || len(got) != 2 || got[0].Action != AuditPrune || got[1].Action != AuditUndo {
		t.Fatalf("newest two: %+v, %v", got, err)
	}
}

// TestAuditLockBreaks: rewind unlock and a takeover of a stale lock each
// leave an entry naming the lock's holder.
func TestAuditLockBreaks(t *testing.T) {
	ctx := WithActor(context.Background(), Actor{Via: "rewind unlock"})
	r, _ := newRepo(t, nil, "")
	c := &clock{now: time.Now()}
	if _, err := r.Lock(ctx, lockOpts(c, LockExclusive, "agent", "deadhost")); err != nil {
		t.Fatal(err)
	}
	c.Add(2 * time.Minute)
	nl, err := r.Lock(ctx, lockOpts(c, LockExclusive, "prune", "newhost"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.BreakLocks(ctx, false, 0, c.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadAuditEntries(ctx, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("entries: %+v, %v", got, err)
	}
	unlock, takeover := got[0], got[1]
	if unlock.Action != AuditUnlock || !strings.Contains(unlock.Detail, "prune lock "+nl.Info().ID) || unlock.Outcome != AuditOK {
		t.Errorf("unlock entry %+v", unlock)
	}
	if takeover.Action != AuditLockBreak || !strings.Contains(takeover.Detail, "agent lock") || !strings.Contains(takeover.Detail, "host deadhost") ||
		!strings.Contains(takeover.Detail, "exclusive lock for prune") {
		t.Errorf("takeover entry %+v", takeover)
	}
}
