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
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
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
	tlsCert  string
	tlsKey   string
	tlsCA    string
}

func parseFlags() flags {
	var f flags
	flag.StringVar(&f.addr, "addr", "127.0.0.1:0", "TCP address to listen on (port 0 picks a free port)")
	flag.StringVar(&f.dir, "dir", "", "data directory (default: a temporary directory removed on exit)")
	flag.Int64Var(&f.oplogMB, "oplog-size-mb", 100, "size of the capped local.oplog.rs in MiB (0: no oplog)")
	flag.StringVar(&f.logLevel, "log-level", "error", "FerretDB log level: debug, info, warn or error")
	flag.StringVar(&f.tlsCert, "tls-cert-file", "", "PEM certificate: listen with TLS only on --addr (with --tls-key-file)")
	flag.StringVar(&f.tlsKey, "tls-key-file", "", "PEM private key of --tls-cert-file")
	flag.StringVar(&f.tlsCA, "tls-ca-file", "", "PEM CA: require every client to present a certificate it signed")
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

	listener, setupURI, removeSock, err := listenerConfig(f)
	if err != nil {
		return err
	}
	defer removeSock()
	fdb, err := ferretdb.New(&ferretdb.Config{
		Listener:  listener,
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
	// With TLS it is mongodb://HOST:PORT/?tls=true.
	uri := fdb.MongoDBURI()
	if setupURI == "" {
		setupURI = uri + "?directConnection=true"
	}
	if strings.Contains(uri, "?") {
		uri += "&directConnection=true"
	} else {
		uri += "?directConnection=true"
	}
	if err := ensureOplog(ctx, setupURI, f.oplogMB); err != nil {
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

// listenerConfig is plain TCP on --addr, or with --tls-cert-file TLS only
// on --addr plus a Unix socket in a fresh temporary directory, for this
// process's own setup (ensureOplog) alone: the server may require client
// certificates, which the server's own certificate need not be fit for. It
// returns the setup connection string for the socket ("" without TLS) and
// a function that removes the socket's directory.
func listenerConfig(f flags) (ferretdb.ListenerConfig, string, func(), error) {
	none := func() {}
	if f.tlsCert == "" {
		if f.tlsKey != "" || f.tlsCA != "" {
			return ferretdb.ListenerConfig{}, "", none, errors.New("--tls-key-file and --tls-ca-file need --tls-cert-file")
		}
		return ferretdb.ListenerConfig{TCP: f.addr}, "", none, nil
	}
	if f.tlsKey == "" {
		return ferretdb.ListenerConfig{}, "", none, errors.New("--tls-cert-file needs --tls-key-file")
	}
	// A short path: a socket's path must fit in 108 bytes.
	sockDir, err := os.MkdirTemp("", "rts-")
	if err != nil {
		return ferretdb.ListenerConfig{}, "", none, fmt.Errorf("create socket directory: %w", err)
	}
	sock := filepath.Join(sockDir, "setup.sock")
	l := ferretdb.ListenerConfig{
		TLS: f.addr, TLSCertFile: f.tlsCert, TLSKeyFile: f.tlsKey, TLSCAFile: f.tlsCA,
		Unix: sock,
	}
	// The driver takes a socket as its path, percent-encoded, for the host.
	uri := "mongodb://" + url.QueryEscape(sock) + "/?directConnection=true"
	return l, uri, func() { os.RemoveAll(sockDir) }, nil
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
