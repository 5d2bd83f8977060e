package snapshot

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Progress counts what a running snapshot has copied. Its methods are safe
// for concurrent use; a nil *Progress counts nothing.
type Progress struct {
	started atomic.Int64 // unix nanoseconds; 0 until the copy starts
	// Totals are known once the catalog is listed; the byte and document
	// totals are the server's estimates (zero when it gives none).
	collections, totalDocs, totalBytes atomic.Int64
	collsDone, docs, bytes, chunks     atomic.Int64
	parts                              atomic.Int64
	// OnChunk, if set, is called after every stored chunk (tests use it to
	// interrupt a copy at a known point).
	OnChunk func()
}

func (p *Progress) setTotals(cat *catalog) {
	if p == nil {
		return
	}
	p.started.CompareAndSwap(0, time.Now().UnixNano())
	var docs, size int64
	for _, c := range cat.colls {
		docs += c.estDocs
		size += c.estBytes
	}
	// Added: the parts of a cluster snapshot share one Progress.
	p.collections.Add(int64(len(cat.colls)))
	p.totalDocs.Add(docs)
	p.totalBytes.Add(size)
}

func (p *Progress) addChunk(docs, size int64) {
	if p == nil {
		return
	}
	p.docs.Add(docs)
	p.bytes.Add(size)
	p.chunks.Add(1)
	if p.OnChunk != nil {
		p.OnChunk()
	}
}

func (p *Progress) collectionDone() {
	if p != nil {
		p.collsDone.Add(1)
	}
}

func (p *Progress) addParts(n int) {
	if p != nil {
		p.parts.Add(int64(n))
	}
}

// Parts is how many units of work the copy had so far: one per collection,
// more for a collection split into _id ranges.
func (p *Progress) Parts() int64 { return p.parts.Load() }

// Counts returns documents, bytes and chunks copied so far.
func (p *Progress) Counts() (docs, bytes, chunks int64) {
	return p.docs.Load(), p.bytes.Load(), p.chunks.Load()
}

// Line is a one-line summary: collections, documents, bytes, rate, ETA.
func (p *Progress) Line() string {
	el := time.Since(time.Unix(0, p.started.Load())).Seconds()
	size := p.bytes.Load()
	rate := 0.0
	if el > 0 {
		rate = float64(size) / el
	}
	eta := "?"
	if total := p.totalBytes.Load(); total > size && rate > 0 {
		eta = (time.Duration(float64(total-size)/rate) * time.Second).Round(time.Second).String()
	} else if total > 0 && size >= total {
		eta = "0s"
	}
	return fmt.Sprintf("collections %d/%d  documents %d  %s/%s  %s/s  ETA %s",
		p.collsDone.Load(), p.collections.Load(), p.docs.Load(), mib(size), mib(p.totalBytes.Load()), mib(int64(rate)), eta)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Started reports whether the copy has begun.
func (p *Progress) Started() bool { return p.started.Load() != 0 }

// Log writes the progress as one log line.
func (p *Progress) Log(log *slog.Logger) {
	d, b, _ := p.Counts()
	log.Info("snapshot progress", "collections_done", p.collsDone.Load(), "collections", p.collections.Load(),
		"documents", d, "bytes", b, "line", p.Line())
}
