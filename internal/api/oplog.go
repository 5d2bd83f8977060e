package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/rewind-backup/rewind/internal/browse"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/status"
)

// Page sizes of GET /api/v1/oplog: operations, or summary rows.
const (
	DefaultOplogLimit = 1000
	MaxOplogLimit     = 10000
)

// OplogPage is GET /api/v1/oplog: the operations of a range, as `rewind
// oplog --json` prints them (browse.OpJSON), at most limit of them.
type OplogPage struct {
	OplogRange
	Operations []browse.OpJSON `json:"operations"`
	// Truncated: the range holds more operations than limit; Next lists
	// the following ones.
	Truncated bool         `json:"truncated"`
	Next      *OplogCursor `json:"next"`
	Segments  int          `json:"segments"` // segments holding the range
	Skipped   int          `json:"skipped"`  // of those read up to the page's end, left unread: their index shows nothing selected
	Warnings  []string     `json:"warnings"`
}

// OplogSummary is GET /api/v1/oplog?summary=true: operations per second,
// namespace and kind, as `rewind oplog --summary --json` prints them.
type OplogSummary struct {
	OplogRange
	Rows       []browse.RowJSON `json:"rows"`
	Operations int64            `json:"operations"` // the sum of the rows' counts
	// Truncated: the range holds more rows than limit; the page ends with
	// a whole second, and Next starts at the following one.
	Truncated bool         `json:"truncated"`
	Next      *OplogCursor `json:"next"`
	Segments  int          `json:"segments"`
	Indexed   int          `json:"indexed"`    // segments counted from their index alone
	ReadWhole int          `json:"read_whole"` // segments read entry by entry
	Warnings  []string     `json:"warnings"`
}

// OplogRange is the range a query was resolved to on one shard.
type OplogRange struct {
	Shard string `json:"shard"`
	From  *TS    `json:"from"`
	To    *TS    `json:"to"`
	Gaps  []Gap  `json:"gaps"` // entries between a gap's before and after were lost before capture
}

// OplogCursor is where the next page starts: pass from and skip with the
// same other parameters.
type OplogCursor struct {
	From string `json:"from"`           // SECONDS:INCREMENT, or an RFC 3339 second for a summary
	Skip int    `json:"skip,omitempty"` // operations at From already listed (of one applyOps entry)
}

// errPageFull stops a listing once a page is full.
var errPageFull = errors.New("page full")

func oplogRange(rng browse.Range) OplogRange {
	return OplogRange{Shard: rng.Shard, From: toTS(rng.From), To: toTS(rng.To), Gaps: status.Gaps(repo.History{Gaps: rng.Gaps})}
}

// oplogQuery reads GET /api/v1/oplog's parameters into the query `rewind
// oplog` builds from its flags, checked by the same Validate.
func (s *Server) oplogQuery(r *http.Request) (q browse.Query, summary, raw bool, limit, skip int, err error) {
	p := newParams(r, []string{"from", "to", "id", "shard", "summary", "raw", "limit", "skip"}, []string{"ns", "op"})
	q = browse.Query{Shard: p.str("shard"), From: p.when("from"), To: p.when("to"), NS: p.list("ns"), Ops: p.list("op"), ID: p.id("id")}
	if q.Shard == "" {
		q.Shard = s.d.Shard
	}
	summary, raw = p.flag("summary"), p.flag("raw")
	limit, skip = p.count("limit", DefaultOplogLimit, 1, MaxOplogLimit), p.count("skip", 0, 0, 1<<30)
	switch {
	case p.err != nil:
		return q, summary, raw, limit, skip, p.err
	case raw && summary:
		p.fail("raw", "prints the operations as logged; a summary has none: leave out raw or summary")
	case skip > 0 && summary:
		p.fail("skip", "pages operations; a summary's next page starts at a second (next.from): leave out skip")
	}
	if p.err == nil {
		p.failWith(q.Validate())
	}
	return q, summary, raw, limit, skip, p.err
}

