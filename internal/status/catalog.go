package status

import (
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
)

// Snapshot is a complete snapshot as `rewind list --json` and the API show it.
type Snapshot struct {
	ID          string    `json:"id"`
	Shard       string    `json:"shard"`
	Start       *TS       `json:"start"`
	End         *TS       `json:"end"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	Collections int       `json:"collections"`
	Documents   int64     `json:"documents"`
	Bytes       int64     `json:"bytes"`
	Chunks      int       `json:"chunks"`
}

// Window is a restore window: every timestamp in [from, to] is restorable.
type Window struct {
	Snapshot string `json:"snapshot"`
	Timeline string `json:"timeline"`
	From     *TS    `json:"from"`
	To       *TS    `json:"to"`
}

// Snapshots converts the catalog's snapshots (never nil, so JSON says []).
func Snapshots(ss []catalog.Snapshot) []Snapshot {
	out := []Snapshot{}
	for _, sn := range ss {
		out = append(out, Snapshot{ID: sn.ID, Shard: sn.Shard, Start: ToTS(sn.Start), End: ToTS(sn.End),
			Started: sn.Started, Finished: sn.Finished, Collections: sn.Collections, Documents: sn.Documents,
			Bytes: sn.Bytes, Chunks: sn.Chunks})
	}
	return out
}

// Windows converts the catalog's windows (never nil, so JSON says []).
func Windows(ws []catalog.Window) []Window {
	out := []Window{}
	for _, w := range ws {
		out = append(out, Window{Snapshot: w.Snapshot, Timeline: w.Timeline, From: ToTS(w.From), To: ToTS(w.To)})
	}
	return out
}
