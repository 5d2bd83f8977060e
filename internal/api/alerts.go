package api

import (
	"net/http"

	"github.com/rewind-backup/rewind/internal/alert"
)

// alerts is GET /api/v1/alerts: the alerts firing now and the recent
// firing and resolved events, newest first (see docs/ALERTS.md).
func (s *Server) alerts(w http.ResponseWriter, _ *http.Request) {
	v := alert.View{Firing: []alert.Event{}, Recent: []alert.Event{}}
	if s.d.Alerts != nil {
		v = s.d.Alerts.View()
	}
	WriteData(w, http.StatusOK, v)
}
