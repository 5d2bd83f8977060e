package export

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// sink writes one output format. begin comes once, before any document;
// then for each namespace start, its documents, end; then commit, or abort
// after a failure.
type sink interface {
	begin(nss []Namespace) error
	start(n Namespace) error
	doc(d bson.Raw) error
	end(n Namespace) error
	commit() error
	abort()
}

// openSink creates the request's output: a stream, a file or a directory.
// It checks the output again (it may have appeared since Validate).
func openSink(req Request, o Options) (sink, error) {
	if req.Out == Stdout {
		if o.Stdout == nil {
			return nil, errors.New("open the output: no stream to write - to")
		}
		w := &stream{Writer: bufio.NewWriterSize(o.Stdout, 1<<20)}
		if req.Format == Archive {
			return &archive{out: w, tool: o.ToolVersion}, nil
		}
		return &single{out: w, format: req.Format}, nil
	}
	if err := req.checkOut(); err != nil {
		return nil, err
	}
	if req.Format == Archive {
		f, err := newFileOut(req.Out)
		if err != nil {
			return nil, err
		}
		return &archive{out: f, tool: o.ToolVersion}, nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(req.Out), "."+filepath.Base(req.Out)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("create the output directory: %w", err)
	}
	return &dir{final: req.Out, root: tmp, format: req.Format}, nil
}

// output is where an archive goes: written, then committed or aborted.
type output interface {
	io.Writer
	commit() error
	abort()
}

// stream is a caller's writer (standard output): committing flushes it,
// aborting leaves what was written (a reader sees the stream cut short).
type stream struct{ *bufio.Writer }

func (s *stream) commit() error {
	if err := s.Flush(); err != nil {
		return fmt.Errorf("write the output: %w", err)
	}
	return nil
}

func (s *stream) abort() { _ = s.Flush() }

// fileOut writes a file under a temporary name beside its path and renames
// it into place when committed (replacing what was there: Validate and
// openSink allow that only for an empty file or with --force).
type fileOut struct {
	*bufio.Writer
	f     *os.File
	final string
}

func newFileOut(path string) (*fileOut, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("create the output file: %w", err)
	}
	return &fileOut{Writer: bufio.NewWriterSize(f, 1<<20), f: f, final: path}, nil
}

func (o *fileOut) commit() error {
	err := o.Flush()
	if err == nil {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(o.f.Name(), o.final)
	}
	if err != nil {
		os.Remove(o.f.Name())
		return fmt.Errorf("write %s: %w", o.final, err)
	}
	return nil
}

func (o *fileOut) abort() {
	o.f.Close()
	os.Remove(o.f.Name())
}
