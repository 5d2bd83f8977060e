package oracle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Documents is one collection or view read without a server (an export's
// files): its documents in any order, its index specs as listIndexes shows
// them and its options as listCollections does.
type Documents struct {
	Docs    []bson.Raw
	Indexes []bson.Raw
	Options bson.Raw
	View    bool
}

// CompareDocuments checks collections read without a server against mark
// as Compare checks a deployment: every namespace the filter selects must
// be in got (keyed by its name after the filter's Rename) with the same
// documents, byte for byte, indexes and options, and got may hold no other
// in the filter's scope. It returns a *Mismatch naming the first
// difference, the documents of both sides shown.
func CompareDocuments(mark Mark, f Filter, got map[string]Documents) error {
	have := State{}
	for tns, d := range got {
		db, coll := splitNS(tns)
		if !f.targetScope(db, coll) {
			continue
		}
		c, err := collectionOf(d, mark.State[sourceOf(mark, f, tns)])
		if err != nil {
			return fmt.Errorf("read %s: %w", tns, err)
		}
		have[tns] = c
	}
	return compareState(context.Background(), nil, mark, f, have)
}

// sourceOf is the mark's namespace the filter renames to tns, or tns.
func sourceOf(mark Mark, f Filter, tns string) string {
	for ns := range mark.State {
		if tdb, tcoll := f.Target(splitNS(ns)); tdb+"."+tcoll == tns {
			return ns
		}
	}
	return tns
}

// collectionOf hashes d as hashCollection hashes a server's collection. The
// documents, found in any order, are taken in the order of want's digests
// (its _id order), any others after them: a state that holds the same
// documents then has the same hash.
func collectionOf(d Documents, want *Collection) (*Collection, error) {
	c := &Collection{Options: canonical(d.Options)}
	if d.View {
		c.Type, c.Meta = "view", sum(c.Options)
		return c, nil
	}
	c.setIndexes(normalIndexes(d.Indexes))
	byID := map[string]bson.Raw{}
	var order []string
	for _, doc := range d.Docs {
		dg, err := digest(doc)
		if err != nil {
			return nil, err
		}
		if _, dup := byID[dg.ID]; dup {
			return nil, fmt.Errorf("_id %s twice", dg.ID)
		}
		byID[dg.ID] = doc
		order = append(order, dg.ID)
	}
	var ids []string
	if want != nil {
		for _, dg := range want.Digests {
			if byID[dg.ID] != nil {
				ids = append(ids, dg.ID)
			}
		}
	}
	placed := map[string]bool{}
	for _, id := range ids {
		placed[id] = true
	}
	for _, id := range order {
		if !placed[id] {
			ids = append(ids, id)
		}
	}
	h := sha256.New()
	for _, id := range ids {
		doc := byID[id]
		h.Write(doc)
		dg, _ := digest(doc)
		c.Docs++
		c.Bytes += int64(len(doc))
		c.Digests = append(c.Digests, dg)
		c.docs = append(c.docs, doc)
	}
	c.Hash = hex.EncodeToString(h.Sum(nil))
	return c, nil
}
