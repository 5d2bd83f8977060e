package scalebench

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plots draws scale-time.png (log-log: a straight line of slope 1 is
// linear growth, the dashed line shows that slope) and scale-memory.png
// (log size, linear MiB: flat is what memory should be), each with the
// data axis on the left and the oplog axis on the right.
func plots(dir string, ms []measurement) error {
	for _, kind := range []string{"time", "memory"} {
		var row []*plot.Plot
		for _, axis := range []string{axisData, axisOplog} {
			p, err := panel(ms, axis, kind)
			if err != nil {
				return err
			}
			row = append(row, p)
		}
		img := vgimg.New(vg.Points(1100), vg.Points(480))
		dc := draw.New(img)
		tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 6, PadTop: vg.Millimeter * 2,
			PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
		canvases := plot.Align([][]*plot.Plot{row}, tiles, dc)
		for i, p := range row {
			p.Draw(canvases[0][i])
		}
		name := filepath.Join(dir, "scale-"+kind+".png")
		f, err := os.Create(name)
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// panel is one axis's plot of time (seconds, log) or memory (peak RSS in
// MiB, linear) against size (log), one line per command.
func panel(ms []measurement, axis, kind string) (*plot.Plot, error) {
	p := plot.New()
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	seen := map[int64]bool{}
	for _, m := range sorted(ms) {
		if m.Axis == axis && !seen[m.X] {
			seen[m.X] = true
			ticks = append(ticks, plot.Tick{Value: float64(m.X), Label: xLabel(axis, m.X)})
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	if axis == axisData {
		p.X.Label.Text = "data set size (FerretDB test server, file:// repository)"
	} else {
		p.X.Label.Text = "oplog length (synthetic inserts, 16 MiB snapshot)"
	}
	if kind == "time" {
		p.Title.Text = "wall time, " + axis + " axis"
		p.Y.Label.Text = "seconds (log)"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	} else {
		p.Title.Text = "peak RSS (ru_maxrss), " + axis + " axis"
		p.Y.Label.Text = "MiB"
		p.Y.Min = 0
	}
	p.Legend.Top, p.Legend.Left = true, true
	var ref plotter.XYs // the slope-1 line through the slowest baseline
	for i, c := range commands {
		var xys plotter.XYs
		for _, m := range sorted(ms) {
			if m.Axis != axis || m.Name != c {
				continue
			}
			y := m.Elapsed.Seconds()
			if kind == "memory" {
				y = mib(m.MaxRSS)
			}
			xys = append(xys, plotter.XY{X: float64(m.X), Y: y})
		}
		if len(xys) == 0 {
			continue
		}
		// One color and shape per command, the same in every panel.
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s %s: %w", axis, kind, err)
		}
		l.Color, pts.Color, pts.Shape = plotutil.Color(i), plotutil.Color(i), plotutil.Shape(i)
		p.Add(l, pts)
		p.Legend.Add(c, l, pts)
		if kind == "time" && len(xys) > 1 && (ref == nil || xys[0].Y > ref[0].Y) {
			last := xys[len(xys)-1].X
			ref = plotter.XYs{xys[0], {X: last, Y: xys[0].Y * last / xys[0].X}}
		}
	}
	if ref != nil {
		l, err := plotter.NewLine(ref)
		if err != nil {
			return nil, fmt.Errorf("plot %s %s: %w", axis, kind, err)
		}
		l.Color = color.Gray{Y: 140}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
		p.Add(l)
		p.Legend.Add("linear (slope 1)", l)
	}
	// Room above the lines for the legend.
	if kind == "time" {
		p.Y.Max *= 6
	} else {
		p.Y.Max *= 1.35
	}
	return p, nil
}
