package restore

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Progress counts what a running restore has done. Its methods are safe for
// concurrent use; a nil *Progress counts nothing.
type Progress struct {
	started                    atomic.Int64 // unix nanoseconds; 0 until the restore starts
	phase                      atomic.Value // string
	totalDocs, totalChunks     atomic.Int64
	docs, chunks, bytes        atomic.Int64
	totalSegments              atomic.Int64
	segments, entries, applied atomic.Int64
	// For the ETA (see ETA): the plan's chunk bytes and entries, and when
	// the current phase began (unix nanoseconds).
	totalBytes, totalEntries, phaseStarted atomic.Int64
}

// start counts plan's work from zero. An undo restores twice (its two
// stagings): the counts start again with each, the elapsed time runs from
// the first.
func (p *Progress) start(plan Plan) {
	if p == nil {
		return
	}
	p.started.CompareAndSwap(0, time.Now().UnixNano())
	for _, c := range []*atomic.Int64{&p.docs, &p.chunks, &p.bytes, &p.segments, &p.entries, &p.applied} {
		c.Store(0)
	}
	p.totalDocs.Store(plan.Documents)
	p.totalChunks.Store(int64(plan.Chunks))
	p.totalSegments.Store(int64(len(plan.Segments)))
	p.totalBytes.Store(plan.ChunkBytes)
	p.totalEntries.Store(plan.Entries)
}

// startWrites counts an undo's writes from here: total documents to write.
func (p *Progress) startWrites(total int64) {
	if p != nil {
		p.totalDocs.Store(total)
		p.docs.Store(0)
	}
}

func (p *Progress) addWritten(n int64) {
	if p != nil {
		p.docs.Add(n)
	}
}

// Documents reports the documents loaded so far and the total to load (in
// an undo's apply: written, and to write).
func (p *Progress) Documents() (done, total int64) {
	if p == nil {
		return 0, 0
	}
	return p.docs.Load(), p.totalDocs.Load()
}

func (p *Progress) setPhase(s string) {
	if p != nil {
		p.phase.Store(s)
		p.phaseStarted.Store(time.Now().UnixNano())
	}
}

func (p *Progress) addChunk(docs, size int64) {
	if p != nil {
		p.docs.Add(docs)
		p.chunks.Add(1)
		p.bytes.Add(size)
	}
}

func (p *Progress) addSegment(entries, applied, size int64) {
	if p != nil {
		p.segments.Add(1)
		p.entries.Add(entries)
		p.applied.Add(applied)
		p.bytes.Add(size)
	}
}

// Line is a one-line summary of the restore so far.
func (p *Progress) Line() string {
	phase := p.Phase()
	el := time.Since(time.Unix(0, p.started.Load())).Round(time.Second)
	line := fmt.Sprintf("%-8s documents %d/%d  chunks %d/%d  oplog segments %d/%d (%d entries applied)  %s",
		phase, p.docs.Load(), p.totalDocs.Load(), p.chunks.Load(), p.totalChunks.Load(),
		p.segments.Load(), p.totalSegments.Load(), p.applied.Load(), el)
	if left, step, ok := p.ETA(); ok {
		line += fmt.Sprintf("  ETA %s left in %s", left.Round(time.Second), step)
	}
	return line
}

// Phase is the step the restore is in (check, create, load, replay,
// indexes, users, count, done), "" before it starts.
func (p *Progress) Phase() string {
	s, _ := p.phase.Load().(string)
	return s
}

// Started reports whether the restore has begun.
func (p *Progress) Started() bool { return p.started.Load() != 0 }

// Log writes the progress as one log line.
func (p *Progress) Log(log *slog.Logger) { log.Info("restore progress", "status", p.Line()) }
