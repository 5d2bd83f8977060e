// Command rewind-testserver runs a real MongoDB wire-protocol server for
// rewind's tests: FerretDB v1.24 embedded with its SQLite backend, listening on
// loopback TCP, with the capped local.oplog.rs created so every write is
// logged in an oplog, as on a replica set.
//
// It prints its connection string on stdout, one line, once it accepts
// connections, and exits cleanly on SIGTERM or SIGINT. Restarted on the same
// --dir, it keeps its data and its oplog.
//
// It is its own Go module so that FerretDB and the v1 driver it brings never
// become dependencies of the product. See docs/TESTING.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "rewind-testserver:", err)
		os.Exit(1)
	}
}

type flags struct {
	addr     string
	dir      string
	oplogMB  int64
	logLevel string
}

func parseFlags() flags {
	var f flags
	flag.StringVar(&f.addr, "addr", "127.0.0.1:0", "TCP address to listen on (port 0 picks a free port)")
	flag.StringVar(&f.dir, "dir", "", "data directory (default: a temporary directory removed on exit)")
	flag.Int64Var(&f.oplogMB, "oplog-size-mb", 100, "size of the capped local.oplog.rs in MiB (0: no oplog)")
	flag.StringVar(&f.logLevel, "log-level", "error", "FerretDB log level: debug, info, warn or error")
	flag.Parse()
	return f
}

func run() error {
	f := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	dir, cleanup, err := dataDir(f.dir)
	if err != nil {
		return err
	}
	defer cleanup()

	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("parse --log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if host, _, err := net.SplitHostPort(f.addr); err != nil || host == "" {
		return fmt.Errorf("parse --addr %q: want HOST:PORT, for example 127.0.0.1:0", f.addr)
	}

	fdb, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: f.addr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/", // FerretDB wants a directory URI ending with "/"
	})
	if err != nil {
		return fmt.Errorf("start ferretdb: %w", err)
	}

	done := make(chan error, 1)
	go func() { done <- fdb.Run(ctx) }()

	// MongoDBURI blocks until the listener is bound, so the port is known.
	uri := fdb.MongoDBURI() + "?directConnection=true"
	if err := ensureOplog(ctx, uri, f.oplogMB); err != nil {
		stop()
		<-done
		return err
	}
	fmt.Println(uri)

	<-ctx.Done()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("run ferretdb: %w", err)
	}
	return nil
}

// dataDir returns the directory to keep SQLite files in and a function that
// removes it if it was made here.
func dataDir(dir string) (string, func(), error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "rewind-testserver-")
		if err != nil {
			return "", nil, fmt.Errorf("create data directory: %w", err)
		}
		return tmp, func() { os.RemoveAll(tmp) }, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, fmt.Errorf("resolve --dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", nil, fmt.Errorf("create --dir: %w", err)
	}
	if err := waitPastLastWrite(abs); err != nil {
		return "", nil, err
	}
	return abs, func() {}, nil
}

// waitPastLastWrite waits until the clock has left the second of the last
// write to dir. FerretDB numbers oplog entries (second, counter) with a
// counter that restarts with the process: restarted within the second of
// its last entry, it would write entries that sort before that one, which
// a replica set never does (its timestamps survive restarts). Files' mtimes
// say when SQLite last wrote.
func waitPastLastWrite(dir string) error {
	var last time.Time
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil && info.ModTime().After(last) {
			last = info.ModTime()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read --dir: %w", err)
	}
	if next := last.Truncate(time.Second).Add(time.Second); time.Now().Before(next) {
		time.Sleep(time.Until(next))
	}
	return nil
}

// ensureOplog creates the capped local.oplog.rs unless it exists already
// (a restart on the same directory keeps the old one and its entries).
// FerretDB logs every write once this collection exists.
func ensureOplog(ctx context.Context, uri string, sizeMB int64) error {
	if sizeMB <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri))
	if err != nil {
		return fmt.Errorf("connect to own server: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
	}()

	local := client.Database("local")
	names, err := local.ListCollectionNames(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
	if err != nil {
		return fmt.Errorf("list local collections: %w", err)
	}
	if len(names) > 0 {
		return nil
	}
	opts := options.CreateCollection().SetCapped(true).SetSizeInBytes(sizeMB << 20)
	if err := local.CreateCollection(ctx, "oplog.rs", opts); err != nil {
		return fmt.Errorf("create local.oplog.rs: %w", err)
	}
	return nil
}
