package repo

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
)

// prefixIndex holds one index per segment, under the segment's own key
// name: oplog-index/SHARD/FIRST_LAST_TIMELINE_PREV.
const prefixIndex = "oplog-index/"

// indexVersion is the payload version of a segment index. A reader refuses
// a higher one (ErrUnsupportedVersion).
const indexVersion = 1

// SegmentIndex summarizes one segment so that a summary of the oplog need
// not decompress it: how many operations (see Operations) of each kind
// each namespace had in each second. It is written right after its
// segment, encrypted like it (namespace names are user data), and deleted
// with it. Stored, it is an indexDoc.
type SegmentIndex struct {
	First   optime.Timestamp // the segment's first entry, as its key says
	Last    optime.Timestamp
	Entries int64 // oplog entries in the segment
	// Counts are sorted by second, then namespace, then kind; every count
	// is at least 1.
	Counts []OpCount
}

// OpCount is the number of operations of one kind on one namespace whose
// entry's ts falls in one second.
type OpCount struct {
	Second uint32 // ts seconds (Unix time)
	NS     string // Operation.NS
	Kind   string // Operation.Kind
	N      int64
}

// indexDoc is the stored form of a SegmentIndex: the namespaces and kinds
// once each, sorted, and the counts packed, because a lightly loaded
// second holds about one operation per namespace and kind, so an index
// has nearly as many counts as its segment has entries. Each count is four
// unsigned varints: its second minus First's, the index of its namespace
// in NS, of its kind in Kinds, and the count.
type indexDoc struct {
	Version int32            `bson:"v"`
	First   optime.Timestamp `bson:"first"`
	Last    optime.Timestamp `bson:"last"`
	Entries int64            `bson:"entries"`
	NS      []string         `bson:"ns"`
	Kinds   []string         `bson:"kinds"`
	Counts  []byte           `bson:"counts"`
}

// doc packs x for storage.
func (x SegmentIndex) doc() indexDoc {
	d := indexDoc{Version: indexVersion, First: x.First, Last: x.Last, Entries: x.Entries}
	nsAt, kindAt := map[string]uint64{}, map[string]uint64{}
	for _, c := range x.Counts {
		nsAt[c.NS], kindAt[c.Kind] = 0, 0
	}
	d.NS, d.Kinds = table(nsAt), table(kindAt)
	for _, c := range x.Counts {
		for _, v := range []uint64{uint64(c.Second - x.First.T), nsAt[c.NS], kindAt[c.Kind], uint64(c.N)} {
			d.Counts = binary.AppendUvarint(d.Counts, v)
		}
	}
	return d
}

// table sorts the keys of m and sets each one's value to its position.
func table(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	for i, k := range out {
		m[k] = uint64(i)
	}
	return out
}

// index unpacks a stored index.
func (d indexDoc) index() (SegmentIndex, error) {
	x := SegmentIndex{First: d.First, Last: d.Last, Entries: d.Entries}
	for rest := d.Counts; len(rest) > 0; {
		var v [4]uint64
		for i := range v {
			n, size := binary.Uvarint(rest)
			if size <= 0 {
				return x, fmt.Errorf("count %d is truncated", len(x.Counts))
			}
			v[i], rest = n, rest[size:]
		}
		if v[0] > uint64(d.Last.T-d.First.T) || v[1] >= uint64(len(d.NS)) || v[2] >= uint64(len(d.Kinds)) || v[3] > math.MaxInt64 {
			return x, fmt.Errorf("count %d is out of range", len(x.Counts))
		}
		x.Counts = append(x.Counts, OpCount{Second: d.First.T + uint32(v[0]), NS: d.NS[v[1]], Kind: d.Kinds[v[2]], N: int64(v[3])})
	}
	return x, nil
}

// IndexEntries builds the index of a segment's entries (raw oplog
// documents in ts order, as a segment holds them).
func IndexEntries(entries []bson.Raw) (SegmentIndex, error) {
	first, last, err := entryRange(entries)
	if err != nil {
		return SegmentIndex{}, fmt.Errorf("index entries: %w", err)
	}
	type key struct {
		s        uint32
		ns, kind string
	}
	counts := map[key]int64{}
	for _, e := range entries {
		ts, _ := optime.OfEntry(e) // checked by entryRange
		_ = Operations(e, func(op Operation) error {
			counts[key{ts.T, op.NS, op.Kind}]++
			return nil
		})
	}
	x := SegmentIndex{First: first, Last: last, Entries: int64(len(entries)), Counts: make([]OpCount, 0, len(counts))}
	for k, n := range counts {
		x.Counts = append(x.Counts, OpCount{Second: k.s, NS: k.ns, Kind: k.kind, N: n})
	}
	slices.SortFunc(x.Counts, CompareCounts)
	return x, nil
}

