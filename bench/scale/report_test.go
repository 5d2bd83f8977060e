package scalebench

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rewind-backup/rewind/bench/benchtool"
)

// The axes a measurement belongs to.
const (
	axisData  = "data"  // X is the data set's size in MiB
	axisOplog = "oplog" // X is the oplog's length in entries
)

// commands is the order of the table's rows and the plots' legends.
var commands = []string{"snapshot", "list", "prune --dry-run", "restore --dry-run", "verify --read-data", "restore"}

// measurement is one command at one size.
type measurement struct {
	Axis string
	X    int64
	benchtool.Run
}

// growth is how a command's time and memory grew from the axis's smallest
// size to m: the ratios, and the time's exponent (log of the time ratio
// over log of the size ratio: 1 is linear, below 1 better, above worse).
type growth struct {
	TimeRatio, MemRatio, SizeRatio, Exponent float64
}

// growthOf compares m with the same command at the axis's smallest size
// (the baseline, measured in the same run); ok is false for the baseline
// itself and when there is none.
func growthOf(ms []measurement, m measurement) (g growth, ok bool) {
	var base *measurement
	for i := range ms {
		if ms[i].Axis == m.Axis && ms[i].Name == m.Name && (base == nil || ms[i].X < base.X) {
			base = &ms[i]
		}
	}
	if base == nil || base.X == m.X {
		return g, false
	}
	g.SizeRatio = float64(m.X) / float64(base.X)
	g.TimeRatio = m.Elapsed.Seconds() / base.Elapsed.Seconds()
	g.MemRatio = float64(m.MaxRSS) / float64(base.MaxRSS)
	g.Exponent = math.Log(g.TimeRatio) / math.Log(g.SizeRatio)
	return g, true
}

// xLabel is a size as the table prints it.
func xLabel(axis string, x int64) string {
	if axis == axisData {
		return fmt.Sprintf("%d MiB", x)
	}
	return fmt.Sprintf("10^%d entries", int(math.Round(math.Log10(float64(x)))))
}

// sorted is ms by axis (data first), command (commands' order), size.
func sorted(ms []measurement) []measurement {
	var out []measurement
	for _, axis := range []string{axisData, axisOplog} {
		for _, c := range commands {
			for _, m := range ms {
				if m.Axis == axis && m.Name == c {
					out = append(out, m)
				}
			}
		}
	}
	return out
}

// growthReport is the markdown table: one row per command and size, with
// the growth against the axis's smallest size.
func growthReport(ms []measurement) string {
	var b strings.Builder
	b.WriteString("| axis | command | size | time | peak RSS | time / baseline | size / baseline | time exponent | RSS / baseline |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, m := range sorted(ms) {
		row := fmt.Sprintf("| %s | %s | %s | %.2f s | %.1f MiB |", m.Axis, m.Name, xLabel(m.Axis, m.X), m.Elapsed.Seconds(), mib(m.MaxRSS))
		if g, ok := growthOf(ms, m); ok {
			row += fmt.Sprintf(" %.2f | %.0f | %.2f | %.2f |", g.TimeRatio, g.SizeRatio, g.Exponent, g.MemRatio)
		} else {
			row += " baseline | | | |"
		}
		b.WriteString(row + "\n")
	}
	return b.String()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// write stores the measurements in dir: scale.csv, scale.md (the table and
// the load average) and the plots scale-time.png and scale-memory.png.
func write(dir string, ms []measurement, load string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.Create(filepath.Join(dir, "scale.csv"))
	if err != nil {
		return fmt.Errorf("create scale.csv: %w", err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"axis", "command", "size", "unit", "seconds", "peak_rss_bytes"})
	for _, m := range sorted(ms) {
		unit := "MiB"
		if m.Axis == axisOplog {
			unit = "entries"
		}
		_ = w.Write([]string{m.Axis, m.Name, strconv.FormatInt(m.X, 10), unit,
			strconv.FormatFloat(m.Elapsed.Seconds(), 'f', 3, 64), strconv.FormatInt(m.MaxRSS, 10)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("write scale.csv: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write scale.csv: %w", err)
	}
	md := growthReport(ms) + "\nLoad average (1, 5, 15 min) at the end of the run: " + load + "\n"
	if err := os.WriteFile(filepath.Join(dir, "scale.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("write scale.md: %w", err)
	}
	return plots(dir, ms)
}
