package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// The newcomer's report: a brand-new deployment (empty oplog), `rewind
// init`, `rewind agent` with its defaults (it takes a base snapshot of the
// empty deployment), one insert into shop.orders. Every restore of the
// whole deployment works and restores the collection the oplog creates:
// the dry run, a real restore to latest and to the insert's second, and
// verify's trial restore. The restore point of the base snapshot itself
// held no collection: restoring it succeeds, says so and creates nothing.
func TestRestoreNewDeployment(t *testing.T) {
	srv := testserver.Start(t)
	if srv.External() {
		t.Skip("needs an empty oplog: a real replica set's oplog is never empty (replSetInitiate logs an entry)")
	}
	ctx := context.Background()
	if ts, err := oracle.LastOplogTS(ctx, srv.Client()); err == nil {
		t.Fatalf("the new test server's oplog already holds %s", ts)
	}
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	if code, _, stderr := cli(t, "init", "--repo", url); code != 0 {
		t.Fatal(stderr)
	}
	startAgentBinary(t, "--repo", url, "--source", srv.URI(), "--spool-dir", t.TempDir(), "--api-listen", "")
	var base listJSON
	waitFor(t, 2*time.Minute, "the agent's base snapshot", func() bool {
		base = listRepo(t, url)
		return len(base.Shards) == 1 && len(base.Shards[0].Snapshots) == 1
	})
	if snap := base.Shards[0].Snapshots[0]; snap.Collections != 0 {
		t.Fatalf("the base snapshot of an empty deployment holds %d collections", snap.Collections)
	}

	shop := srv.DB("shop")
	if _, err := srv.Client().Database(shop).Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "sku", Value: "a-1"}}); err != nil {
		t.Fatal(err)
	}
	inserted, err := oracle.LastOplogTS(ctx, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the insert is durable", func() bool {
		to := latestTo(listRepo(t, url))
		return to != nil && !to.Before(inserted)
	})

	code, out, stderr := cli(t, "restore", "--repo", url, "--to", "latest", "--dry-run")
	if code != 0 || !strings.Contains(out, shop+".orders") || !strings.Contains(out, "from oplog") || !strings.Contains(out, "not estimated: add --target") {
		t.Fatalf("dry run of the whole deployment: exit %d\n%s%s", code, out, stderr)
	}
	srv2 := testserver.Start(t)
	second := inserted.Time().UTC().Format(time.RFC3339)
	for _, args := range [][]string{{"--to", "latest"}, {"--to", second, "--drop"}} {
		code, out, stderr := cli(t, append([]string{"restore", "--repo", url, "--target", srv2.URI()}, args...)...)
		if code != 0 {
			t.Fatalf("restore %v: exit %d\n%s%s", args, code, out, stderr)
		}
		var doc bson.M
		if err := srv2.Client().Database(shop).Collection("orders").FindOne(ctx, bson.D{}).Decode(&doc); err != nil || doc["sku"] != "a-1" {
			t.Fatalf("restore %v: the target holds %v (%v), want the inserted order\n%s", args, doc, err, out)
		}
	}

	// The base snapshot's own point: the deployment held nothing then.
	end := base.Shards[0].Snapshots[0].End
	point := optime.Timestamp{T: end.T, I: end.I}.String()
	srv3 := testserver.Start(t)
	code, out, stderr = cli(t, "restore", "--repo", url, "--target", srv3.URI(), "--to", point)
	if code != 0 || !strings.Contains(flat(out), restore.EmptyNote) {
		t.Fatalf("restore of the empty restore point %s: exit %d\n%s%s", point, code, out, stderr)
	}
	if names, err := srv3.Client().ListDatabaseNames(ctx, bson.D{{Key: "name", Value: shop}}); err != nil || len(names) != 0 {
		t.Fatalf("the empty restore point created %v (%v)", names, err)
	}

	code, out, stderr = cli(t, "verify", "--repo", url, "--restore-to", srv3.URI(), "--json")
	var vj verifyJSON
	if code != 0 || json.Unmarshal([]byte(out), &vj) != nil || vj.Trial == nil || len(vj.Trial.Namespaces) != 1 ||
		vj.Trial.Namespaces[0].Namespace != shop+".orders" || vj.Trial.Namespaces[0].Final != 1 {
		t.Fatalf("verify --restore-to: exit %d\n%s%s", code, out, stderr)
	}
}

// startAgentBinary runs `rewind agent` until the test ends, then stops it
// with SIGTERM as a service manager does.
func startAgentBinary(t *testing.T, args ...string) { startAgentBinaryLog(t, io.Discard, args...) }

// startAgentBinaryLog is startAgentBinary with the agent's log (its
// stderr) also written to log (a file, for a test to read while it runs).
func startAgentBinaryLog(t *testing.T, log io.Writer, args ...string) {
	t.Helper()
	cmd := exec.Command(testbin.Rewind(t), append([]string{"agent"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = io.MultiWriter(&stderr, log)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("rewind agent: %v\n%s", err, stderr.String())
			}
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("rewind agent did not stop within 60 s of SIGTERM\n%s", stderr.String())
		}
	})
}

// listRepo is `rewind list --json`.
func listRepo(t *testing.T, url string) listJSON {
	t.Helper()
	code, out, stderr := cli(t, "list", "--repo", url, "--json")
	var l listJSON
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
		t.Fatalf("list --json: exit %d\n%s%s", code, out, stderr)
	}
	return l
}

// latestTo is the newest restore point a listing shows, nil if none.
func latestTo(l listJSON) *optime.Timestamp {
	var best *optime.Timestamp
	for _, sh := range l.Shards {
		for _, w := range sh.Windows {
			if w.To == nil {
				continue
			}
			to := optime.Timestamp{T: w.To.T, I: w.To.I}
			if best == nil || to.After(*best) {
				best = &to
			}
		}
	}
	return best
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
