package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// The checksum of a restore (restore --checksum) equals the checksum of
// the source at the restored point (rewind checksum): on the test server
// the source is left unchanged since; on a real replica set the source
// changes after the snapshot and --at reads it as of the snapshot's point.
// The test server refuses --at, naming itself.
func TestRestoreChecksumEqualsSource(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	shop := srv.DB("shop")
	for i := range 50 {
		_, err := srv.Client().Database(shop).Collection("orders").InsertOne(ctx,
			bson.D{{Key: "_id", Value: i}, {Key: "sku", Value: "a"}, {Key: "tags", Value: bson.A{"x", i}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	if code, _, stderr := cli(t, "init", "--repo", url); code != 0 {
		t.Fatal(stderr)
	}
	if code, out, stderr := cli(t, "snapshot", "--repo", url, "--source", srv.URI()); code != 0 {
		t.Fatalf("snapshot: exit %d\n%s%s", code, out, stderr)
	}
	l := listRepo(t, url)
	end := l.Shards[0].Snapshots[0].End
	point := optime.Timestamp{T: end.T, I: end.I}

	srv2 := testserver.Start(t)
	code, out, stderr := cli(t, "restore", "--repo", url, "--target", srv2.URI(), "--to", "latest", "--ns", shop, "--checksum", "--json")
	var res api.RestoreResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Checksums) != 1 || res.Checksums[0].Count != 50 {
		t.Fatalf("restore --checksum --json: exit %d\n%s%s", code, out, stderr)
	}

	atArgs := []string{"--at", point.String()}
	if !srv.External() {
		code, _, stderr := cli(t, append([]string{"checksum", "--uri", srv.URI()}, atArgs...)...)
		wantFailure(t, code, stderr, exitFailure, "--at", "cannot read at a past cluster time", "ferretdb")
		atArgs = nil // the source is unchanged since the point: now is the point
	} else {
		_, err := srv.Client().Database(shop).Collection("orders").DeleteOne(ctx, bson.D{{Key: "_id", Value: 7}})
		if err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr = cli(t, append([]string{"checksum", "--uri", srv.URI(), "--ns", shop, "--json"}, atArgs...)...)
	var cj checksumJSON
	if code != 0 || json.Unmarshal([]byte(out), &cj) != nil {
		t.Fatalf("checksum: exit %d\n%s%s", code, out, stderr)
	}
	if !reflect.DeepEqual(cj.Collections, res.Checksums) {
		t.Fatalf("checksum of the source %v\n!= checksum of the restore %v", cj.Collections, res.Checksums)
	}
}
