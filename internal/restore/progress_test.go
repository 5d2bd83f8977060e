package restore

import (
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/repo"
)

// An undo restores twice (its stagings): the second restore's counts start
// from zero, so the line never says more done than there is to do, and
// the elapsed time runs on from the first.
func TestProgressStartsAgain(t *testing.T) {
	var p Progress
	p.start(Plan{Documents: 1000, Chunks: 1, Segments: make([]repo.SegmentInfo, 2)})
	p.setPhase("replay")
	p.addChunk(1000, 4096)
	p.addSegment(600, 600, 100)
	p.addSegment(400, 400, 100)
	began := p.started.Load()
	p.start(Plan{Documents: 10, Chunks: 1, Segments: make([]repo.SegmentInfo, 1)})
	if done, total := p.Documents(); done != 0 || total != 10 {
		t.Errorf("documents %d/%d after the second start, want 0/10", done, total)
	}
	if line := p.Line(); !strings.Contains(line, "0/1") || strings.Contains(line, "1000/") || strings.Contains(line, "2/1") {
		t.Errorf("the line after the second start says %q: counts of the first restore", line)
	}
	if p.started.Load() != began {
		t.Error("the elapsed time started again")
	}
}
