package scalebench

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/bench/benchtool"
)

// TestRedraw draws the plots again from the scale.csv in
// $REWIND_SCALE_REDRAW (a directory BenchmarkScale wrote), without
// measuring anything: for changing how the plots look.
func TestRedraw(t *testing.T) {
	dir := os.Getenv("REWIND_SCALE_REDRAW")
	if dir == "" {
		t.Skip("set REWIND_SCALE_REDRAW to a directory holding scale.csv to redraw its plots")
	}
	ms, err := readCSV(filepath.Join(dir, "scale.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := plots(dir, ms); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + growthReport(ms))
}

// readCSV reads what write stored in scale.csv.
func readCSV(name string) ([]measurement, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var ms []measurement
	for _, r := range rows[1:] {
		x, err1 := strconv.ParseInt(r[2], 10, 64)
		s, err2 := strconv.ParseFloat(r[4], 64)
		rss, err3 := strconv.ParseInt(r[5], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("read %s: bad row %q", name, r)
		}
		ms = append(ms, measurement{Axis: r[0], X: x, Run: benchtool.Run{Name: r[1],
			Elapsed: time.Duration(s * float64(time.Second)), MaxRSS: rss}})
	}
	return ms, nil
}
