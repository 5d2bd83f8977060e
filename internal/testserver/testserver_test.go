package testserver_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
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

	start := time.Now()
	s.Stop()
	if alive(oldPID) {
		t.Fatalf("pid %d still alive after Stop", oldPID)
	}
	t.Logf("graceful stop took %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	s.Restart()
	t.Logf("restart to a working client took %s", time.Since(start).Round(time.Millisecond))
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

	// A crash (SIGKILL) loses nothing acknowledged either.
	pid := s.PID()
	s.Kill()
	if alive(pid) {
		t.Fatalf("pid %d alive after Kill", pid)
	}
	s.Restart()
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 2 {
		t.Fatalf("after kill and restart: %d documents (%v), want 2", n, err)
	}
	if n := countOplog(t, s); n != oplogBefore+1 {
		t.Fatalf("oplog has %d entries after kill and restart, want %d", n, oplogBefore+1)
	}
}

// TestNoProcessLeft starts a server in a subtest and checks that its process
// is gone once the subtest's cleanups ran.
func TestNoProcessLeft(t *testing.T) {
	if testserverExternal() {
		t.Skip("external server: there is no server process to check")
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

// alive reports whether a process with this pid exists and is not a zombie
// (an orphan is reaped by whatever init the machine has, maybe late).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name: "pid (comm) S ...".
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// TestServerDiesWithTestBinary kills a test binary that has a server running
// and checks the server goes too: Pdeathsig, for test binaries that crash or
// time out without running their cleanups.
func TestServerDiesWithTestBinary(t *testing.T) {
	if os.Getenv("REWIND_TESTSERVER_HELPER") == "1" {
		s := testserver.Start(t)
		fmt.Printf("PID %d\n", s.PID())
		time.Sleep(time.Minute)
		return
	}
	if testserverExternal() {
		t.Skip("external server: there is no server process to check")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithTestBinary$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REWIND_TESTSERVER_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	var pid int
	if _, err2 := fmt.Sscanf(line, "PID %d", &pid); err2 != nil || pid == 0 {
		t.Fatalf("helper printed %q (%v, %v)", line, err, err2)
	}
	if !alive(pid) {
		t.Fatalf("server pid %d not alive under the helper", pid)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("server pid %d outlived its killed test binary", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testserverExternal() bool { return os.Getenv(testserver.EnvURI) != "" }
