package source_test

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// Connect sets the flavor, capabilities and shard once, from the server's
// own answers, and the clock anchor precedes every entry logged after it.
func TestConnect(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	src, err := source.Connect(ctx, srv.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	switch {
	case srv.FerretDB():
		if src.Flavor != source.FerretDB || src.Caps.SeekByTS || src.Caps.MajorityReads || src.Shard() != "ferretdb" {
			t.Fatalf("FerretDB source: flavor %q caps %+v shard %q", src.Flavor, src.Caps, src.Shard())
		}
	default:
		if src.Flavor != source.MongoDB || !src.Caps.SeekByTS || src.SetName == "" || src.Shard() == "" {
			t.Fatalf("MongoDB source: flavor %q caps %+v set %q", src.Flavor, src.Caps, src.SetName)
		}
	}
	anchor, err := src.ClockTimestamp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client().Database(srv.DB("src")).Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	newest, err := src.NewestEntry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !newest.After(anchor) {
		t.Fatalf("an entry logged after the clock anchor %s has ts %s, not after it", anchor, newest)
	}
}

// A wrong URI is refused with advice, and its password never shows.
func TestConnectErrorsHideThePassword(t *testing.T) {
	ctx := context.Background()
	_, err := source.Connect(ctx, "mongodb://admin:s3cretpw@127.0.0.1:1/?serverSelectionTimeoutMS=300")
	if err == nil || strings.Contains(err.Error(), "s3cretpw") || !strings.Contains(err.Error(), "no server answered") {
		t.Fatalf("Connect to a closed port: %v", err)
	}
	_, err = source.Connect(ctx, "mongodb://admin:s3cretpw@127.0.0.1:1/?connectTimeoutMS=soon")
	if err == nil || strings.Contains(err.Error(), "s3cretpw") || !strings.Contains(err.Error(), "is not valid") {
		t.Fatalf("Connect with a bad URI: %v", err)
	}
}
