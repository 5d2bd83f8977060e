package browse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/source"
)

// HistoryQuery asks for the versions of one document.
type HistoryQuery struct {
	Shard string        // as Query.Shard
	NS    string        // the collection, db.coll
	ID    bson.RawValue // the document's _id (ParseID); compared as SameID
	// From: the history lists the versions made by entries at or after it
	// (an RFC 3339 time: from the start of that second); its first version
	// is the document just before it. Zero: from the start of the restore
	// window that holds To (the end of the newest snapshot before it).
	From restore.When
	// To: the last entry whose version is listed (an RFC 3339 time: the
	// end of that second). Zero or latest: the newest restore point.
	To restore.When
}

// Validate checks the query's values alone. Errors are
// *restore.InvalidError naming the field (ns, id, from).
func (q *HistoryQuery) Validate() error {
	db, coll, ok := strings.Cut(q.NS, ".")
	switch {
	case q.NS == "":
		return &restore.InvalidError{Field: "ns", Msg: "is required: the document's collection as db.coll"}
	case !ok || db == "" || coll == "" || strings.ContainsAny(q.NS, "*?["):
		return &restore.InvalidError{Field: "ns", Msg: fmt.Sprintf("%q: want one collection as db.coll", q.NS)}
	case q.ID.Type == 0:
		return &restore.InvalidError{Field: "id", Msg: "is required: the document's _id as Extended JSON (42, '\"abc\"', '{\"$oid\": \"...\"}')"}
	}
	return checkOrder(q.From, q.To)
}

// Version is one version of the document.
type Version struct {
	// TS is the entry that made this version; for the first version, the
	// restore point the history starts at.
	TS optime.Timestamp
	// Kind is the operation (repo.OpInsert, OpUpdate, OpDelete, or
	// OpCommand for a drop or rename of its collection); "" for the first
	// version.
	Kind string
	NS   string   // the collection that holds the document after it: a rename changes it
	In   string   // as Op.In
	Doc  bson.Raw // the whole document after it; nil when deleted (or absent)
}

// DocHistory is every version of one document over a range.
type DocHistory struct {
	Shard    string
	NS       string // as asked
	ID       bson.RawValue
	From, To optime.Timestamp // Versions[0] is the document at From; the others are of entries in (From, To]
	Snapshot string           // the snapshot the replay starts from
	Flavor   source.Flavor    // how the oplog is replayed (FerretDB's whole-document updates as replacements)
	Entries  int64            // oplog entries read, from the snapshot's start
	Versions []Version
}

// History returns every version of one document: the document as the
// snapshot before From holds it, then the oplog from that snapshot's start
// replayed by rewind's own translator (replay.Applier, with the timeline's
// flavor) into a replay.Memory that holds only documents with this _id;
// every entry of the range that writes it (or drops or renames its
// collection) is one version. A rename of the collection inside the range
// is followed (Version.NS); a rename across databases that a 4.2+ server
// logs as a copy through a temporary collection is not: the history then
// ends with the drop of the source. The range must lie on one timeline.
func History(ctx context.Context, r *repo.Repository, q HistoryQuery) (DocHistory, error) {
	var out DocHistory
	err := readLocked(ctx, r, "history", func(ctx context.Context) error {
		p, to, err := planHistory(ctx, r, q)
		if err != nil {
			return err
		}
		out = DocHistory{Shard: p.Shard, NS: q.NS, ID: q.ID, From: p.Target, To: to, Snapshot: p.Snapshot.ID, Flavor: p.Flavor}
		if out.Flavor == "" {
			if out.Flavor, err = source.ParseFlavor(r.Config().Source.Flavor); err != nil {
				return err
			}
		}
		return out.replay(ctx, r, p)
	})
	if err != nil {
		return out, fmt.Errorf("history of %s %s: %w", q.NS, ValueJSON(q.ID), err)
	}
	return out, nil
}

