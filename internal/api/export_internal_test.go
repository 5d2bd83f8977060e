package api

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A download that fails before its first byte answers the envelope; one
// that fails after it is cut short: the client's read fails, it never
// gets a complete answer that lacks the end of the data.
func TestDownloadFailed(t *testing.T) {
	s := &Server{d: Deps{Log: slog.New(slog.DiscardHandler)}}
	var first atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dl := &download{w: w, name: "x.archive", contentType: "application/octet-stream"}
		if r.URL.Query().Get("after") == "1" {
			_, _ = dl.Write([]byte(strings.Repeat("data", 1000)))
			w.(http.Flusher).Flush()
			first.Store(true)
		}
		s.downloadFailed(dl, "export", errors.New("chunk unreadable"))
	}))
	defer hs.Close()

	resp, err := http.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"export: chunk unreadable`) {
		t.Fatalf("failed before the first byte: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	resp, err = http.Get(hs.URL + "?after=1")
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !first.Load() || resp.StatusCode != 200 || err == nil {
		t.Fatalf("failed after the first byte: %d, read %d bytes, error %v; want the read to fail", resp.StatusCode, len(body), err)
	}
	t.Logf("the client read %d bytes, then: %v", len(body), err)
}
