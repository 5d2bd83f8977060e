package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
	"golang.org/x/text/width"
)

// plainWidth is the line width when the output is not a terminal (a file,
// a pipe, a test): wide enough for the usual names, never a 250-column line.
const plainWidth = 100

// outputWidth is the terminal's width when w is one, else plainWidth.
func outputWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols >= 40 {
			return cols
		}
	}
	return plainWidth
}

// printer writes the restore plan and report so that no line is wider than
// width: values wrap under their label, namespaces too long for their
// column are shortened in the middle ("db.very…end"). Full names are in the
// API's JSON.
type printer struct {
	w      io.Writer
	width  int
	labelW int // "  label" padded to this
	err    error
}

func newPrinter(w io.Writer, width, labelW int) *printer {
	return &printer{w: w, width: width, labelW: labelW}
}

func (p *printer) line(s string) {
	if p.err == nil {
		_, p.err = fmt.Fprintln(p.w, strings.TrimRight(s, " "))
	}
}

// fact prints "  label   value", the value wrapped under itself.
func (p *printer) fact(label, value string) {
	head := "  " + label + strings.Repeat(" ", max(1, p.labelW+2-2-displayWidth(label)))
	p.wrap(head, strings.Repeat(" ", displayWidth(head)), value)
}

// item prints one entry of a list under a fact, wrapped.
func (p *printer) item(s string) { p.wrap("    ", "      ", s) }

// wrap writes text after first, word by word, continuing lines after
// indent; a word wider than a whole line is shortened in the middle.
func (p *printer) wrap(first, indent, text string) {
	cur, curW := first, displayWidth(first)
	bare := true
	for _, word := range strings.Fields(text) {
		avail := p.width - displayWidth(indent)
		word = shorten(word, avail)
		ww := displayWidth(word)
		if !bare && curW+1+ww > p.width {
			p.line(cur)
			cur, curW, bare = indent, displayWidth(indent), true
		}
		if !bare {
			cur, curW = cur+" ", curW+1
		}
		if bare && curW+ww > p.width {
			word = shorten(word, p.width-curW)
			ww = displayWidth(word)
		}
		cur, curW, bare = cur+word, curW+ww, false
	}
	p.line(cur)
}

// minColumn is the narrowest a shortened column gets.
const minColumn = 12

// table prints rows (the first is the header) in columns two spaces apart;
// the columns in shrink give up width, widest first, until lines fit.
func (p *printer) table(indent string, rows [][]string, shrink ...int) {
	if len(rows) == 0 {
		return
	}
	colW := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			colW[i] = max(colW[i], displayWidth(c))
		}
	}
	total := displayWidth(indent) + 2*(len(colW)-1)
	for _, w := range colW {
		total += w
	}
	for ; total > p.width; total-- { // one column at a time off the widest
		widest := -1
		for _, i := range shrink {
			if colW[i] > minColumn && (widest < 0 || colW[i] > colW[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break
		}
		colW[widest]--
	}
	for _, r := range rows {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range r {
			c = shorten(c, colW[i])
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", colW[i]-displayWidth(c)+2))
			}
		}
		p.line(b.String())
	}
}

// shorten cuts s to n display columns, keeping its start and end around
// an ellipsis: two collections that differ only at the end stay apart.
func shorten(s string, n int) string {
	if displayWidth(s) <= n {
		return s
	}
	if n <= 1 {
		return "…"
	}
	rs := []rune(s)
	headW := n / 2
	tailW := n - 1 - headW
	var head, tail []rune
	w := 0
	for _, r := range rs {
		if w+runeWidth(r) > headW {
			break
		}
		head, w = append(head, r), w+runeWidth(r)
	}
	w = 0
	for i := len(rs) - 1; i >= 0; i-- {
		if w+runeWidth(rs[i]) > tailW {
			break
		}
		tail, w = append([]rune{rs[i]}, tail...), w+runeWidth(rs[i])
	}
	return string(head) + "…" + string(tail)
}

// displayWidth counts terminal columns: East Asian wide and full-width
// characters (CJK, most emoji) take two.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

func runeWidth(r rune) int {
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}
