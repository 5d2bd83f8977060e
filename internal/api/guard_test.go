package api_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/config"
)

// TestTokenComparedInOnePlace: the bearer token is read from requests in
// exactly one place, api.Guard, which compares it with
// subtle.ConstantTimeCompare (a plain == would let a client time how many
// leading bytes it got right). rewind agent, rewind server and the
// dashboard's API all go through it; a second place reading the header
// would be a second comparison to keep constant-time.
func TestTokenComparedInOnePlace(t *testing.T) {
	root := filepath.Join("..", "..")
	var readers []string
	for _, dir := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			if err == nil && strings.Contains(string(b), `Get("Authorization")`) {
				readers = append(readers, filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator))))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(readers) != 1 || readers[0] != "internal/api/envelope.go" {
		t.Fatalf("the Authorization header is read in %v, want only internal/api/envelope.go (api.Guard)", readers)
	}
	b, err := os.ReadFile(filepath.Join(root, "internal", "api", "envelope.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "subtle.ConstantTimeCompare([]byte(got), []byte(g.token))") {
		t.Fatal("api.Guard no longer compares the token with subtle.ConstantTimeCompare")
	}
}

// The guard accepts the token and only the token: not a prefix of it,
// not it with more after it, not one differing in its last byte, not it
// under another scheme.
func TestGuardAcceptsOnlyTheToken(t *testing.T) {
	g, err := api.NewGuard(config.API{Token: token})
	must(t, err)
	h := g.Wrap(false, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	last := token[:len(token)-1] + string(token[len(token)-1]^1)
	for header, want := range map[string]int{
		"Bearer " + token:        http.StatusNoContent,
		"Bearer " + token[:5]:    http.StatusUnauthorized,
		"Bearer " + token + "x":  http.StatusUnauthorized,
		"Bearer " + last:         http.StatusUnauthorized,
		"Bearer ":                http.StatusUnauthorized,
		"bearer " + token:        http.StatusUnauthorized,
		"Basic " + token:         http.StatusUnauthorized,
		"Bearer  " + token:       http.StatusUnauthorized,
		"Bearer " + token + "\n": http.StatusUnauthorized,
	} {
		req := httptest.NewRequest("POST", "/api/v1/restores", nil)
		req.Header.Set("Authorization", header)
		rec := httptest.NewRecorder()
		h(rec, req)
		if rec.Code != want {
			t.Errorf("Authorization %q: %d, want %d", header, rec.Code, want)
		}
		if strings.Contains(rec.Body.String(), token) {
			t.Errorf("Authorization %q: the answer holds the token: %s", header, rec.Body.String())
		}
	}
}
