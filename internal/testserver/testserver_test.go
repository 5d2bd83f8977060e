package testserver_test

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/testserver"
)

func TestRestartKeepsDataAndOplog(t *testing.T) {
	s := testserver.Start(t)
	if s.External() {
		t.Log("external server: Stop/Restart are not possible, checking writes only")
	}
	ctx := context.Background()
	coll := s.Client().Database(s.DB("keep")).Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "x", Value: "before"}}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if s.External() {
		return
	}
	oplogBefore := countOplog(t, s)
	if oplogBefore == 0 {
		t.Fatal("oplog is empty after an insert: local.oplog.rs was not created")
	}
	oldURI, oldPID := s.URI(), s.PID()

	s.Stop()
	if alive(oldPID) {
		t.Fatalf("pid %d still alive after Stop", oldPID)
	}
	s.Restart()
	if s.URI() != oldURI {
		t.Fatalf("URI changed across restart: %s -> %s", oldURI, s.URI())
	}
	if s.PID() == oldPID {
		t.Fatalf("pid did not change across restart")
	}
	var got bson.Raw
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got); err != nil {
		t.Fatalf("find after restart: %v", err)
	}
	if x := got.Lookup("x").StringValue(); x != "before" {
		t.Fatalf("after restart x = %q, want %q", x, "before")
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}}); err != nil {
		t.Fatalf("insert after restart: %v", err)
	}
	if n := countOplog(t, s); n != oplogBefore+1 {
		t.Fatalf("oplog has %d entries after restart and one insert, want %d", n, oplogBefore+1)
	}
}

// TestNoProcessLeft starts a server in a subtest and checks that its process
// is gone once the subtest's cleanups ran.
func TestNoProcessLeft(t *testing.T) {
	if testserverExternal() {
		t.Log("external server: no process to check")
		return
	}
	var pid int
	t.Run("server", func(t *testing.T) {
		s := testserver.Start(t)
		pid = s.PID()
		if !alive(pid) {
			t.Fatalf("server pid %d not alive while the test runs", pid)
		}
	})
	if pid == 0 {
		t.Fatal("no pid recorded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("server pid %d still alive after cleanup", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEnsureBinaryIsCached(t *testing.T) {
	ctx := context.Background()
	a, err := testserver.EnsureBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b, err := testserver.EnsureBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("EnsureBinary returned %s then %s", a, b)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cached EnsureBinary took %s", d)
	}
}

func countOplog(t *testing.T, s *testserver.Server) int64 {
	t.Helper()
	n, err := s.Client().Database("local").Collection("oplog.rs").CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatalf("count oplog: %v", err)
	}
	return n
}

// alive reports whether a process with this pid exists (the harness reaps its
// children, so a stopped server does not linger as a zombie).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}

func testserverExternal() bool { return os.Getenv(testserver.EnvURI) != "" }
