package oracle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/workload"
)

// Mark is the state of the deployment at one oplog timestamp: a restore to
// TS must reproduce State exactly.
type Mark struct {
	N      int              `json:"n"`      // mark number, from 1
	TS     optime.Timestamp `json:"ts"`     // the oplog timestamp the state belongs to
	Ops    int              `json:"ops"`    // workload operations acknowledged before it
	Writes int              `json:"writes"` // of those, writes that changed a document
	Time   time.Time        `json:"time"`   // wall clock when recorded
	State  State            `json:"state"`
}

// LastOplogTS returns the timestamp of the newest entry of local.oplog.rs.
func LastOplogTS(ctx context.Context, client *mongo.Client) (optime.Timestamp, error) {
	opts := options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}}).
		SetProjection(bson.D{{Key: "ts", Value: 1}})
	raw, err := client.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{}, opts).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return optime.Zero, errors.New("read newest oplog entry: the oplog is empty")
	}
	if err != nil {
		return optime.Zero, fmt.Errorf("read newest oplog entry: %w", err)
	}
	ts, err := optime.OfEntry(raw)
	if err != nil {
		return optime.Zero, fmt.Errorf("read newest oplog entry: %w", err)
	}
	return ts, nil
}

// Recorder records marks while a workload runs; pass its OnBatch to
// workload.Run. Hashing reads every selected document, so on a slow server
// record every few batches (Every).
type Recorder struct {
	Client   *mongo.Client
	Filter   Filter
	Every    int  // record after every Nth batch (default 1)
	KeepDocs bool // keep documents in memory so Compare can show the expected one
	Marks    []Mark
}

// OnBatch records a mark if this batch is due. No write is in flight when it
// runs, so the timestamp and the state agree: the timestamp is the server's
// operationTime for the batch when it reports one (a real replica set), else
// the newest oplog entry (FerretDB; exact because writes are sequential).
func (r *Recorder) OnBatch(ctx context.Context, b workload.Batch) error {
	if every := max(r.Every, 1); b.N%every != 0 {
		return nil
	}
	_, err := r.Record(ctx, b)
	return err
}

// Record records a mark now.
func (r *Recorder) Record(ctx context.Context, b workload.Batch) (Mark, error) {
	ts := b.OperationTime
	if ts.IsZero() {
		var err error
		if ts, err = LastOplogTS(ctx, r.Client); err != nil {
			return Mark{}, err
		}
	}
	st, err := SnapshotWith(ctx, r.Client, r.Filter, SnapshotOptions{KeepDocs: r.KeepDocs})
	if err != nil {
		return Mark{}, err
	}
	m := Mark{N: len(r.Marks) + 1, TS: ts, Ops: b.Ops, Writes: b.Writes, Time: time.Now().UTC(), State: st}
	r.Marks = append(r.Marks, m)
	return m, nil
}

// marksFile is the JSON layout of a marks file; the version lets a later
// layout refuse to misread an old one.
type marksFile struct {
	Version int    `json:"version"`
	Marks   []Mark `json:"marks"`
}

// SaveMarks writes marks to path as JSON (atomically: a temporary file renamed).
func SaveMarks(path string, marks []Mark) error {
	b, err := json.MarshalIndent(marksFile{Version: 1, Marks: marks}, "", " ")
	if err != nil {
		return fmt.Errorf("encode marks: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".marks-*")
	if err != nil {
		return fmt.Errorf("save marks: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("save marks: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save marks: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save marks: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save marks: %w", err)
	}
	return nil
}

// LoadMarks reads a file written by SaveMarks.
func LoadMarks(path string) ([]Mark, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load marks: %w", err)
	}
	var f marksFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("load marks from %s: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("load marks from %s: version %d, want 1 (written by another rewind-workload?)", path, f.Version)
	}
	return f.Marks, nil
}
