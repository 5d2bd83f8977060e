package api

import (
	"errors"
	"net/http"

	"github.com/rewind-backup/rewind/internal/repo"
)

// AuditView is GET /api/v1/audit: the repository's audit entries, newest
// first (repo.AuditEntry, as JSON).
type AuditView struct {
	Entries []repo.AuditEntry `json:"entries"`
}

// DefaultAuditLimit is how many entries GET /api/v1/audit and `rewind
// audit` answer when no limit is given.
const DefaultAuditLimit = 50

// audit answers GET /api/v1/audit?limit=N (default 50, at most 10000).
// The entries name namespaces, hosts and users: the token is needed even
// with api.public_read.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	p := newParams(r, []string{"limit"}, nil)
	limit := p.count("limit", DefaultAuditLimit, 1, 10000)
	if p.err != nil {
		badRequest(w, p.err)
		return
	}
	entries, err := s.d.Repo.ReadAuditEntries(r.Context(), limit)
	if err != nil {
		s.recordsError(w, "the audit entries", err)
		return
	}
	WriteData(w, http.StatusOK, AuditView{Entries: entries})
}

// recordsError answers a failed read of records kept in the repository
// (drill records, audit entries: what names them): 503 saying to give the
// agent its identity when they are encrypted, else storageError's 503.
func (s *Server) recordsError(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, repo.ErrNeedIdentity) {
		WriteError(w, http.StatusServiceUnavailable, CodeUnavailable, "%s are encrypted, as the repository is: give the agent its identity (identity:) to show them", what)
		return
	}
	s.storageError(w, "read "+what, err)
}
