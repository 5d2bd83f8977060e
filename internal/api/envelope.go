package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/repo"
)

// envelope is the shape of every /api/v1 answer.
type envelope struct {
	OK    bool       `json:"ok"`
	Data  any        `json:"data,omitempty"`
	Error *errorBody `json:"error,omitempty"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes: stable strings scripts can switch on (the "code" of an
// error envelope; docs/API.md lists them).
const (
	CodeBadRequest    = "bad_request"
	CodeUnauthorized  = "unauthorized"
	CodeNotFound      = "not_found"
	CodeNotAllowed    = "method_not_allowed"
	CodeUnavailable   = "unavailable"
	CodeNotRestorable = "not_restorable"
	CodeInternal      = "internal"
	// CodeConflict answers a request that clashes with what exists: a
	// deployment name taken, one declared in the server's file.
	CodeConflict = "conflict"
)

// WriteData answers status with {"ok": true, "data": data}.
func WriteData(w http.ResponseWriter, status int, data any) {
	writeEnvelope(w, status, envelope{OK: true, Data: data})
}

// WriteError answers status with {"ok": false, "error": {"code": code,
// "message": ...}}; the message says what to do next.
func WriteError(w http.ResponseWriter, status int, code, format string, args ...any) {
	writeEnvelope(w, status, envelope{Error: &errorBody{Code: code, Message: fmt.Sprintf(format, args...)}})
}

// WriteInternal answers 500 with code internal, and logs the same
// message as an error first: a 500 never goes without its cause in the
// log (the API's fuzz tests hold every handler to it).
func WriteInternal(w http.ResponseWriter, log *slog.Logger, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	log.Error("api: internal error", "err", msg)
	WriteError(w, http.StatusInternalServerError, CodeInternal, "%s", msg)
}

func writeEnvelope(w http.ResponseWriter, status int, e envelope) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(e)
}

// decodeBody reads a JSON request body strictly: unknown fields and
// trailing data are errors, so a typo is not silently ignored.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		err = nil // an empty body means every default
	} else if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		WriteError(w, http.StatusBadRequest, CodeBadRequest, "read request body: %v; send one JSON object (see docs/API.md)", bodyError(err))
		return false
	}
	return true
}

// bodyError says a wrong JSON type in the API's words: the field and the
// JSON type it takes, not the Go type it decodes into.
func bodyError(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return err
	}
	want := "another type"
	switch te.Type.Kind() {
	case reflect.Slice, reflect.Array:
		want = "a list"
	case reflect.String:
		want = "a string"
	case reflect.Bool:
		want = "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		want = "a number"
	case reflect.Map, reflect.Struct:
		want = "an object"
	}
	return fmt.Errorf("%s: want %s, not a JSON %s", te.Field, want, te.Value)
}

// Guard checks the bearer token of API requests: api.token (or
// token_file), and api.public_read for reads. rewind agent and rewind
// server guard every endpoint with it.
type Guard struct {
	token       string
	fingerprint string // repo.TokenFingerprint(token), for audit entries
	publicRead  bool
}

// NewGuard reads the token of c (api.token_file is read now).
func NewGuard(c config.API) (Guard, error) {
	tok, err := c.ReadToken()
	return Guard{token: tok, fingerprint: repo.TokenFingerprint(tok), publicRead: c.PublicRead}, err
}

// Wrap answers 401 in the envelope unless the request carries the token,
// or read is true and api.public_read is set; else it calls h with the
// request's context carrying its repo.Actor ("api", the token's
// fingerprint, the client's address) for the audit entries of what it
// starts. The token is compared in constant time.
func (g Guard) Wrap(read bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if read && g.publicRead {
			h(w, r.WithContext(repo.WithActor(r.Context(), repo.Actor{Via: "api", Remote: r.RemoteAddr})))
			return
		}
		if g.token == "" {
			WriteError(w, http.StatusUnauthorized, CodeUnauthorized,
				"the agent has no API token, so it refuses this request: give it one (api.token or api.token_file in its config, or REWIND_API_TOKEN in its environment) and restart it, or set api.public_read for reads")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(g.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rewind"`)
			what := "no token was sent"
			if ok {
				what = "the token sent is not the agent's"
			}
			WriteError(w, http.StatusUnauthorized, CodeUnauthorized,
				"%s: send the header \"Authorization: Bearer TOKEN\" with the agent's token (it reads it from api.token, api.token_file or REWIND_API_TOKEN)", what)
			return
		}
		h(w, r.WithContext(repo.WithActor(r.Context(), repo.Actor{Via: "api", Token: g.fingerprint, Remote: r.RemoteAddr})))
	}
}

// auth wraps h with the server's guard.
func (s *Server) auth(read bool, h http.HandlerFunc) http.HandlerFunc { return s.guard.Wrap(read, h) }
