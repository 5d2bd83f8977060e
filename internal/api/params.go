package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/browse"
	"github.com/rewind-backup/rewind/internal/export"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
)

// params reads a GET request's query string strictly, as decodeBody reads
// a body: a parameter the endpoint does not take, or a single one given
// twice, is an error, so a typo is not silently ignored. The first error
// is kept (err); every later read returns a zero value.
type params struct {
	q     url.Values
	multi []string // the repeatable parameters
	err   error
}

// newParams checks the query's names against the endpoint's single and
// repeatable (multi) parameters.
func newParams(r *http.Request, single, multi []string) *params {
	p := &params{q: r.URL.Query(), multi: multi}
	names := make([]string, 0, len(p.q))
	for name := range p.q {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		switch {
		case slices.Contains(multi, name):
		case !slices.Contains(single, name):
			p.fail(name, "is not a parameter of %s: it takes %s (see docs/API.md)", r.URL.Path, strings.Join(slices.Concat(single, multi), ", "))
		case len(p.q[name]) > 1:
			p.fail(name, "is given %d times: give it once", len(p.q[name]))
		}
	}
	return p
}

// fail records the first error, an *restore.InvalidError naming the
// parameter.
func (p *params) fail(name, format string, args ...any) {
	p.failWith(&restore.InvalidError{Field: name, Msg: fmt.Sprintf(format, args...)})
}

func (p *params) failWith(err error) {
	if p.err == nil {
		p.err = err
	}
}

// str is a single parameter's value, "" when left out.
func (p *params) str(name string) string { return p.q.Get(name) }

// list is a repeatable parameter's values (ns=a&ns=b); each may also be a
// comma-separated list (ns=a,b), as the dashboard's fields are.
func (p *params) list(name string) []string {
	var out []string
	for _, v := range p.q[name] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// when reads a point (from, to) as the CLI reads --from and --to.
func (p *params) when(name string) restore.When {
	s := p.str(name)
	if s == "" || p.err != nil {
		return restore.When{}
	}
	w, err := browse.ParseWhen(name, s)
	p.failWith(err)
	return w
}

// flag reads a boolean: true, false, 1, 0 (left out, or given with no
// value as in ?summary: as written, "" is false and "summary" alone true).
func (p *params) flag(name string) bool {
	vs, ok := p.q[name]
	if !ok || p.err != nil {
		return false
	}
	if vs[0] == "" {
		return true
	}
	b, err := strconv.ParseBool(vs[0])
	if err != nil {
		p.fail(name, "%q: want true or false", vs[0])
	}
	return b
}

// count reads a whole number from min to max; left out, def.
func (p *params) count(name string, def, min, max int) int {
	s := p.str(name)
	if s == "" || p.err != nil {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		p.fail(name, "%q: want a whole number from %d to %d", s, min, max)
		return def
	}
	return n
}

// id reads an _id given as Extended JSON.
func (p *params) id(name string) bson.RawValue {
	s, ok := p.q[name]
	if !ok || p.err != nil {
		return bson.RawValue{}
	}
	v, err := browse.ParseID(s[0])
	p.failWith(err)
	return v
}

// format reads an export format.
func (p *params) format(name string) export.Format {
	f, err := export.ParseFormat(p.str(name))
	if p.err == nil {
		p.failWith(err)
	}
	return f
}

// badRequest answers 400 for bad input: an *restore.InvalidError in the
// API's words (the field's JSON or parameter name first), else the error.
func badRequest(w http.ResponseWriter, err error) {
	var inv *restore.InvalidError
	if errors.As(err, &inv) {
		WriteError(w, http.StatusBadRequest, CodeBadRequest, "%s", inv.API())
		return
	}
	WriteError(w, http.StatusBadRequest, CodeBadRequest, "%v", err)
}

// refused answers an error of a call that reads the repository (planning
// a restore, an undo or an export; listing or summarizing operations; a
// history): the repository could not be locked, 503; the range or point is
// outside what it holds, or a name (ns, shard, rename) matches nothing
// there, 422 not_restorable saying so; anything else, status with code.
func (s *Server) refused(w http.ResponseWriter, what string, err error, status int, code string) {
	var inv *restore.InvalidError
	switch {
	case errors.Is(err, restore.ErrNoLock):
		s.storageError(w, what, err)
	case errors.Is(err, restore.ErrOutsideWindows), errors.Is(err, browse.ErrOutside):
		WriteError(w, http.StatusUnprocessableEntity, CodeNotRestorable, "%v; GET /api/v1/timeline shows the windows", err)
	case errors.As(err, &inv):
		WriteError(w, http.StatusUnprocessableEntity, CodeNotRestorable, "%s: %s", what, inv.API())
	case status == http.StatusServiceUnavailable:
		s.storageError(w, what, err)
	default:
		WriteError(w, status, code, "%v", err)
	}
}

// requester is a request body that validates itself into the request of
// the package that carries it out (RestoreRequest, UndoRequest).
type requester[R any] interface{ request() (R, error) }

// prepare reads a body of type In strictly, validates it (400 naming the
// field) and plans it with plan under the server's context, since the
// plan's lock outlives the request when a job carries it on (422 or 503
// saying why not, what names the step). ok is false once it answered.
func prepare[In requester[R], R, P any](s *Server, w http.ResponseWriter, r *http.Request, what string,
	plan func(context.Context, *repo.Repository, R) (P, error)) (req R, p P, ok bool) {
	var in In
	if !decodeBody(w, r, &in) {
		return req, p, false
	}
	req, err := in.request()
	if err != nil {
		badRequest(w, err)
		return req, p, false
	}
	if p, err = plan(s.jobContext(), s.d.Repo, req); err != nil {
		s.refused(w, what, err, http.StatusUnprocessableEntity, CodeNotRestorable)
		return req, p, false
	}
	return req, p, true
}
