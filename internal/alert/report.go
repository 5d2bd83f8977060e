package alert

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
)

// Reporter fires and resolves alerts whose conditions are found outside a
// Monitor: rewind server reports with it the deployments it cannot run
// (deployment_failed), while no agent, and so no Monitor, runs for them.
// Events go to the same webhooks, once when firing and once resolved.
type Reporter struct {
	tracker  *tracker
	notifier *Notifier
	base     Event
	log      *slog.Logger
}

// NewReporter builds a reporter for one deployment: cfg's webhooks, and
// the source's hosts (never its credentials) in every event.
func NewReporter(cfg config.Alerts, deployment string, src config.Secret, version string, log *slog.Logger) *Reporter {
	host, _ := os.Hostname()
	return &Reporter{tracker: newTracker(historyLen), notifier: NewNotifier(cfg.Webhooks, log), log: log,
		base: Event{Deployment: deployment, SourceHost: SourceHosts(src.Reveal()), Details: map[string]any{},
			Agent: AgentInfo{Host: host, PID: os.Getpid(), Version: version}}}
}

// Run delivers the events until ctx ends.
func (r *Reporter) Run(ctx context.Context) { r.notifier.Run(ctx) }

// Report applies a condition found at now and sends the event it causes.
func (r *Reporter) Report(now time.Time, c Condition) []Event {
	events := r.tracker.update(now, r.base, []Condition{c})
	send(r.log, r.notifier, events)
	return events
}

// View is the reporter's firing alerts and recent events.
func (r *Reporter) View() View { return r.tracker.view() }

// send logs each event and hands it to the notifier.
func send(log *slog.Logger, n *Notifier, events []Event) {
	for _, ev := range events {
		out := log.Info
		if ev.State == Firing {
			out = log.Warn
		}
		out("alert "+ev.State, "alert", ev.Alert, "severity", ev.Severity, "summary", ev.Summary)
		n.Send(ev)
	}
}
