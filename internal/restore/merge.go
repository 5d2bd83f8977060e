package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/repo"
)

// executeStaged is a filtered or merging restore. It checks the target
// namespaces first (refusing what is in the way before anything is
// written), restores the plan into a staging on the target (the one
// restore pipeline, into other names), checks the filter on the server,
// checks the targets again (--drop drops them now), copies the documents
// that match the filter into the targets as Merge says, and drops the
// staging, however the run ends.
func executeStaged(ctx context.Context, r *repo.Repository, client *mongo.Client, p *Plan, o Options, clock *phaseClock) (rep Report, wrote bool, err error) {
	rep = Report{Snapshot: p.Snapshot.ID, Target: p.Target, Staged: true}
	clock.enter("check")
	if err := Resolve(ctx, r, p); err != nil {
		return rep, false, err
	}
	findings, err := Check(ctx, client, *p)
	if err != nil {
		return rep, false, err
	}
	if len(findings) > 0 && !o.Drop {
		return rep, false, &TargetError{Findings: findings, Merge: p.Merge}
	}
	st := newStaging(client, o.Log)
	defer st.drop(ctx)
	st.dropLeftovers(ctx, time.Now())
	sp, err := st.plan(*p)
	if err != nil {
		return rep, false, err
	}
	clock.enter("stage")
	inner := &phaseClock{progress: o.Progress, last: time.Now()} // the progress shows the staging's phases
	staged, _, err := executeDirect(ctx, r, client, &sp, o, inner)
	rep.Documents, rep.Entries, rep.Replay, rep.LastApplied = staged.Documents, staged.Entries, staged.Replay, staged.LastApplied
	if err != nil {
		return rep, false, fmt.Errorf("stage the documents as of %s: %w", p.Target, err)
	}
	clock.enter("copy")
	if err := copyStaged(ctx, client, st, p, o, &rep, &wrote); err != nil {
		return rep, wrote, err
	}
	clock.enter("cleanup")
	st.drop(ctx)
	return rep, wrote, nil
}

