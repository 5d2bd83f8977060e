package verify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/verify"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func run(t *testing.T, f *fixture, readData bool) verify.Report {
	t.Helper()
	rep, err := verify.Run(context.Background(), f.r, verify.Options{ReadData: readData})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestHealthy(t *testing.T) {
	f := newFixture(t, 30)
	for _, read := range []bool{false, true} {
		rep := run(t, f, read)
		if !rep.Healthy() || len(rep.Findings) != 0 {
			t.Fatalf("read-data %v: findings on a whole repository: %+v", read, rep.Findings)
		}
		if len(rep.Remaining) != 1 || rep.Remaining[0].From != f.snaps[0].End || rep.Remaining[0].To != f.segs[29].Last {
			t.Fatalf("remaining %+v; want one span from the first snapshot's end to the last entry", rep.Remaining)
		}
		if read && rep.ReadBytes == 0 {
			t.Fatal("read-data read nothing")
		}
	}
}

// damage applies one kind of damage to a fresh fixture and checks the one
// problem verify reports: its kind, object, and the restore points it
// breaks and leaves.
func TestDamage(t *testing.T) {
	tests := []struct {
		name     string
		readData bool
		damage   func(t *testing.T, f *fixture) string // returns the damaged key
		kind     string
		message  string
		// remainTo: the last segment before the damage, where the first span must end.
		remainTo func(f *fixture) int // index of the last intact segment; -1: nothing on the first snapshot's window
	}{
		{"flipped byte in a segment after the snapshots", true, func(t *testing.T, f *fixture) string {
			return flip(t, f, f.segs[20].Key)
		}, "corrupt", "oplog segment", func(f *fixture) int { return 19 }},
		{"truncated chunk", true, func(t *testing.T, f *fixture) string {
			k := f.snaps[0].Collections[0].Chunks[0].Key
			p := filepath.Join(f.dir, k)
			b, err := os.ReadFile(p)
			must(t, err)
			must(t, os.WriteFile(p, b[:len(b)/2], 0o644))
			return k
		}, "corrupt", "chunk of d.c in snapshot", nil},
		{"deleted chunk: the manifest names a missing object", false, func(t *testing.T, f *fixture) string {
			k := f.snaps[1].Collections[0].Chunks[1].Key
			must(t, os.Remove(filepath.Join(f.dir, k)))
			return k
		}, "missing", "which is not in the repository", nil},
		{"flipped byte in a manifest", false, func(t *testing.T, f *fixture) string {
			return flip(t, f, "snapshots/rs0/"+f.snaps[2].ID)
		}, "corrupt", "manifest of snapshot", nil},
		{"deleted segment: the chain shows the hole", false, func(t *testing.T, f *fixture) string {
			must(t, os.Remove(filepath.Join(f.dir, f.segs[20].Key)))
			return "oplog/rs0/ between " + f.segs[19].Last.String() + " and " + f.segs[21].First.String()
		}, "missing", "an oplog segment is missing", func(f *fixture) int { return 19 }},
		{"segment inside a snapshot's copy range", true, func(t *testing.T, f *fixture) string {
			return flip(t, f, f.segs[13].Key)
		}, "corrupt", "oplog segment", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 30)
			key := tt.damage(t, f)
			rep := run(t, f, tt.readData)
			probs := rep.Problems()
			if len(probs) != 1 {
				t.Fatalf("%d problems, want 1: %+v", len(probs), rep.Findings)
			}
			p := probs[0]
			if p.Object != key || p.Kind != tt.kind || !strings.Contains(p.Message, tt.message) {
				t.Fatalf("problem %+v; want kind %s on %s mentioning %q", p, tt.kind, key, tt.message)
			}
			if len(p.Breaks) == 0 {
				t.Fatalf("problem %+v names no broken restore point", p)
			}
			t.Logf("%s: %s; breaks %d windows; remaining %+v", p.Object, p.Message, len(p.Breaks), rep.Remaining)
			if tt.remainTo != nil {
				last := f.segs[tt.remainTo(f)].Last
				// The snapshot taken after the damage opens a window of its own.
				if len(rep.Remaining) != 2 || rep.Remaining[0].To != last || rep.Remaining[1].From != f.snaps[2].End {
					t.Fatalf("remaining %+v; want a span ending at %s (the last entry before the damage) and one from %s (the next snapshot)",
						rep.Remaining, last, f.snaps[2].End)
				}
			}
			if len(rep.Remaining) == 0 {
				t.Fatal("nothing remains restorable, yet other snapshots are whole")
			}
		})
	}
}

