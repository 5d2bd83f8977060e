package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/redact"
)

// Notifier POSTs events to webhooks. Each webhook has its own queue and
// goroutine, so a slow or dead endpoint delays only its own deliveries, in
// order; a delivery is retried with backoff, then given up and logged.
// Send never blocks: with a full queue the event is dropped and logged.
type Notifier struct {
	// Attempts per delivery (default 5), the first wait between them
	// (default 1 s, doubling up to MaxBackoff, default 1 min) and the time
	// one attempt may take (default 10 s).
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	Timeout    time.Duration
	Client     *http.Client
	Log        *slog.Logger

	hooks []*hook
}

type hook struct {
	cfg   config.Webhook
	queue chan Event
}

const queueLen = 64

// NewNotifier prepares deliveries to hooks; Run sends them.
func NewNotifier(hooks []config.Webhook, log *slog.Logger) *Notifier {
	n := &Notifier{Attempts: 5, Backoff: time.Second, MaxBackoff: time.Minute, Timeout: 10 * time.Second,
		Client: &http.Client{}, Log: log}
	for _, h := range hooks {
		n.hooks = append(n.hooks, &hook{cfg: h, queue: make(chan Event, queueLen)})
	}
	return n
}

// Run delivers queued events until ctx ends; what is still queued then is
// dropped (the agent is stopping).
func (n *Notifier) Run(ctx context.Context) {
	done := make(chan struct{})
	for _, h := range n.hooks {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-h.queue:
					n.deliver(ctx, h.cfg, ev)
				}
			}
		}()
	}
	for range n.hooks {
		<-done
	}
}

// Send queues ev for every webhook.
func (n *Notifier) Send(ev Event) {
	for _, h := range n.hooks {
		select {
		case h.queue <- ev:
		default:
			n.Log.Error("alert webhook queue is full; event dropped", "webhook", h.cfg.URL, "alert", ev.Alert, "state", ev.State)
		}
	}
}

// deliver POSTs ev to h, retrying failures that may pass (network errors,
// 5xx, 408, 429) with backoff.
func (n *Notifier) deliver(ctx context.Context, h config.Webhook, ev Event) {
	body, err := Body(h.Format, ev)
	if err != nil {
		n.Log.Error("alert webhook: encode body failed", "webhook", h.URL, "err", err)
		return
	}
	wait := n.Backoff
	for attempt := 1; ; attempt++ {
		retry, err := n.post(ctx, h, body)
		if err == nil {
			n.Log.Debug("alert delivered", "webhook", h.URL, "alert", ev.Alert, "state", ev.State, "attempt", attempt)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !retry || attempt >= n.Attempts {
			n.Log.Error("alert webhook delivery failed; giving up", "webhook", h.URL, "alert", ev.Alert,
				"state", ev.State, "attempts", attempt, "err", err)
			return
		}
		n.Log.Warn("alert webhook delivery failed; retrying", "webhook", h.URL, "alert", ev.Alert,
			"attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, n.MaxBackoff)
	}
}

// post makes one attempt. Its error never holds the URL: it may hold a token.
func (n *Notifier) post(ctx context.Context, h config.Webhook, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return false, errors.New("build request: the webhook URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rewind-agent")
	for k, v := range h.Headers {
		req.Header.Set(k, v.Reveal())
	}
	resp, err := n.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL
		}
		return true, fmt.Errorf("post: %s", scrubSecrets(err.Error(), h))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests
	return retry, fmt.Errorf("the webhook answered %s", resp.Status)
}

// scrubSecrets removes the URL's path and query and the header values from
// msg.
func scrubSecrets(msg string, h config.Webhook) string {
	secrets := []string{h.URL.Reveal()}
	if u, err := url.Parse(h.URL.Reveal()); err == nil {
		secrets = append(secrets, u.RequestURI(), u.RawQuery)
	}
	for _, v := range h.Headers {
		secrets = append(secrets, v.Reveal())
	}
	return redact.Scrub(msg, secrets...)
}

// Body encodes ev in a webhook format: the Event itself as JSON, or for
// "slack" an incoming-webhook message {"text": ...}.
func Body(format string, ev Event) ([]byte, error) {
	if format == config.WebhookSlack {
		return json.Marshal(map[string]string{"text": SlackText(ev)})
	}
	return json.Marshal(ev)
}

// SlackText is the one message a Slack webhook shows for ev.
func SlackText(ev Event) string {
	icon := ":rotating_light:"
	if ev.State == Resolved {
		icon = ":white_check_mark:"
	} else if ev.Severity == Warning {
		icon = ":warning:"
	}
	where := ev.Shard
	if ev.SourceHost != "" {
		where += " on " + ev.SourceHost
	}
	return fmt.Sprintf("%s *rewind %s %s* (%s, %s): %s", icon, ev.Alert, strings.ToUpper(ev.State), ev.Severity, where, ev.Summary)
}
