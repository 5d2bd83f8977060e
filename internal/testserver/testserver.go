// Package testserver gives integration tests a real MongoDB wire-protocol
// server: the rewind-testserver binary (FerretDB embedded with SQLite and an
// oplog), built once into a cache and started per test, or the real replica set
// named by $REWIND_TEST_MONGODB_URI.
//
// Every FerretDB quirk the tests must work around lives here (see Quirks and
// docs/TESTING.md), never in product code.
package testserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Options tune a started server. The zero value is fine.
type Options struct {
	// OplogSizeMB is the size of local.oplog.rs (default 100). FerretDB does
	// not enforce it: simulate rollover by deleting the oldest entries.
	OplogSizeMB int
	// TLS makes the server listen with TLS only, with TLS's server
	// certificate; URI then carries tls=true and tlsCAFile. Against an
	// external server ($REWIND_TEST_MONGODB_URI) the test is skipped: it
	// runs with certificates of its own, not ones the test made.
	TLS *Certs
	// RequireClientCert (with TLS) makes the server refuse clients without
	// a certificate signed by TLS's CA; URI then also carries
	// tlsCertificateKeyFile and tlsCertificateKeyFilePassword.
	RequireClientCert bool
}

// Server is one test server: a process this package started, or an external
// deployment. Its methods fail the test on error.
type Server struct {
	t        testing.TB
	uri      string
	prefix   string
	external bool
	ferret   bool
	proc     *process // nil when external
	client   *mongo.Client
}

// Start starts a fresh server for the test and stops it in t.Cleanup.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, prefix: newPrefix()}
	if uri := os.Getenv(EnvURI); uri != "" {
		if opts.TLS != nil {
			t.Skip("testserver: a TLS test needs a server started with the certificates it made; $" + EnvURI + " names a deployment that has its own")
		}
		s.uri, s.external = uri, true
	} else {
		s.startProcess(opts)
	}
	s.client = s.connect()
	t.Cleanup(s.cleanup)
	s.ferret = s.detectFerretDB()
	return s
}

func (s *Server) startProcess(opts Options) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := EnsureBinary(ctx)
	if err != nil {
		s.t.Fatalf("testserver: %v", err)
	}
	size := opts.OplogSizeMB
	if size <= 0 {
		size = 100
	}
	p := &process{bin: bin, dir: s.t.TempDir(), oplogMB: size, extra: tlsArgs(opts)}
	if err := p.start("127.0.0.1:0"); err != nil {
		s.t.Fatalf("testserver: %v", err)
	}
	s.proc, s.uri = p, tlsURI(p.uri, opts)
}

func (s *Server) connect() *mongo.Client {
	c, err := mongo.Connect(options.Client().ApplyURI(s.uri).SetTimeout(2 * time.Minute))
	if err != nil {
		s.t.Fatalf("testserver: connect to %s: %v", s.uri, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Ping(ctx, nil); err != nil {
		s.t.Fatalf("testserver: ping %s: %v%s", s.uri, err, s.stderrTail())
	}
	return c
}

func (s *Server) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.external {
		s.dropPrefixed(ctx)
	}
	dctx := ctx
	if s.proc != nil && !s.proc.running() {
		// A server that is down (Stop, Kill) cannot end the client's
		// sessions: Disconnect would wait for it until its context ends.
		var dcancel context.CancelFunc
		dctx, dcancel = context.WithTimeout(ctx, 100*time.Millisecond)
		defer dcancel()
	}
	s.client.Disconnect(dctx)
	if s.proc != nil {
		s.proc.kill()
	}
}

// dropPrefixed removes the databases this Server handed out, so tests sharing
// one external deployment leave nothing behind.
func (s *Server) dropPrefixed(ctx context.Context) {
	names, err := s.client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		s.t.Errorf("testserver: list databases for cleanup: %v", err)
		return
	}
	for _, name := range names {
		if strings.HasPrefix(name, s.prefix) {
			if err := s.client.Database(name).Drop(ctx); err != nil {
				s.t.Errorf("testserver: drop %s: %v", name, err)
			}
		}
	}
}

// URI is the connection string of the server.
func (s *Server) URI() string { return s.uri }

// Host is the server's HOST:PORT, as a shard's config.shards document
// names it.
func (s *Server) Host() string {
	rest := strings.TrimPrefix(strings.TrimPrefix(s.uri, "mongodb://"), "mongodb+srv://")
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	return rest
}

// Client is a v2 driver client connected to the server, closed in t.Cleanup.
func (s *Server) Client() *mongo.Client { return s.client }

// Prefix is this Server's unique database-name prefix: tests name their
// databases with it (see DB) so that they stay independent on a shared
// deployment; the external case drops every database with it at cleanup.
func (s *Server) Prefix() string { return s.prefix }

// DB returns the database name for name under this Server's prefix.
func (s *Server) DB(name string) string { return s.prefix + name }

// External reports whether the Server is the deployment from $REWIND_TEST_MONGODB_URI.
func (s *Server) External() bool { return s.external }

// FerretDB reports whether the server is FerretDB (buildInfo has ferretdbVersion).
func (s *Server) FerretDB() bool { return s.ferret }

// PID is the server's process id (0 for an external server).
func (s *Server) PID() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.pid()
}

// Dir is the server's data directory ("" for an external server).
func (s *Server) Dir() string {
	if s.proc == nil {
		return ""
	}
	return s.proc.dir
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s). It fails the test
// against an external server, which cannot be stopped from here.
func (s *Server) Stop() {
	s.t.Helper()
	if s.proc == nil {
		s.t.Fatal("testserver: Stop is not possible against an external server ($" + EnvURI + ")")
	}
	if err := s.proc.stop(); err != nil {
		s.t.Fatalf("testserver: stop: %v%s", err, s.stderrTail())
	}
}

// Kill ends the server at once with SIGKILL, as a crash would (Stop is
// graceful and takes about 3 s while clients are connected: FerretDB gives
// them time to disconnect). Restart brings it back.
func (s *Server) Kill() {
	s.t.Helper()
	if s.proc == nil {
		s.t.Fatal("testserver: Kill is not possible against an external server ($" + EnvURI + ")")
	}
	s.proc.kill()
	if s.proc.running() {
		s.t.Fatalf("testserver: pid %d survived SIGKILL", s.proc.pid())
	}
}

// Restart stops the server if it runs and starts it again on the same data
// directory and port, then waits until Client works again. It fails the test
// against an external server.
func (s *Server) Restart() {
	s.t.Helper()
	if s.proc == nil {
		s.t.Fatal("testserver: Restart is not possible against an external server ($" + EnvURI + ")")
	}
	if s.proc.running() {
		s.Stop()
	}
	if err := s.proc.start(s.proc.addr); err != nil {
		s.t.Fatalf("testserver: restart: %v", err)
	}
	// The client's pool holds dead connections; the first operations fail and
	// clear it, so retry until one goes through.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.client.Ping(ctx, nil)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("testserver: ping after restart: %v%s", err, s.stderrTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) stderrTail() string {
	if s.proc == nil {
		return ""
	}
	return s.proc.stderrTail()
}

func (s *Server) detectFerretDB() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := s.client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Raw()
	if err != nil {
		s.t.Fatalf("testserver: buildInfo: %v", err)
	}
	_, err = raw.LookupErr("ferretdbVersion")
	return err == nil
}

// newPrefix makes a database-name prefix that is unique across processes and
// valid on FerretDB (^[a-zA-Z0-9_-]{1,63}$), leaving room for a name.
func newPrefix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "rw" + hex.EncodeToString(b) + "_"
}
