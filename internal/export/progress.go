package export

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/rewind-backup/rewind/internal/restore"
)

// Progress counts what a running export has done. Its methods are safe for
// concurrent use; the CLI shows Line, the API could serve it.
type Progress struct {
	started       atomic.Int64 // unix nanoseconds; 0 until the export starts
	phase         atomic.Value // string
	totalEntries  atomic.Int64
	entries       atomic.Int64 // entries read in the current pass over the range
	chunks, read  atomic.Int64 // snapshot chunks read and their plaintext bytes (both passes)
	totalDocs     atomic.Int64
	docs, written atomic.Int64 // documents written and their BSON bytes
}

func (p *Progress) start(plan restore.Plan) {
	p.started.Store(time.Now().UnixNano())
	p.totalEntries.Store(plan.Entries)
}

func (p *Progress) setPhase(s string) { p.phase.Store(s) }

// Phase is the step the export is in: scan (reading the oplog range for
// the documents it writes), hold (reading those from the snapshot), replay,
// write; "" before it starts.
func (p *Progress) Phase() string {
	s, _ := p.phase.Load().(string)
	return s
}

// Started reports whether the export has begun.
func (p *Progress) Started() bool { return p.started.Load() != 0 }

// Line is a one-line summary of the export so far.
func (p *Progress) Line() string {
	el := time.Since(time.Unix(0, p.started.Load())).Round(time.Second)
	return fmt.Sprintf("%-6s oplog entries %d/%d  chunks read %d (%.1f MiB)  documents written %d/%d (%.1f MiB)  %s",
		p.Phase(), p.entries.Load(), p.totalEntries.Load(), p.chunks.Load(), float64(p.read.Load())/(1<<20),
		p.docs.Load(), p.totalDocs.Load(), float64(p.written.Load())/(1<<20), el)
}

// Log writes the progress as one log line.
func (p *Progress) Log(log *slog.Logger) { log.Info("export progress", "status", p.Line()) }
