package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/repo"
)

// RouterCommand runs one command on a cluster's mongos (admin database)
// and returns its reply. It is the one function through which a cluster
// snapshot talks to the balancer.
type RouterCommand func(ctx context.Context, cmd bson.D) (bson.Raw, error)

// RouterCommandOf sends commands through a client connected to mongos.
func RouterCommandOf(client *mongo.Client) RouterCommand {
	return func(ctx context.Context, cmd bson.D) (bson.Raw, error) {
		return client.Database("admin").RunCommand(ctx, cmd).Raw()
	}
}

// DefaultBalancerTimeout bounds balancerStop, the wait for a running
// migration to end, and balancerStart.
const DefaultBalancerTimeout = 10 * time.Minute

// balancer stops a cluster's balancer for a snapshot and re-enables it in
// every case: the record (repo.BalancerRecord) is written before
// balancerStop and removed only after balancerStart succeeded, so a
// snapshot or agent that finds it re-enables the balancer first.
type balancer struct {
	run     RouterCommand // nil: no mongos was given
	repo    *repo.Repository
	timeout time.Duration
	log     *slog.Logger
	// recorded: this snapshot wrote the record; restart must run.
	recorded bool
}

// recover re-enables a balancer that an interrupted snapshot stopped.
func (b *balancer) recover(ctx context.Context) error {
	rec, ok, err := b.repo.ReadBalancerRecord(ctx)
	if err != nil {
		return fmt.Errorf("read the balancer record: %w", err)
	}
	if !ok {
		return nil
	}
	if b.run == nil {
		b.log.Warn("a cluster snapshot stopped the balancer and did not re-enable it (it was interrupted); no mongos is given here: run sh.startBalancer() through mongos, or take the snapshot with --source MONGOS",
			"stopped", rec.Stopped.Format(time.RFC3339), "snapshot", rec.Snapshot, "host", rec.Host)
		return nil
	}
	b.log.Warn("re-enabling the balancer that an interrupted cluster snapshot stopped",
		"stopped", rec.Stopped.Format(time.RFC3339), "snapshot", rec.Snapshot, "host", rec.Host, "pid", rec.PID)
	b.recorded = true
	return b.restart(ctx)
}

// stop stops the balancer and waits until no migration runs. It returns
// the state the cluster manifest records. On error the caller still calls
// restart (balancerStop may have turned it off before failing).
func (b *balancer) stop(ctx context.Context, snapshotID string) (string, error) {
	if b.run == nil {
		b.log.Warn("no mongos given: the balancer is not stopped by rewind; stop it yourself (sh.stopBalancer()) for the cluster snapshot, or chunk migrations during the copy make the routing metadata disagree with the data at T")
		return repo.BalancerUnknown, nil
	}
	st, err := b.run(ctx, bson.D{{Key: "balancerStatus", Value: 1}})
	if err != nil {
		return "", fmt.Errorf("read the balancer's state (balancerStatus): %w", err)
	}
	if mode, _ := st.Lookup("mode").StringValueOK(); mode == "off" {
		b.log.Info("the balancer is off already; the snapshot leaves it off")
		return repo.BalancerWasOff, nil
	}
	host, _ := os.Hostname()
	rec := repo.BalancerRecord{Stopped: time.Now(), Snapshot: snapshotID, Host: host, PID: os.Getpid()}
	if err := b.repo.WriteBalancerRecord(ctx, rec); err != nil {
		return "", fmt.Errorf("record that the snapshot stops the balancer: %w", err)
	}
	b.recorded = true
	b.log.Info("stopping the balancer for the cluster snapshot")
	cmd := bson.D{{Key: "balancerStop", Value: 1}, {Key: "maxTimeMS", Value: b.timeout.Milliseconds()}}
	if _, err := b.run(ctx, cmd); err != nil {
		return "", fmt.Errorf("stop the balancer (balancerStop): %w", err)
	}
	return repo.BalancerStopped, b.waitIdle(ctx)
}

// waitIdle polls balancerStatus until no migration is in progress.
func (b *balancer) waitIdle(ctx context.Context) error {
	deadline := time.Now().Add(b.timeout)
	for {
		st, err := b.run(ctx, bson.D{{Key: "balancerStatus", Value: 1}})
		if err != nil {
			return fmt.Errorf("read the balancer's state (balancerStatus): %w", err)
		}
		if busy, _ := st.Lookup("inProgress").BooleanOK(); !busy {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("a chunk migration still runs %s after the balancer was stopped: retry later, or raise the balancer timeout", b.timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// restart re-enables the balancer this snapshot (or an interrupted one)
// stopped, within the timeout even when ctx has ended, then removes the
// record. A failure keeps the record, so the next snapshot or agent start
// retries.
func (b *balancer) restart(ctx context.Context) error {
	if !b.recorded {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	defer cancel()
	cmd := bson.D{{Key: "balancerStart", Value: 1}, {Key: "maxTimeMS", Value: b.timeout.Milliseconds()}}
	if _, err := b.run(rctx, cmd); err != nil {
		b.log.Error("re-enabling the balancer failed; the next cluster snapshot or agent start retries, or run sh.startBalancer() through mongos", "err", err)
		return fmt.Errorf("re-enable the balancer (balancerStart): %w", err)
	}
	if err := b.repo.DeleteBalancerRecord(rctx); err != nil {
		return fmt.Errorf("remove the balancer record: %w", err)
	}
	b.recorded = false
	b.log.Info("re-enabled the balancer")
	return nil
}
