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
//
// A cross-shard transaction is prepared on every shard it wrote, under
// the same lsid and txnNumber. Replaying a cluster's shards merged by ts,
// every shard's prepare comes before any shard's decision (the
// coordinator decides once every participant has voted), so all of them
// are buffered here together, and the first decision read applies or
// discards the whole transaction: never one shard's part alone.
type txn struct {
	ops      []bson.Raw
	prepared bool
	parts    int // prepare entries read: one per participant shard
}

// txnKey identifies a transaction by its session (lsid) and txnNumber.
func txnKey(e entry) (string, bool) {
	if e.lsid == nil || !e.hasTxn {
		return "", false
	}
	return fmt.Sprintf("%x/%d", []byte(e.lsid), e.txnNumber), true
}

// TxnEvent is what an oplog entry does to a prepared transaction.
type TxnEvent int

// The events: an entry is none of them, or the prepare of a transaction
// (its applyOps with prepare: true), or its decision.
const (
	TxnNone TxnEvent = iota
	TxnPrepare
	TxnCommit
	TxnAbort
)

// TxnEventOf classifies an oplog entry for readers that follow prepared
// transactions without applying them (the restore's look-ahead past the
// restore point): the event, the transaction's key (lsid and txnNumber,
// the same on every shard of a cross-shard transaction; the Applier keys
// its buffer the same way), and for a commit the commitTimestamp, the
// cluster time at which the transaction's writes became visible (zero
// when the entry has none). Entries that are not commands cost one field
// lookup. A malformed entry is TxnNone: the Applier reports it.
func TxnEventOf(raw bson.Raw) (ev TxnEvent, key string, commitTS bson.Timestamp) {
	if op, ok := lookup(raw, "op"); !ok || op.Type != bson.TypeString || op.StringValue() != "c" {
		return TxnNone, "", commitTS
	}
	e, err := parseEntry(raw)
	if err != nil {
		return TxnNone, "", commitTS
	}
	key, inTxn := txnKey(e)
	es, err := elems(e.o)
	if !inTxn || err != nil || len(es) == 0 {
		return TxnNone, "", commitTS
	}
	switch es[0].key {
	case "applyOps":
		if p, _ := lookup(e.o, "prepare"); truthy(p) {
			return TxnPrepare, key, commitTS
		}
	case "commitTransaction":
		if v, ok := lookup(e.o, "commitTimestamp"); ok && v.Type == bson.TypeTimestamp {
			commitTS.T, commitTS.I = v.Timestamp()
		}
		return TxnCommit, key, commitTS
	case "abortTransaction":
		return TxnAbort, key, commitTS
	}
	return TxnNone, "", commitTS
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
		if t.prepared {
			t.parts++
		}
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
		if a.laterDecision(key) {
			a.stats.Commands++
			return nil
		}
		// Its prepare lies before the window: the snapshot should have started
		// earlier (§7.4). Nothing to apply here.
		a.log().Warn("replay: commitTransaction of a transaction whose prepare was not replayed; its writes are missing unless the snapshot holds them")
		a.stats.Skipped++
		return nil
	}
	a.decide(key, t)
	a.stats.Commands++
	return a.applyInner(ctx, t.ops, depth)
}

func (a *Applier) abortTxn(e entry) error {
	key, _ := txnKey(e)
	if t, ok := a.txns[key]; ok {
		a.decide(key, t)
	} else {
		a.laterDecision(key)
	}
	a.stats.Commands++
	return nil
}

// decide ends transaction key at its first decision. The other
// participants' decisions (one per further prepare read) are still to
// come in a cluster's merged oplog; laterDecision recognizes them.
func (a *Applier) decide(key string, t *txn) {
	delete(a.txns, key)
	if t.parts > 1 {
		if a.decided == nil {
			a.decided = map[string]int{}
		}
		a.decided[key] = t.parts - 1
	}
}

// laterDecision reports whether a decision is another participant's of a
// transaction already applied or discarded, and counts it off.
func (a *Applier) laterDecision(key string) bool {
	n, ok := a.decided[key]
	switch {
	case !ok:
		return false
	case n <= 1:
		delete(a.decided, key)
	default:
		a.decided[key] = n - 1
	}
	return true
}
