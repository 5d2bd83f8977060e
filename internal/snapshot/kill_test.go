package snapshot_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testbin"
)

// `rewind snapshot` killed with SIGKILL mid-copy leaves no snapshot (its
// chunks stay under its own data prefix) and a re-run succeeds, its dead
// locks notwithstanding.
func TestKilledSnapshotProcess(t *testing.T) {
	bin := testbin.Rewind(t)
	e := newEnv(t)
	ctx := context.Background()
	db := e.srv.DB("kill")
	pad := strings.Repeat("k", 64<<10)
	for c := range 2 {
		var docs []any
		for i := range 190 { // ~12 MiB per collection: more than one 8 MiB chunk
			docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: pad}})
		}
		_, err := e.srv.Client().Database(db).Collection(fmt.Sprintf("c%d", c)).InsertMany(ctx, docs)
		must(t, err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "snapshot", "--source", e.srv.URI(), "--repo", e.url, "--parallel", "2")
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for dataObjects(t, e) == 0 {
		select {
		case err := <-done:
			t.Fatalf("rewind snapshot ended (%v) before it was killed; make the data larger\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rewind snapshot stored no chunk within 2 minutes\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	must(t, cmd.Process.Kill())
	<-done
	snaps, err := e.repo.ListSnapshots(ctx, "")
	must(t, err)
	if len(snaps) != 0 {
		t.Fatalf("a killed snapshot is listed: %v", snaps)
	}
	m, err := e.take(snapshot.Options{})
	must(t, err)
	if got := byName(m); len(got) != 2 || got[db+".c0"].Count != 190 || got[db+".c1"].Count != 190 {
		t.Fatalf("re-run snapshot holds %v", m.Collections)
	}
}

func dataObjects(t *testing.T, e *env) int {
	n := 0
	must(t, e.repo.Store().List(context.Background(), "data/", func(storage.Info) error { n++; return nil }))
	return n
}
