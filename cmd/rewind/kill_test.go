package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// envKillSeed replays TestKill9DuringSnapshotPruneRestore's kill moments.
const envKillSeed = "REWIND_KILL_SEED"

// `rewind snapshot`, `rewind prune` and `rewind restore` are killed with
// SIGKILL at seeded random moments. After each kill the repository stays
// healthy (`verify --read-data` exits 0) and the same command run again
// succeeds. A killed restore leaves the target partly written: the next
// run without --drop refuses (the target's collections exist), and with
// --drop gives exactly the source's state (the oracle's mark).
func TestKill9DuringSnapshotPruneRestore(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(envKillSeed); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", envKillSeed, s, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, envKillSeed, seed)
	rng := rand.New(rand.NewPCG(seed, 17))
	ctx := context.Background()
	src := testserver.Start(t)
	db := src.DB("kill")
	pad := strings.Repeat("p", 4<<10)
	for c := range 3 {
		var docs []any
		for i := range 1500 { // ~6 MiB per collection: the commands take about a second
			docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "c", Value: c}, {Key: "pad", Value: pad}})
		}
		if _, err := src.Client().Database(db).Collection(fmt.Sprintf("c%d", c)).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	if code, _, stderr := cli(t, "init", "--repo", url); code != 0 {
		t.Fatal(stderr)
	}
	// A first snapshot (an empty repository is not "healthy": verify
	// says nothing is restorable), then one killed, then its re-run: prune
	// (window 1 s, no grace) then deletes the first, the oplog before the
	// last and the killed snapshot's chunks.
	snapshot := []string{"snapshot", "--source", src.URI(), "--repo", url}
	mustRun(t, snapshot...)
	killAt(t, rng, 1500*time.Millisecond, snapshot...)
	healthy(t, url)
	mustRun(t, snapshot...)
	time.Sleep(1100 * time.Millisecond) // the condition is the clock itself: the window is 1 s
	prune := []string{"prune", "--repo", url, "--restore-window", "1s", "--grace", "0s"}
	killAt(t, rng, 120*time.Millisecond, prune...) // prune takes about 0.1 s here
	healthy(t, url)
	mustRun(t, prune...)
	healthy(t, url)

	mark := oracle.Mark{}
	state, err := oracle.Snapshot(ctx, src.Client(), oracle.Filter{Include: []string{db}})
	if err != nil {
		t.Fatal(err)
	}
	mark.State = state
	dst := testserver.Start(t)
	restore := []string{"restore", "--repo", url, "--target", dst.URI(), "--to", "latest", "--ns", db}
	killAt(t, rng, 1500*time.Millisecond, restore...)
	healthy(t, url)
	// The server goes on applying the insert the killed process had sent
	// (seen here for up to a second after the kill): a --drop re-run
	// started at once can meet it (E11000 while loading). README says to
	// wait for the target to be quiet; so does the test.
	waitQuiet(t, dst.Client().Database(db), 3)
	code, out, stderr := runRewind(t, restore...)
	if code == 0 {
		// The kill came before the restore wrote anything, or after it
		// ended: the target is then empty or complete.
		t.Logf("restore after the kill succeeded without --drop:\n%s", out)
	} else if t.Logf("restore after the kill: exit %d: %s", code, stderr); !strings.Contains(stderr, "--drop") {
		t.Fatalf("restore after the kill: exit %d without naming --drop:\n%s%s", code, out, stderr)
	}
	mustRun(t, append(restore, "--drop")...)
	if err := oracle.Compare(ctx, dst.Client(), mark, oracle.Filter{Include: []string{db}}); err != nil {
		t.Fatalf("restore --drop after the kill: %v", err)
	}
}

// waitQuiet waits until the document counts of collections c0..c(n-1)
// of d stay the same for half a second.
func waitQuiet(t *testing.T, d *mongo.Database, n int) {
	t.Helper()
	counts := func() string {
		var out []string
		for c := range n {
			k, err := d.Collection(fmt.Sprintf("c%d", c)).CountDocuments(context.Background(), bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, strconv.FormatInt(k, 10))
		}
		return strings.Join(out, ",")
	}
	prev := counts()
	for deadline := time.Now().Add(30 * time.Second); ; prev = counts() {
		time.Sleep(500 * time.Millisecond)
		if counts() == prev {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target's counts still change 30 s after the kill: %s", prev)
		}
	}
}

// killAt starts rewind with args and kills it with SIGKILL after a random
// delay below upTo (it may finish first; the log says which).
func killAt(t *testing.T, rng *rand.Rand, upTo time.Duration, args ...string) {
	t.Helper()
	delay := time.Duration(rng.Int64N(int64(upTo)))
	cmd := exec.Command(testbin.Rewind(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Logf("rewind %s finished (%v) before the kill at %s", args[0], err, delay)
	case <-time.After(delay):
		_ = cmd.Process.Kill()
		<-done
		t.Logf("rewind %s killed after %s", args[0], delay)
	}
}

// healthy runs `rewind verify --read-data`, which must exit 0.
func healthy(t *testing.T, url string) {
	t.Helper()
	if code, out, stderr := runRewind(t, "verify", "--repo", url, "--read-data"); code != 0 {
		t.Fatalf("verify --read-data after a kill: exit %d\n%s%s", code, out, stderr)
	}
}

func mustRun(t *testing.T, args ...string) {
	t.Helper()
	if code, out, stderr := runRewind(t, args...); code != 0 {
		t.Fatalf("rewind %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
	}
}

// runRewind runs the rewind binary (a fresh process: no state of a killed
// one survives but what it left in the repository and the target).
func runRewind(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(testbin.Rewind(t), args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run rewind %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), stderr.String()
}