// planHistory plans the replay as a restore of q.NS to the point the
// history starts at (restore.Build: the newest snapshot before it, the
// timeline, the flavor) and resolves the end of the range on that
// timeline.
func planHistory(ctx context.Context, r *repo.Repository, q HistoryQuery) (restore.Plan, optime.Timestamp, error) {
	shard, _, err := pickShard(ctx, r, q.Shard)
	if err != nil {
		return restore.Plan{}, optime.Zero, err
	}
	snaps, err := r.ListSnapshots(ctx, shard)
	if err != nil {
		return restore.Plan{}, optime.Zero, err
	}
	sh, err := catalog.LoadShard(ctx, r, shard, snaps)
	if err != nil {
		return restore.Plan{}, optime.Zero, err
	}
	cat := catalog.Catalog{Shards: []catalog.Shard{sh}}
	toWhen := q.To
	if toWhen.IsZero() {
		toWhen = restore.When{Latest: true}
	}
	last, err := restore.Build(cat, restore.Request{To: toWhen})
	if err != nil {
		return restore.Plan{}, optime.Zero, err
	}
	at := last.Window.From // the state the history starts at
	if !q.From.IsZero() {
		at = start(q.From).Prev()
		if q.From.Latest {
			at = last.Target
		}
		// A start inside the second the snapshot ends in starts at its end.
		if _, after := sh.Nearest(at); after != nil && !after.From.After(end(q.From)) && !windowHolds(sh, at) {
			at = after.From
		}
	}
	if at.After(last.Target) {
		return restore.Plan{}, optime.Zero, fmt.Errorf("%w: the history would start at %s, after its end %s", ErrOutside, point(at), point(last.Target))
	}
	p, err := restore.Build(cat, restore.Request{To: restore.When{TS: at}, Include: []string{q.NS}})
	if err != nil {
		return restore.Plan{}, optime.Zero, err
	}
	if last.Target.After(p.Window.To) {
		return restore.Plan{}, optime.Zero, fmt.Errorf("%w: the history starts on timeline %s, which ends at %s (the oplog after it was lost: a gap), before the end %s; choose an earlier --to or a later --from (`rewind list` shows the windows)",
			ErrOutside, p.Window.Timeline, point(p.Window.To), point(last.Target))
	}
	// The plan reads up to where the history starts; the history reads on
	// to its end, on the same timeline.
	p.Segments = nil
	if tl, ok := sh.Timeline(p.Window.Timeline); ok {
		for _, s := range tl.Segments {
			if !s.Last.Before(p.ReplayFrom) && !s.First.After(last.Target) {
				p.Segments = append(p.Segments, s)
			}
		}
	}
	return p, last.Target, nil
}

// windowHolds reports whether a restore window of sh holds ts.
func windowHolds(sh catalog.Shard, ts optime.Timestamp) bool {
	for _, w := range sh.Windows {
		if w.Contains(ts) {
			return true
		}
	}
	return false
}

// errStop ends a read of the oplog at the end of the range.
var errStop = errors.New("end of the range")

// replay loads the document from the snapshot and replays the oplog from
// the snapshot's start to h.To, recording a version for every entry after
// h.From that touches it.
func (h *DocHistory) replay(ctx context.Context, r *repo.Repository, p restore.Plan) error {
	t := &tracker{id: h.ID, cur: h.NS, mem: replay.NewMemory()}
	t.apply = &replay.Applier{Memory: t.mem, Flavor: h.Flavor}
	if err := t.load(ctx, r, p); err != nil {
		return err
	}
	started := false
	err := r.ReadEntries(ctx, p.Segments, p.ReplayFrom.Prev(), func(ts optime.Timestamp, e bson.Raw) error {
		if ts.After(h.To) {
			return errStop
		}
		h.Entries++
		if !started && ts.After(h.From) {
			h.Versions, started = append(h.Versions, t.version(h.From, "", "")), true
		}
		v, changed, err := t.step(ctx, ts, e)
		if changed && started {
			h.Versions = append(h.Versions, v)
		}
		return err
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if !started {
		h.Versions = append(h.Versions, t.version(h.From, "", ""))
	}
	if !t.known {
		return &restore.InvalidError{Field: "ns", Msg: fmt.Sprintf("%s is neither a collection of snapshot %s nor written by the oplog up to %s; check the name with `rewind oplog --summary`",
			h.NS, h.Snapshot, point(h.To))}
	}
	return nil
}

// VersionJSON is a version's JSON form, one line of `rewind history
// --json` and of the API: the ts as {t, i} and its second as RFC 3339, the
// whole document as canonical Extended JSON (null when deleted).
type VersionJSON struct {
	TS       optime.Timestamp `json:"ts"`
	Time     string           `json:"time"`
	Start    bool             `json:"start,omitempty"` // the document as the range starts
	Op       string           `json:"op,omitempty"`
	NS       string           `json:"ns"`
	In       string           `json:"in,omitempty"`
	Deleted  bool             `json:"deleted"`
	Document json.RawMessage  `json:"document"`
}

// JSON returns the version's JSON form.
func (v Version) JSON() VersionJSON {
	return VersionJSON{TS: v.TS, Time: v.TS.Time().Format(time.RFC3339), Start: v.Kind == "", Op: v.Kind, NS: v.NS,
		In: v.In, Deleted: v.Doc == nil, Document: json.RawMessage(DocJSON(v.Doc))}
}
