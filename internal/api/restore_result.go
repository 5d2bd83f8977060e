package api

import "github.com/rewind-backup/rewind/internal/restore"

// RestoreResultOf is a finished restore as the API answers it; `rewind
// restore --json` prints the same.
func RestoreResultOf(rep restore.Report) RestoreResult { return restoreResult(rep) }
