package restore

import (
	"fmt"
	"time"
)

// The one-line summaries of a restore and an undo in their audit entries
// (repo.Audited).

func restoreDetail(rep Report) string {
	return fmt.Sprintf("snapshot %s; %d documents loaded, %d oplog entries replayed, %d namespaces, in %s",
		rep.Snapshot, rep.Documents, rep.Entries, len(rep.Namespaces), rep.Duration.Round(time.Millisecond))
}

func undoDetail(rep UndoReport) string {
	c := rep.UndoCounts
	return fmt.Sprintf("%d changed, %d restored, %d reinserted, %d deleted, %d conflicts left, %d forced",
		c.Changed, c.Restored, c.Reinserted, c.Deleted, c.ConflictsLeft, c.ConflictsForced)
}