// TestDeletedManifest: a snapshot without a manifest does not exist; its
// chunks are orphans (a note: prune removes them), and the repository is
// healthy.
func TestDeletedManifest(t *testing.T) {
	f := newFixture(t, 30)
	must(t, os.Remove(filepath.Join(f.dir, "snapshots/rs0/"+f.snaps[1].ID)))
	rep := run(t, f, true)
	if !rep.Healthy() || len(rep.Findings) != 1 || rep.Findings[0].Kind != "orphan" || !strings.Contains(rep.Findings[0].Object, f.snaps[1].ID) {
		t.Fatalf("findings %+v; want one orphan note for snapshot %s", rep.Findings, f.snaps[1].ID)
	}
}

func flip(t *testing.T, f *fixture, key string) string {
	p := filepath.Join(f.dir, key)
	b, err := os.ReadFile(p)
	must(t, err)
	b[len(b)/2] ^= 0x40
	must(t, os.WriteFile(p, b, 0o644))
	return key
}

// A repository that can restore nothing is not healthy, whatever the state
// of its objects: empty, or oplog without a snapshot.
func TestNothingRestorable(t *testing.T) {
	ctx := context.Background()
	st, err := storage.Open(ctx, t.TempDir())
	must(t, err)
	defer st.Close()
	empty, err := repo.Init(ctx, st, repo.InitOptions{})
	must(t, err)
	// An agent that runs and has stored nothing yet: its heartbeat makes a
	// shard, which holds no oplog.
	st2, err := storage.Open(ctx, t.TempDir())
	must(t, err)
	defer st2.Close()
	heartbeatOnly, err := repo.Init(ctx, st2, repo.InitOptions{})
	must(t, err)
	now := time.Now()
	must(t, heartbeatOnly.WriteHeartbeat(ctx, repo.Heartbeat{Shard: "rs0", Host: "h", PID: 1, Started: now, Updated: now}))
	for name, tc := range map[string]struct {
		r    *repo.Repository
		want string
	}{
		"empty":                  {empty, "no snapshot and no oplog"},
		"agent, nothing stored":  {heartbeatOnly, "no snapshot and no oplog"},
		"oplog and no snapshot":  {newFixture(t, 1).r, "oplog but no snapshot"},
		"oplog after a snapshot": {newFixture(t, 3).r, ""},
	} {
		rep, err := verify.Run(ctx, tc.r, verify.Options{})
		must(t, err)
		if tc.want == "" {
			if !rep.Healthy() {
				t.Errorf("%s: %+v", name, rep.Findings)
			}
			continue
		}
		ps := rep.Problems()
		if rep.Healthy() || len(ps) != 1 || ps[0].Kind != "nothing-restorable" ||
			!strings.Contains(ps[0].Message, tc.want) || !strings.Contains(ps[0].Message, "rewind snapshot") {
			t.Errorf("%s: problems %+v; want one nothing-restorable saying %q and what to do", name, ps, tc.want)
		}
	}
}

// An encrypted repository read without its identity fails with one hint
// saying what to give, not two.
func TestNoIdentityHintOnce(t *testing.T) {
	ctx := context.Background()
	id, err := age.GenerateX25519Identity()
	must(t, err)
	st, err := storage.Open(ctx, t.TempDir())
	must(t, err)
	defer st.Close()
	r, err := repo.Init(ctx, st, repo.InitOptions{Recipient: id.Recipient().String()})
	must(t, err)
	ref, err := r.WriteChunk(ctx, "rs0", "20261125T000000Z-00000001", "c0", 0, []bson.Raw{doc(1)})
	must(t, err)
	ts := optime.Timestamp{T: uint32(t0.Unix()), I: 1}
	must(t, r.WriteManifest(ctx, repo.Manifest{ID: "20261125T000000Z-00000001", Shard: "rs0", Start: ts, End: ts,
		Collections: []repo.CollectionManifest{{DB: "d", Name: "c", UUID: "c0", Count: 1, Bytes: ref.Bytes, Chunks: []repo.ChunkRef{ref}}}}))
	_, err = verify.Run(ctx, r, verify.Options{})
	if !errors.Is(err, repo.ErrNeedIdentity) || strings.Count(err.Error(), "--identity") != 1 {
		t.Fatalf("verify without the identity: %v; want ErrNeedIdentity with one --identity hint", err)
	}
}
