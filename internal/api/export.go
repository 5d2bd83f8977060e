package api

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/rewind-backup/rewind/internal/export"
	"github.com/rewind-backup/rewind/internal/restore"
)

// export is GET /api/v1/export: the data as of a restore point, computed
// from the repository alone (export.Prepare and Prepared.Write, as `rewind
// export` runs them), sent as a download. An archive streams as the
// export writes it. The jsonl and bson formats are directories: the export
// writes one in a temporary directory of the agent, then sends it as one
// tar stream (DB/NAME.jsonl or DB/NAME.bson, DB/NAME.metadata.json), and
// removes it. Every error before the first byte is answered in the
// envelope; one after it cuts the stream short (the client sees the
// connection end before the response does), and the agent logs it.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	p := newParams(r, []string{"to", "format"}, []string{"ns"})
	req := export.Request{Include: p.list("ns"), Format: p.format("format"), Out: export.Stdout}
	if to := p.str("to"); to != "" && p.err == nil {
		var err error
		req.To, err = restore.ParseWhen(to)
		p.failWith(err)
	}
	if p.err == nil {
		p.failWith(req.Validate())
	}
	if p.err != nil {
		badRequest(w, p.err)
		return
	}
	if req.Format != export.Archive {
		tmp, err := os.MkdirTemp("", "rewind-export-")
		if err != nil {
			WriteInternal(w, s.d.Log, "create a temporary directory for the export: %v", err)
			return
		}
		defer os.RemoveAll(tmp)
		req.Out = filepath.Join(tmp, "export")
	}
	pe, err := export.Prepare(r.Context(), s.d.Repo, req)
	if err != nil {
		s.refused(w, "plan export", err, http.StatusUnprocessableEntity, CodeNotRestorable)
		return
	}
	defer pe.Release()
	dl := &download{w: w, name: fmt.Sprintf("rewind-%d-%d", pe.Plan.Target.T, pe.Plan.Target.I)}
	if req.Format == export.Archive {
		dl.name, dl.contentType = dl.name+".archive", "application/octet-stream"
	} else {
		dl.name, dl.contentType = dl.name+"-"+string(req.Format)+".tar", "application/x-tar"
	}
	_, err = pe.Write(r.Context(), export.Options{Stdout: dl, ToolVersion: "rewind " + s.d.Version, Log: s.d.Log})
	if err == nil && req.Format != export.Archive {
		err = writeTar(dl, req.Out)
	}
	if err != nil {
		s.downloadFailed(dl, "export", err)
		return
	}
	s.d.Log.Info("api: export sent", "to", pe.Plan.Target.String(), "format", req.Format, "file", dl.name)
}

// downloadFailed answers an error of a download: in the envelope before
// its first byte; after it, by ending the response without its end (the
// chunked encoding's last chunk), so that the client sees an incomplete
// download rather than a short one that looks whole.
func (s *Server) downloadFailed(dl *download, what string, err error) {
	if !dl.started {
		s.refused(dl.w, what, err, http.StatusServiceUnavailable, CodeUnavailable)
		return
	}
	s.d.Log.Warn("api: "+what+" failed after its first byte: the download is cut short", "file", dl.name, "err", err)
	panic(http.ErrAbortHandler)
}

// download is the response of an export: the status and headers are sent
// with the first byte, so that an error before it can still be answered
// in the envelope.
type download struct {
	w                 http.ResponseWriter
	name, contentType string
	started           bool
}

func (d *download) Write(b []byte) (int, error) {
	if !d.started {
		d.started = true
		h := d.w.Header()
		h.Set("Content-Type", d.contentType)
		h.Set("Content-Disposition", `attachment; filename="`+d.name+`"`)
		h.Set("X-Content-Type-Options", "nosniff")
		d.w.WriteHeader(http.StatusOK)
	}
	return d.w.Write(b)
}

// writeTar writes the directory root as a tar stream, its paths relative
// to it, in lexical order.
func writeTar(w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	now := time.Now()
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: now, Typeflag: tar.TypeReg, Mode: 0o600}
		if e.IsDir() {
			h.Name, h.Typeflag, h.Mode = h.Name+"/", tar.TypeDir, 0o700
			return tw.WriteHeader(h)
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		h.Size = info.Size()
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return fmt.Errorf("send the export as tar: %w", err)
	}
	return nil
}