// oplog is GET /api/v1/oplog.
func (s *Server) oplog(w http.ResponseWriter, r *http.Request) {
	q, summary, raw, limit, skip, err := s.oplogQuery(r)
	if err != nil {
		badRequest(w, err)
		return
	}
	if summary {
		s.oplogSummary(w, r, q, limit)
		return
	}
	page := OplogPage{Operations: []browse.OpJSON{}}
	var at optime.Timestamp // the ts of the operations counted in n
	n, seen := 0, 0
	st, err := browse.List(r.Context(), s.d.Repo, q, func(o browse.Op) error {
		if o.TS != at {
			at, n = o.TS, 0
		}
		n++
		if seen++; seen <= skip {
			return nil
		}
		if len(page.Operations) == limit {
			page.Truncated, page.Next = true, &OplogCursor{From: o.TS.String(), Skip: n - 1}
			return errPageFull
		}
		page.Operations = append(page.Operations, o.JSON(raw))
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		s.refused(w, "list operations", err, http.StatusServiceUnavailable, CodeUnavailable)
		return
	}
	page.OplogRange, page.Segments, page.Skipped, page.Warnings = oplogRange(st.Range), st.Segments, st.Skipped, nonNil(st.Warnings)
	WriteData(w, http.StatusOK, page)
}

// oplogSummary answers a summary, cut after limit rows at a second's end.
func (s *Server) oplogSummary(w http.ResponseWriter, r *http.Request, q browse.Query, limit int) {
	sum, err := browse.Summarize(r.Context(), s.d.Repo, q)
	if err != nil {
		s.refused(w, "summarize operations", err, http.StatusServiceUnavailable, CodeUnavailable)
		return
	}
	out := OplogSummary{OplogRange: oplogRange(sum.Range), Segments: sum.Segments, Indexed: sum.Indexed,
		ReadWhole: sum.ReadWhole, Warnings: nonNil(sum.Warnings), Rows: []browse.RowJSON{}}
	rows := sum.Rows
	if len(rows) > limit {
		cut := limit
		for cut > 0 && rows[cut-1].Second == rows[limit].Second {
			cut--
		}
		if cut == 0 { // one second holds more rows than a page: it is listed whole
			for cut = limit; cut < len(rows) && rows[cut].Second == rows[limit].Second; cut++ {
			}
		}
		if cut < len(rows) {
			out.Truncated = true
			out.Next = &OplogCursor{From: time.Unix(int64(rows[cut].Second), 0).UTC().Format(time.RFC3339)}
			rows = rows[:cut]
		}
	}
	for _, row := range rows {
		out.Rows = append(out.Rows, row.JSON())
		out.Operations += row.Count
	}
	WriteData(w, http.StatusOK, out)
}

// HistoryView is GET /api/v1/history: every version of one document, as
// `rewind history --json` prints them (browse.VersionJSON), with what the
// history was computed from.
type HistoryView struct {
	Shard    string               `json:"shard"`
	NS       string               `json:"ns"`
	ID       json.RawMessage      `json:"_id"` // canonical Extended JSON
	From     *TS                  `json:"from"`
	To       *TS                  `json:"to"`
	Snapshot string               `json:"snapshot"` // the replay starts from it
	Flavor   string               `json:"flavor"`
	Entries  int64                `json:"entries"` // oplog entries read
	Versions []browse.VersionJSON `json:"versions"`
}

// history is GET /api/v1/history.
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	p := newParams(r, []string{"ns", "id", "from", "to", "shard"}, nil)
	q := browse.HistoryQuery{Shard: p.str("shard"), NS: p.str("ns"), ID: p.id("id"), From: p.when("from"), To: p.when("to")}
	if q.Shard == "" {
		q.Shard = s.d.Shard
	}
	if p.err == nil {
		p.failWith(q.Validate())
	}
	if p.err != nil {
		badRequest(w, p.err)
		return
	}
	h, err := browse.History(r.Context(), s.d.Repo, q)
	if err != nil {
		s.refused(w, "read the history", err, http.StatusServiceUnavailable, CodeUnavailable)
		return
	}
	out := HistoryView{Shard: h.Shard, NS: h.NS, ID: json.RawMessage(browse.ValueJSON(h.ID)), From: toTS(h.From), To: toTS(h.To),
		Snapshot: h.Snapshot, Flavor: string(h.Flavor), Entries: h.Entries, Versions: []browse.VersionJSON{}}
	for _, v := range h.Versions {
		out.Versions = append(out.Versions, v.JSON())
	}
	WriteData(w, http.StatusOK, out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