// copyStaged copies what the staging holds into the targets.
func copyStaged(ctx context.Context, client *mongo.Client, st *staging, p *Plan, o Options, rep *Report, wrote *bool) error {
	colls, err := st.collections(ctx)
	if err != nil {
		return err
	}
	if colls, err = matching(ctx, st, colls, p.Filter); err != nil {
		return err
	}
	if err := clearTargets(ctx, client, *p, o, wrote); err != nil {
		return err
	}
	for _, c := range colls {
		nr, err := copyCollection(ctx, client, st, c, p, o, wrote)
		rep.Merged.add(nr.Merged)
		if nr.Target.Coll != "" {
			rep.Namespaces = append(rep.Namespaces, nr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// matching keeps the staged collections where the filter matches a
// document (all of them without a filter), asking the server: a query it
// refuses stops the restore before its first write. It reads each
// collection up to its first match; one without any is read once, here,
// instead of by the copy.
func matching(ctx context.Context, st *staging, colls []stagedCollection, filter bson.Raw) ([]stagedCollection, error) {
	if filter == nil {
		return colls, nil
	}
	var out []stagedCollection
	for _, c := range colls {
		err := st.coll(c.Source).FindOne(ctx, filter, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		var se mongo.ServerError
		switch {
		case err == nil:
			out = append(out, c)
		case errors.Is(err, mongo.ErrNoDocuments):
		case errors.As(err, &se):
			return nil, invalid("filter", "%s: the target's server refuses the query: %v", show(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: filter}), err)
		default:
			return nil, fmt.Errorf("query the documents of %s: %w", c.Source, err)
		}
	}
	return out, nil
}

// copyCollection copies the staged documents of one collection that match
// the filter into its target, creating the target (with the options and
// indexes it had at the restore point) when it is absent: at once without
// a filter, else with its first document.
func copyCollection(ctx context.Context, client *mongo.Client, st *staging, c stagedCollection, p *Plan, o Options, wrote *bool) (NamespaceReport, error) {
	dst := p.Mapper.Target(c.Source.DB, c.Source.Coll)
	nr := NamespaceReport{Source: c.Source, Target: dst}
	w := &mergeWriter{client: client, ns: dst, merge: p.Merge, server: o.Server, log: o.Log}
	ready := false
	ensure := func() error {
		if ready {
			return nil
		}
		ready, *wrote = true, true
		return ensureTarget(ctx, client, dst, c, p.Merge)
	}
	if p.Filter == nil {
		if err := ensure(); err != nil {
			return nr, err
		}
	}
	var filter any = bson.D{}
	if p.Filter != nil {
		filter = p.Filter
	}
	cur, err := st.coll(c.Source).Find(ctx, filter)
	if err != nil {
		return nr, fmt.Errorf("query the documents of %s as of %s: %w", c.Source, p.Target, err)
	}
	defer cur.Close(ctx)
	var batch []bson.Raw
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := ensure(); err != nil {
			return err
		}
		err := w.write(ctx, batch)
		batch, size = batch[:0], 0
		return err
	}
	for cur.Next(ctx) {
		batch = append(batch, append(bson.Raw(nil), cur.Current...))
		if size += len(cur.Current); len(batch) >= maxBatchDocs || size >= o.BatchBytes {
			if err := flush(); err != nil {
				return w.report(nr), err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return w.report(nr), fmt.Errorf("read the documents of %s as of %s: %w", c.Source, p.Target, err)
	}
	if err := flush(); err != nil || !ready {
		return w.report(nr), err
	}
	nr.Final, err = client.Database(dst.DB).Collection(dst.Coll).EstimatedDocumentCount(ctx)
	if err != nil {
		return w.report(nr), fmt.Errorf("count documents of %s: %w", dst, err)
	}
	return w.report(nr), nil
}

// ensureTarget creates an absent target collection with the options and
// indexes staged; an existing one gets the staged indexes too, unless the
// restore merges into it (a merge leaves its indexes alone).
func ensureTarget(ctx context.Context, client *mongo.Client, dst Namespace, c stagedCollection, merge Merge) error {
	lister := collectionLister{client: client, byDB: map[string]map[string]bson.Raw{}}
	spec, err := lister.spec(ctx, dst)
	if err != nil {
		return err
	}
	switch {
	case spec == nil:
		cmd := withFirst("create", dst.Coll, c.Options)
		if err := client.Database(dst.DB).RunCommand(ctx, cmd).Err(); err != nil && !hasCode(err, codeNamespaceExists) {
			return fmt.Errorf("create collection %s: %w", dst, err)
		}
	case merge != MergeNone:
		return nil
	}
	_, err = createIndexes(ctx, client, dst, c.Indexes)
	return err
}

// mergeWriter writes restored documents into one target collection as its
// merge mode says, and counts what it did.
type mergeWriter struct {
	client *mongo.Client
	ns     Namespace
	merge  Merge
	server *Server
	log    *slog.Logger
	Merged
}

func (w *mergeWriter) report(nr NamespaceReport) NamespaceReport {
	nr.Merged = w.Merged
	return nr
}

func (w *mergeWriter) write(ctx context.Context, docs []bson.Raw) error {
	if w.merge == MergeOverwrite {
		return w.overwrite(ctx, docs)
	}
	return w.insertMissing(ctx, docs)
}

// insertMissing inserts docs; one whose _id the target holds already
// (when merging, or written there meanwhile) is left alone.
func (w *mergeWriter) insertMissing(ctx context.Context, docs []bson.Raw) error {
	coll := w.client.Database(w.ns.DB).Collection(w.ns.Coll)
	batch := make([]any, len(docs))
	for i, d := range docs {
		batch[i] = d
	}
	_, err := coll.InsertMany(ctx, batch, insertOptions(w.server))
	var bwe mongo.BulkWriteException
	if err == nil {
		w.Inserted += int64(len(docs))
		return nil
	}
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return fmt.Errorf("insert into %s: %w", w.ns, err)
	}
	var dup []bson.RawValue
	for _, we := range bwe.WriteErrors {
		if we.Code != codeDuplicateKey || we.Index < 0 || we.Index >= len(docs) {
			return fmt.Errorf("insert into %s: %w", w.ns, err)
		}
		dup = append(dup, docs[we.Index].Lookup("_id"))
	}
	// A duplicate key is the _id's only when the target holds that _id:
	// another unique index of the target refusing a document is an error.
	held, err2 := readByID(ctx, coll, dup, true, nil)
	if err2 != nil {
		return err2
	}
	for _, id := range dup {
		if _, ok := held[idKey(id)]; !ok {
			return fmt.Errorf("insert into %s: document _id %s: a unique index of the target refuses it: %w", w.ns, show(id), err)
		}
	}
	w.Inserted += int64(len(docs) - len(dup))
	w.LeftAlone += int64(len(dup))
	return nil
}

// overwrite writes every document of docs whose _id the target lacks or
// holds in another version, by _id.
func (w *mergeWriter) overwrite(ctx context.Context, docs []bson.Raw) error {
	coll := w.client.Database(w.ns.DB).Collection(w.ns.Coll)
	ids := make([]bson.RawValue, len(docs))
	for i, d := range docs {
		ids[i] = d.Lookup("_id")
	}
	held, err := readByID(ctx, coll, ids, false, nil)
	if err != nil {
		return err
	}
	var put []bson.Raw
	var m Merged
	for i, d := range docs {
		old, ok := held[idKey(ids[i])]
		switch {
		case !ok:
			m.Inserted++
		case bytes.Equal(old, d):
			m.LeftAlone++
			continue
		default:
			m.Replaced++
		}
		put = append(put, d)
	}
	if err := putBack(ctx, w.client, w.server, w.log, w.ns, put, nil); err != nil {
		return err
	}
	w.Merged.add(m)
	return nil
}

// codeDuplicateKey is the server's answer to a duplicate key.
const codeDuplicateKey = 11000

// idChunk bounds the _ids of one $in query.
const idChunk = 500

// readByID reads the documents of coll with these _ids (only their _id
// when idOnly) that also match filter (nil: any), keyed by idKey.
func readByID(ctx context.Context, coll *mongo.Collection, ids []bson.RawValue, idOnly bool, filter bson.Raw) (map[string]bson.Raw, error) {
	out := make(map[string]bson.Raw, len(ids))
	opts := options.Find()
	if idOnly {
		opts.SetProjection(bson.D{{Key: "_id", Value: 1}})
	}
	for len(ids) > 0 {
		n := min(idChunk, len(ids))
		in := make(bson.A, n)
		for i, id := range ids[:n] {
			in[i] = id
		}
		var query any = bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: in}}}}
		if filter != nil {
			query = bson.D{{Key: "$and", Value: bson.A{query, filter}}}
		}
		cur, err := coll.Find(ctx, query, opts)
		if err != nil {
			return nil, fmt.Errorf("read documents of %s.%s by _id: %w", coll.Database().Name(), coll.Name(), err)
		}
		for cur.Next(ctx) {
			out[idKey(cur.Current.Lookup("_id"))] = append(bson.Raw(nil), cur.Current...)
		}
		err = cur.Err()
		cur.Close(ctx)
		if err != nil {
			return nil, fmt.Errorf("read documents of %s.%s by _id: %w", coll.Database().Name(), coll.Name(), err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// putBack writes documents by _id into ns (inserting or replacing each)
// and deletes the documents with the ids del, through replay's Applier:
// the restore's own writes (exact bytes, a top-level $ field, empty
// timestamps, the target's write batch sizes), as if replaying inserts
// and deletes.
func putBack(ctx context.Context, client *mongo.Client, server *Server, log *slog.Logger, ns Namespace, put []bson.Raw, del []bson.RawValue) error {
	if len(put)+len(del) == 0 {
		return nil
	}
	entries := make([]bson.Raw, 0, len(put)+len(del))
	for _, d := range put {
		e, err := bson.Marshal(bson.D{{Key: "op", Value: "i"}, {Key: "ns", Value: ns.String()}, {Key: "o", Value: d}})
		if err != nil {
			return fmt.Errorf("write %s: %w", ns, err)
		}
		entries = append(entries, e)
	}
	for _, id := range del {
		e, err := bson.Marshal(bson.D{{Key: "op", Value: "d"}, {Key: "ns", Value: ns.String()}, {Key: "o", Value: bson.D{{Key: "_id", Value: id}}}})
		if err != nil {
			return fmt.Errorf("write %s: %w", ns, err)
		}
		entries = append(entries, e)
	}
	a := &replay.Applier{Client: client, Log: log, BypassEmptyTsReplacement: server.BypassEmptyTsReplacement}
	if _, err := a.Apply(ctx, entries); err != nil {
		return fmt.Errorf("write %s: %w", ns, err)
	}
	return nil
}