// CompareCounts orders counts by second, then namespace, then kind (N is
// not compared): the order of SegmentIndex.Counts.
func CompareCounts(a, b OpCount) int {
	switch {
	case a.Second != b.Second:
		return int(int64(a.Second) - int64(b.Second))
	case a.NS != b.NS:
		return strings.Compare(a.NS, b.NS)
	}
	return strings.Compare(a.Kind, b.Kind)
}

// Equal reports whether x and y hold the same summary.
func (x SegmentIndex) Equal(y SegmentIndex) bool {
	return x.First == y.First && x.Last == y.Last && x.Entries == y.Entries && slices.Equal(x.Counts, y.Counts)
}

// check verifies an index read back against the segment it belongs to.
func (x SegmentIndex) check(s SegmentInfo) error {
	if x.First != s.First || x.Last != s.Last {
		return fmt.Errorf("index spans %s..%s, its key says %s..%s", x.First, x.Last, s.First, s.Last)
	}
	for i, c := range x.Counts {
		if c.N < 1 || c.Second < s.First.T || c.Second > s.Last.T {
			return fmt.Errorf("count %d (%d at second %d) is outside the segment or not positive", i, c.N, c.Second)
		}
		if i > 0 && CompareCounts(x.Counts[i-1], c) >= 0 {
			return fmt.Errorf("count %d is out of order", i)
		}
	}
	if x.Entries < 1 {
		return fmt.Errorf("index counts %d entries", x.Entries)
	}
	return nil
}

// IndexKey is the key of the index of the segment stored under segmentKey.
func IndexKey(segmentKey string) string {
	return prefixIndex + strings.TrimPrefix(segmentKey, prefixOplog)
}

// SegmentKeyOfIndex is the key of the segment an index key belongs to, and
// whether key is an index key at all.
func SegmentKeyOfIndex(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, prefixIndex)
	if !ok {
		return "", false
	}
	return prefixOplog + rest, true
}

// writeIndex stores the index of a segment just written.
func (r *Repository) writeIndex(ctx context.Context, s SegmentInfo, entries []bson.Raw) error {
	x, err := IndexEntries(entries)
	if err != nil {
		return fmt.Errorf("write index of %s: %w", s.Key, err)
	}
	return r.putBSON(ctx, IndexKey(s.Key), KindIndex, x.doc())
}

// ReadIndex loads the index of segment s. A segment written before indexes
// existed, or whose writer stopped between the segment and its index, has
// none: the error then holds storage.ErrNotFound, and a reader falls back
// to the segment itself. An index that does not match its key is
// ErrCorrupt.
func (r *Repository) ReadIndex(ctx context.Context, s SegmentInfo) (SegmentIndex, error) {
	key := IndexKey(s.Key)
	var d indexDoc
	if err := r.getBSON(ctx, key, KindIndex, &d); err != nil {
		return SegmentIndex{}, err
	}
	if d.Version > indexVersion {
		return SegmentIndex{}, fmt.Errorf("decode object %s: index version %d is newer than this rewind reads (%d); upgrade rewind: %w",
			key, d.Version, indexVersion, ErrUnsupportedVersion)
	}
	if d.Version != indexVersion {
		return SegmentIndex{}, fmt.Errorf("decode object %s: %w: index version %d", key, ErrCorrupt, d.Version)
	}
	x, err := d.index()
	if err == nil {
		err = x.check(s)
	}
	if err != nil {
		return SegmentIndex{}, fmt.Errorf("decode object %s: %w: %v", key, ErrCorrupt, err)
	}
	return x, nil
}

// CheckIndex compares the stored index of segment s with the one its
// entries (read from s) give: a difference is ErrCorrupt, a missing index
// holds storage.ErrNotFound.
func (r *Repository) CheckIndex(ctx context.Context, s SegmentInfo, entries []bson.Raw) error {
	got, err := r.ReadIndex(ctx, s)
	if err != nil {
		return err
	}
	want, err := IndexEntries(entries)
	if err != nil {
		return fmt.Errorf("check index of %s: %w", s.Key, err)
	}
	if !got.Equal(want) {
		return fmt.Errorf("decode object %s: %w: the index does not match its segment's entries (%d entries and %d counts indexed, the segment gives %d and %d)",
			IndexKey(s.Key), ErrCorrupt, got.Entries, len(got.Counts), want.Entries, len(want.Counts))
	}
	return nil
}

// DeleteSegment removes a segment, then its index; either may be gone
// already. Deleting the segment first means an interruption leaves at
// worst an index without a segment, which verify notes and prune removes
// as an orphan; a reader never sees a listed segment lose its index. The
// caller holds the exclusive lock in deleting mode.
func (r *Repository) DeleteSegment(ctx context.Context, s SegmentInfo) error {
	if err := r.deleteIfExists(ctx, s.Key); err != nil {
		return err
	}
	return r.deleteIfExists(ctx, IndexKey(s.Key))
}
