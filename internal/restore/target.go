package restore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/source"
)

// Target is the deployment a restore writes to, connected, with what rewind
// learned about its server when it connected.
type Target struct {
	Client *mongo.Client
	Server Server
	owned  bool // Connect made the client: Close disconnects it
}

// Server is what a restore needs to know about the target's server, asked
// once (buildInfo) when connecting.
type Server struct {
	Version  string // buildInfo's version, "8.0.4"; FerretDB answers the MongoDB version it mimics
	FerretDB bool   // buildInfo carries ferretdbVersion
	// BypassEmptyTsReplacement: the server takes the bypassEmptyTsReplacement
	// field on insert, update and delete, and the restore's writes send it so
	// a top-level Timestamp(0, 0) is kept as written (see emptyTsBypass).
	BypassEmptyTsReplacement bool
	// Mongos: the target is a sharded cluster's mongos (hello answers msg
	// "isdbgrid"). A restore then creates each database on its old primary
	// shard and shards each collection with its old key before loading.
	Mongos bool
}

// Connect connects to the target deployment at uri, waits up to timeout for
// it to answer, and asks its server what it is. Errors say what to check and
// never hold the URI's password.
func Connect(ctx context.Context, uri string, timeout config.Duration) (*Target, error) {
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	shown := redact.URL(uri)
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(timeout.Std()))
	if advice := source.TLSAdvice(err); advice != "" {
		return nil, scrubbed(uri, fmt.Errorf("connect to target %s: %s (%w)", shown, advice, err))
	}
	if err != nil {
		return nil, scrubbed(uri, fmt.Errorf("connect to target %s: %w; check the connection string (mongodb://host:port/...)", shown, err))
	}
	if err := client.Ping(ctx, nil); err != nil {
		disconnect(ctx, client)
		if advice := source.TLSAdvice(err); advice != "" {
			return nil, scrubbed(uri, fmt.Errorf("connect to target %s: %s (%w)", shown, advice, err))
		}
		return nil, scrubbed(uri, fmt.Errorf("connect to target %s: %w; check the connection string, the credentials and that the deployment is up", shown, err))
	}
	t, err := Use(ctx, client)
	if err != nil {
		disconnect(ctx, client)
		return nil, scrubbed(uri, err)
	}
	t.owned = true
	return t, nil
}

// Use wraps a client someone else connected (a trial restore's scratch
// deployment, a test's server) and asks its server what it is.
func Use(ctx context.Context, client *mongo.Client) (*Target, error) {
	var info bson.Raw
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return nil, fmt.Errorf("ask the target's server its version (buildInfo): %w", err)
	}
	var hello bson.Raw
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return nil, fmt.Errorf("ask the target's server what it is (hello): %w", err)
	}
	s := serverOf(info)
	s.Mongos = cluster.IsRouter(hello)
	return &Target{Client: client, Server: s}, nil
}

// Close disconnects a client Connect made (given 10 s, even when ctx is
// already done); a client passed to Use stays its owner's.
func (t *Target) Close(ctx context.Context) {
	if t != nil && t.owned {
		disconnect(ctx, t.Client)
	}
}

func disconnect(ctx context.Context, client *mongo.Client) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = client.Disconnect(ctx)
}

func serverOf(info bson.Raw) Server {
	s := Server{FerretDB: info.Lookup("ferretdbVersion").Type != 0}
	s.Version, _ = info.Lookup("version").StringValueOK()
	v := versionArray(info)
	s.BypassEmptyTsReplacement = emptyTsBypass(v, s.FerretDB)
	return s
}

// versionArray is buildInfo's versionArray, or the version string parsed.
func versionArray(info bson.Raw) [3]int {
	var v [3]int
	if arr, ok := info.Lookup("versionArray").ArrayOK(); ok {
		vals, _ := arr.Values()
		for i := 0; i < len(vals) && i < 3; i++ {
			n, _ := vals[i].AsInt64OK()
			v[i] = int(n)
		}
		return v
	}
	s, _ := info.Lookup("version").StringValueOK()
	s, _, _ = strings.Cut(s, "-") // 8.0.0-rc1
	for i, part := range strings.SplitN(s, ".", 3) {
		fmt.Sscanf(part, "%d", &v[i])
	}
	return v
}

// emptyTsBypass reports whether a server takes bypassEmptyTsReplacement.
// MongoDB replaces a Timestamp(0, 0) in a top-level field (other than _id)
// with the current time on insert and on a replacement, unless the write
// says bypassEmptyTsReplacement (SERVER-88750, as mongorestore does since
// TOOLS-3540). The field came with 8.0 and was backported to 7.0.13,
// 6.0.17 and 5.0.29 only (no rapid release has it); older servers refuse it
// as an unknown field (strict command parsing). It sits in the common base
// of the insert, update and delete commands, so a server that has it takes
// it on a delete too. FerretDB 1.24 refuses it ("insert: unknown field
// \"bypassEmptyTsReplacement\"", measured) and stores an empty timestamp as
// written anyway, so FerretDB is never sent it.
func emptyTsBypass(v [3]int, ferretDB bool) bool {
	switch {
	case ferretDB:
		return false
	case v[0] >= 8:
		return true
	case v[1] != 0:
		return false
	}
	switch v[0] {
	case 7:
		return v[2] >= 13
	case 6:
		return v[2] >= 17
	case 5:
		return v[2] >= 29
	}
	return false
}

// scrubbed removes the URI and its password from an error's text, in case
// a driver message quotes them (none was seen to); errors.Is and errors.As
// still see the cause.
func scrubbed(uri string, err error) error {
	msg := redact.Error(err, uri)
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
