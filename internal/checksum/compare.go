package checksum

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Difference is one collection whose sums differ.
type Difference struct {
	Namespace string
	Want, Got Sum // Want is the reference's (the source's), Got the checked side's
}

func (d Difference) String() string {
	return fmt.Sprintf("%s: %d documents with SHA-256 %s, want %d documents with SHA-256 %s",
		d.Namespace, d.Got.Count, short(d.Got.SHA256), d.Want.Count, short(d.Want.SHA256))
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// Compare lists, by namespace, every collection whose sums differ between
// want and got. A namespace only one side names counts as an empty
// collection on the other (a content checksum does not tell an empty
// collection from a missing one).
func Compare(want, got []Sum) []Difference {
	w, g := byNamespace(want), byNamespace(got)
	names := map[string]bool{}
	for ns := range w {
		names[ns] = true
	}
	for ns := range g {
		names[ns] = true
	}
	var out []Difference
	for ns := range names {
		a, b := w[ns], g[ns]
		a.Namespace, b.Namespace = ns, ns
		if a.SHA256 == "" {
			a.SHA256 = emptySHA256
		}
		if b.SHA256 == "" {
			b.SHA256 = emptySHA256
		}
		if !a.Equal(b) {
			out = append(out, Difference{Namespace: ns, Want: a, Got: b})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace < out[j].Namespace })
	return out
}

// emptySHA256 is the sum of a collection with no documents.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func byNamespace(sums []Sum) map[string]Sum {
	m := make(map[string]Sum, len(sums))
	for _, s := range sums {
		m[s.Namespace] = s
	}
	return m
}

// Document is the first document where two collections differ: its _id
// and both versions, as canonical Extended JSON ("" when that side lacks
// the document).
type Document struct {
	Namespace string
	ID        string
	Want, Got string
}

func (d Document) String() string {
	show := func(s string) string {
		if s == "" {
			return "(absent)"
		}
		return s
	}
	return fmt.Sprintf("%s: first differing document _id %s: want %s, got %s", d.Namespace, d.ID, show(d.Want), show(d.Got))
}

// FirstDifference walks ns on both sides in _id order at once and returns
// the first document that differs; ok is false when both hold the same
// documents. It reads each side once and holds one document of each.
func FirstDifference(ctx context.Context, want, got Reader, ns string) (d Document, ok bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wc, gc := stream(ctx, want, ns), stream(ctx, got, ns)
	for {
		a, b := <-wc, <-gc
		if a.err != nil || b.err != nil {
			return d, false, errors.Join(a.err, b.err)
		}
		if a.doc == nil && b.doc == nil {
			return d, false, nil
		}
		if bytes.Equal(a.doc, b.doc) {
			continue
		}
		d = Document{Namespace: ns}
		switch {
		case a.doc == nil:
			d.ID, d.Got = idOf(b.doc), b.doc.String()
		case b.doc == nil:
			d.ID, d.Want = idOf(a.doc), a.doc.String()
		case bytes.Equal(a.doc.Lookup("_id").Value, b.doc.Lookup("_id").Value):
			d.ID, d.Want, d.Got = idOf(a.doc), a.doc.String(), b.doc.String()
		default:
			// Different _ids: the smaller one is absent on the other side;
			// the server's order says which comes first, and want's is shown.
			d.ID, d.Want = idOf(a.doc), a.doc.String()
		}
		return d, true, nil
	}
}

type item struct {
	doc bson.Raw // nil at the end
	err error
}

// stream sends ns's documents in _id order, then a nil document; a copy
// of each, since the cursor reuses its buffer.
func stream(ctx context.Context, r Reader, ns string) <-chan item {
	ch := make(chan item, 64)
	go func() {
		err := r.Each(ctx, ns, func(doc bson.Raw) error {
			select {
			case ch <- item{doc: bytes.Clone(doc)}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		select {
		case ch <- item{err: err}:
		case <-ctx.Done():
		}
	}()
	return ch
}

func idOf(doc bson.Raw) string {
	v := doc.Lookup("_id")
	out, err := bson.MarshalExtJSON(bson.D{{Key: "_id", Value: v}}, true, false)
	if err != nil {
		return v.String()
	}
	s := string(out)
	return s[len(`{"_id":`) : len(s)-1]
}
