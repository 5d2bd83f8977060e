package drill

import (
	"fmt"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/status"
)

// View is the result with its details as JSON.
func (r Result) View() status.Drill {
	v := status.DrillOf(r.DrillResult)
	v.Checksums, v.Reference, v.Document = r.Checksums, r.Reference, r.Document
	for _, d := range r.Differences {
		v.Differences = append(v.Differences, status.DrillDifference(d))
	}
	return v
}

// Summary is one line for logs and alerts: the verdict, the point and,
// when it did not pass, the problem.
func (r Result) Summary() string {
	point := "no point"
	if !r.Point.IsZero() {
		point = fmt.Sprintf("%s (%s)", r.Point.Time().Format(time.RFC3339), r.Point)
	}
	s := fmt.Sprintf("drill of %s (%s): %s", point, r.Chosen, strings.ToUpper(strings.ReplaceAll(r.Verdict, "-", " ")))
	if r.Problem != "" {
		s += ": " + r.Problem
	}
	return s
}
