package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/repo"
)

// A restore started over the API leaves one audit entry saying it came
// over the API, with the token's fingerprint (never the token) and the
// client's address; GET /api/v1/audit answers it, and only with the token
// even under api.public_read.
func TestAuditOverAPI(t *testing.T) {
	srv, db, r, _ := liveOrders(t) // one restore over the API
	c := repoAPI(t, r, true)
	var view api.AuditView
	a := c.do("GET", "/api/v1/audit", token, "")
	if a.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/audit: %d %s", a.Status, a.raw)
	}
	must(t, json.Unmarshal(a.Data, &view))
	if len(view.Entries) != 1 {
		t.Fatalf("want the restore's one entry: %s", a.raw)
	}
	e := view.Entries[0]
	host, _ := os.Hostname()
	if e.Action != repo.AuditRestore || e.Outcome != repo.AuditOK || e.Actor.Via != "api" || e.Actor.Token != repo.TokenFingerprint(token) ||
		!strings.HasPrefix(e.Actor.Remote, "127.0.0.1:") || e.Host != host || e.User == "" || e.Target != redact.URL(srv.URI()) ||
		len(e.Namespaces) != 1 || e.Namespaces[0] != db || !strings.HasPrefix(e.To, "latest (") || e.Ended.IsZero() {
		t.Errorf("entry = %+v", e)
	}
	if strings.Contains(a.raw, token) {
		t.Errorf("the audit answer holds the token: %s", a.raw)
	}
	wantError(t, c.do("GET", "/api/v1/audit", "", ""), http.StatusUnauthorized, api.CodeUnauthorized)
	wantError(t, c.do("GET", "/api/v1/audit?limit=0", token, ""), http.StatusBadRequest, api.CodeBadRequest, "limit")
}
