package oracle

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Mismatch is the first difference Compare found.
type Mismatch struct {
	NS       string // source namespace, as in the mark
	TargetNS string // namespace in the target, after renaming
	// What differs: "missing collection", "extra collection", "indexes",
	// "options", "missing document", "extra document" or "document".
	What string
	ID   string // the document's _id, extended JSON (document mismatches)
	Want string // expected content, extended JSON, or a summary
	Got  string // content in the target, extended JSON, or a summary
}

func (m *Mismatch) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "restore differs from the mark: %s in %s", m.What, m.NS)
	if m.TargetNS != m.NS {
		fmt.Fprintf(&b, " (target %s)", m.TargetNS)
	}
	if m.ID != "" {
		fmt.Fprintf(&b, ", _id %s", m.ID)
	}
	fmt.Fprintf(&b, "\n  want: %s\n  got:  %s", m.Want, m.Got)
	return b.String()
}

// Compare checks the target deployment against mark: every collection the
// filter selects, under its renamed name, must hold the same documents,
// indexes and options, and the target must have no extra collection in the
// renamed scope. It returns a *Mismatch naming the first difference.
func Compare(ctx context.Context, target *mongo.Client, mark Mark, f Filter) error {
	got, err := snapshot(ctx, target, f.targetScope, SnapshotOptions{})
	if err != nil {
		return fmt.Errorf("snapshot target: %w", err)
	}
	return compareState(ctx, target, mark, f, got)
}

// compareState compares got (the target's state, by target namespace) with
// the mark; target, when not nil, shows a differing document.
func compareState(ctx context.Context, target *mongo.Client, mark Mark, f Filter, got State) error {
	seen := map[string]bool{}
	for _, ns := range mark.State.Names() {
		db, coll := splitNS(ns)
		if !f.Match(db, coll) {
			continue
		}
		tdb, tcoll := f.Target(db, coll)
		tns := tdb + "." + tcoll
		seen[tns] = true
		want := mark.State[ns]
		have, ok := got[tns]
		if !ok {
			return &Mismatch{NS: ns, TargetNS: tns, What: "missing collection",
				Want: fmt.Sprintf("%d documents", want.Docs), Got: "no such collection"}
		}
		if err := compareCollection(ctx, target, ns, tns, want, have); err != nil {
			return err
		}
	}
	for _, tns := range got.Names() {
		if !seen[tns] {
			return &Mismatch{NS: tns, TargetNS: tns, What: "extra collection",
				Want: "no such collection", Got: fmt.Sprintf("%d documents", got[tns].Docs)}
		}
	}
	return nil
}

func compareCollection(ctx context.Context, target *mongo.Client, ns, tns string, want, have *Collection) error {
	if want.Type != have.Type {
		return &Mismatch{NS: ns, TargetNS: tns, What: "options", Want: "type " + want.Type, Got: "type " + have.Type}
	}
	if want.Meta != have.Meta {
		if want.Options != have.Options {
			return &Mismatch{NS: ns, TargetNS: tns, What: "options", Want: want.Options, Got: have.Options}
		}
		return &Mismatch{NS: ns, TargetNS: tns, What: "indexes",
			Want: strings.Join(want.Indexes, ", "), Got: strings.Join(have.Indexes, ", ")}
	}
	if want.Hash == have.Hash {
		return nil
	}
	m := firstDifference(want, have)
	m.NS, m.TargetNS = ns, tns
	m.Want = want.docJSON(m.ID)
	if target == nil {
		m.Got = have.docJSON(m.ID)
		return m
	}
	tdb, tcoll := splitNS(tns)
	m.Got = fetchJSON(ctx, target.Database(tdb).Collection(tcoll), m.ID)
	return m
}

// firstDifference walks both digest lists in _id order and names the first
// document that is missing, extra or different.
func firstDifference(want, have *Collection) *Mismatch {
	inWant := make(map[string]bool, len(want.Digests))
	for _, d := range want.Digests {
		inWant[d.ID] = true
	}
	inHave := make(map[string]bool, len(have.Digests))
	for _, d := range have.Digests {
		inHave[d.ID] = true
	}
	for i := 0; i < max(len(want.Digests), len(have.Digests)); i++ {
		switch {
		case i < len(want.Digests) && (i >= len(have.Digests) || !inHave[want.Digests[i].ID]):
			return &Mismatch{What: "missing document", ID: want.Digests[i].ID}
		case i < len(have.Digests) && (i >= len(want.Digests) || !inWant[have.Digests[i].ID]):
			return &Mismatch{What: "extra document", ID: have.Digests[i].ID}
		case want.Digests[i] != have.Digests[i]:
			return &Mismatch{What: "document", ID: want.Digests[i].ID}
		}
	}
	if len(want.Digests) == 0 && want.Docs > 0 {
		return &Mismatch{What: "document", Want: "hash " + want.Hash, Got: "hash " + have.Hash}
	}
	// Same digests, different hash: only if the mark's digests were edited.
	return &Mismatch{What: "document", ID: "?"}
}

// docJSON returns the recorded document with this _id, if the mark kept
// documents in memory, else what the mark knows about it.
func (c *Collection) docJSON(id string) string {
	for i, d := range c.Digests {
		if d.ID != id {
			continue
		}
		if i < len(c.docs) {
			return extJSON(c.docs[i])
		}
		return "document with sha256 prefix " + d.Sum + " (marks keep digests, not documents)"
	}
	return "missing"
}

func fetchJSON(ctx context.Context, coll *mongo.Collection, id string) string {
	var filter bson.D
	if err := bson.UnmarshalExtJSON([]byte(`{"_id":`+id+`}`), true, &filter); err != nil {
		return fmt.Sprintf("(cannot read _id %s: %v)", id, err)
	}
	raw, err := coll.FindOne(ctx, filter).Raw()
	if err == mongo.ErrNoDocuments {
		return "missing"
	}
	if err != nil {
		return fmt.Sprintf("(cannot read it: %v)", err)
	}
	return extJSON(raw)
}

func extJSON(doc bson.Raw) string {
	b, err := bson.MarshalExtJSON(doc, true, false)
	if err != nil {
		return fmt.Sprintf("(not valid BSON: %v)", err)
	}
	const limit = 4000 // documents near 1 MiB would drown the message
	if len(b) > limit {
		return fmt.Sprintf("%s... (%d bytes of extended JSON)", b[:limit], len(b))
	}
	return string(b)
}
