package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// TestTLS backs up through TLS with a private CA and restores through it:
// the source requires a client certificate (its key encrypted, the
// password in tlsCertificateKeyFilePassword), the target only TLS. Capture
// (the agent), snapshot and restore all take the connection strings as
// given, the password never shows in their output, and each missing piece
// is refused with an error that names the option to add.
//
// FerretDB v1.24 checks the client certificate against the CA in the TLS
// handshake but cannot authenticate with it (its saslStart knows PLAIN, or
// SCRAM with its experimental new auth, never MONGODB-X509), so the
// certificate here proves the connection, not a user; the URI's options
// reaching the driver intact is tested server-free in
// TestTLSOptionsReachTheDriver.
func TestTLS(t *testing.T) {
	certs := testserver.NewCerts(t)
	srv := testserver.StartWith(t, testserver.Options{TLS: certs, RequireClientCert: true})
	dst := testserver.StartWith(t, testserver.Options{TLS: certs})
	ctx := context.Background()
	repoURL := "file://" + filepath.Join(t.TempDir(), "repo")
	if code, _, stderr := cli(t, "init", "--repo", repoURL); code != 0 {
		t.Fatal(stderr)
	}
	noLeak := func(what, out string) {
		t.Helper()
		if strings.Contains(out, certs.ClientPassword) || strings.Contains(out, url.QueryEscape(certs.ClientPassword)) {
			t.Fatalf("%s shows tlsCertificateKeyFilePassword:\n%s", what, out)
		}
	}

	shop := srv.DB("shop")
	orders := srv.Client().Database(shop).Collection("orders")
	for i := range 10 {
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := cli(t, "snapshot", "--repo", repoURL, "--source", srv.URI(), "--ns", shop+".*")
	if code != 0 || !strings.Contains(out, "complete: 1 collections") {
		t.Fatalf("snapshot through TLS: exit %d\n%s%s", code, out, stderr)
	}
	noLeak("snapshot", out+stderr)

	agentLog, err := os.Create(filepath.Join(t.TempDir(), "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agentLog.Close() }) // after the agent stops: cleanups run last first
	startAgentBinaryLog(t, agentLog, "--repo", repoURL, "--source", srv.URI(), "--spool-dir", t.TempDir(), "--api-listen", "")
	for i := 10; i < 15; i++ {
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	last, err := oracle.LastOplogTS(ctx, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the agent captures the inserts through TLS", func() bool {
		to := latestTo(listRepo(t, repoURL))
		return to != nil && !to.Before(last)
	})

	code, out, stderr = cli(t, "restore", "--repo", repoURL, "--target", dst.URI(), "--to", "latest", "--ns", shop+".*")
	if code != 0 {
		t.Fatalf("restore through TLS: exit %d\n%s%s", code, out, stderr)
	}
	if n, err := dst.Client().Database(shop).Collection("orders").CountDocuments(ctx, bson.D{}); err != nil || n != 15 {
		t.Fatalf("the target holds %d orders (%v), want 15: the snapshot's 10 and the 5 captured", n, err)
	}

	// The agent logs its source at start: with the key file, without its password.
	logBytes, err := os.ReadFile(agentLog.Name())
	if err != nil {
		t.Fatal(err)
	}
	log := string(logBytes)
	if !strings.Contains(log, "agent started") || !strings.Contains(log, "tlsCertificateKeyFilePassword=REDACTED") {
		t.Fatalf("the agent's log does not show its source redacted:\n%s", log)
	}
	noLeak("the agent's log", log)

	// Each piece missing, against a server that is up: refused, and the
	// error names what to add.
	quick := "&serverSelectionTimeoutMS=2000"
	noCA := "mongodb://" + dst.Host() + "/?directConnection=true&tls=true" + quick
	code, _, stderr = cli(t, "restore", "--repo", repoURL, "--target", noCA, "--to", "latest", "--ns", shop+".*", "--drop")
	wantFailure(t, code, stderr, 1, "tlsCAFile")
	withCA := "mongodb://" + srv.Host() + "/?directConnection=true&tls=true&tlsCAFile=" + url.QueryEscape(certs.CAFile) + quick
	code, _, stderr = cli(t, "snapshot", "--repo", repoURL, "--source", withCA)
	wantFailure(t, code, stderr, 1, "client certificate", "tlsCertificateKeyFile")
	wrongPW := strings.Replace(srv.URI(), url.QueryEscape(certs.ClientPassword), url.QueryEscape("not-"+certs.ClientPassword), 1)
	code, _, stderr = cli(t, "snapshot", "--repo", repoURL, "--source", wrongPW)
	wantFailure(t, code, stderr, 1, "did not decrypt", "check tlsCertificateKeyFilePassword")
	noLeak("a refused key password", stderr)
	noFile := strings.Replace(srv.URI(), url.QueryEscape(certs.CAFile), url.QueryEscape(certs.CAFile+".missing"), 1)
	code, _, stderr = cli(t, "snapshot", "--repo", repoURL, "--source", noFile)
	wantFailure(t, code, stderr, 2, "tlsCAFile cannot be read", certs.CAFile+".missing")
	noLeak("a missing CA file", stderr)
	plain := "mongodb://" + dst.Host() + "/?directConnection=true" + quick
	code, _, stderr = cli(t, "snapshot", "--repo", repoURL, "--source", plain)
	wantFailure(t, code, stderr, 1, "tls=true")
}
