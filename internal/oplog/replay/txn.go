package replay

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// txn is a transaction whose operations are buffered until it ends
// (shared/oplog/README.md §7): unprepared chains of partialTxn chunks end
// with an applyOps without partialTxn; prepared ones end with
// commitTransaction or abortTransaction.
type txn struct {
	ops      []bson.Raw
	prepared bool
}

// txnKey identifies a transaction by its session (lsid) and txnNumber.
func txnKey(e entry) (string, bool) {
	if e.lsid == nil || !e.hasTxn {
		return "", false
	}
	return fmt.Sprintf("%x/%d", []byte(e.lsid), e.txnNumber), true
}

func (a *Applier) applyOps(ctx context.Context, e entry, depth int) error {
	if depth >= maxNesting {
		return fmt.Errorf("%w: applyOps nested more than %d deep", errEntry, maxNesting)
	}
	v, _ := lookup(e.o, "applyOps")
	if v.Type != bson.TypeArray {
		return fmt.Errorf("%w: applyOps is %s, not an array", errEntry, v.Type)
	}
	vals, err := arrayValues(bson.Raw(v.Array()))
	if err != nil {
		return err
	}
	ops := make([]bson.Raw, len(vals))
	for i, op := range vals {
		if op.Type != bson.TypeEmbeddedDocument {
			return fmt.Errorf("%w: applyOps holds a %s", errEntry, op.Type)
		}
		ops[i] = op.Document()
	}
	partial, _ := lookup(e.o, "partialTxn")
	prepare, _ := lookup(e.o, "prepare")
	key, inTxn := txnKey(e)
	if truthy(partial) || truthy(prepare) {
		if !inTxn {
			return fmt.Errorf("%w: transaction chunk without lsid and txnNumber", errEntry)
		}
		if a.txns == nil {
			a.txns = map[string]*txn{}
		}
		t := a.txns[key]
		if t == nil {
			t = &txn{}
			a.txns[key] = t
		}
		t.ops = append(t.ops, ops...)
		t.prepared = truthy(prepare)
		return nil
	}
	if t, ok := a.txns[key]; inTxn && ok && !t.prepared {
		ops = append(t.ops, ops...) // the final chunk of a partialTxn chain
		delete(a.txns, key)
	}
	return a.applyInner(ctx, ops, depth)
}

// applyInner applies the operations of an applyOps in array order; they take
// the time of the enclosing entry.
func (a *Applier) applyInner(ctx context.Context, ops []bson.Raw, depth int) error {
	for i, raw := range ops {
		ie, err := parseEntry(raw)
		if err == nil {
			err = a.dispatch(ctx, ie, depth+1)
		}
		if err != nil {
			return fmt.Errorf("applyOps operation %d %s: %w", i, describe(raw), err)
		}
	}
	return nil
}

func (a *Applier) commitTxn(ctx context.Context, e entry, depth int) error {
	key, _ := txnKey(e)
	t, ok := a.txns[key]
	if !ok {
		// Its prepare lies before the window: the snapshot should have started
		// earlier (§7.4). Nothing to apply here.
		a.log().Warn("replay: commitTransaction of a transaction whose prepare was not replayed; its writes are missing unless the snapshot holds them")
		a.stats.Skipped++
		return nil
	}
	delete(a.txns, key)
	a.stats.Commands++
	return a.applyInner(ctx, t.ops, depth)
}

func (a *Applier) abortTxn(e entry) error {
	key, _ := txnKey(e)
	delete(a.txns, key)
	a.stats.Commands++
	return nil
}
