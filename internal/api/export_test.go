package api_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/export"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// download GETs path with the token and returns the response's headers and
// body; an answer in the envelope fails the test.
func download(t *testing.T, c *client, path string) (http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", c.base+path, nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, body)
	}
	return resp.Header, body
}

// untar reads a tar stream: each regular file's content by path, and
// every path in order.
func untar(t *testing.T, b []byte) (map[string][]byte, []string) {
	t.Helper()
	files := map[string][]byte{}
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, names
		}
		must(t, err)
		names = append(names, h.Name)
		if h.Typeflag == tar.TypeReg {
			files[h.Name], err = io.ReadAll(tr)
			must(t, err)
		}
	}
}

// notes reads orders as _id -> note from Extended JSON lines or
// concatenated BSON.
func notes(t *testing.T, b []byte, jsonl bool) map[int32]string {
	t.Helper()
	out := map[int32]string{}
	add := func(d bson.Raw) { out[d.Lookup("_id").Int32()] = d.Lookup("note").StringValue() }
	if jsonl {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var d bson.Raw
			must(t, bson.UnmarshalExtJSON(sc.Bytes(), true, &d))
			add(d)
		}
		return out
	}
	for len(b) > 0 {
		n := int(binary.LittleEndian.Uint32(b))
		add(bson.Raw(b[:n]))
		b = b[n:]
	}
	return out
}

// The orders as of the latest point of opsRepo, and as of entry 0.
func latestOrders() map[int32]string {
	m := map[int32]string{}
	for i := range 20 {
		m[int32(i)] = fmt.Sprintf("o%d", i)
	}
	for _, id := range badDelete {
		delete(m, int32(id))
	}
	m[5], m[100], m[2], m[7] = "five v2", "hundred", "two v2", "seven again"
	return m
}

// An export over the API is a download: the archive is exactly what
// `rewind export --format archive` writes; jsonl and bson are tar streams
// of the export's directory whose documents are the state at the point.
// Mistakes are answered in the envelope before any byte.
func TestExportOverAPI(t *testing.T) {
	r := opsRepo(t, "shop")
	c := repoAPI(t, r, false)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the agent writes a directory export before sending it

	h, body := download(t, c, "/api/v1/export?to=latest&format=archive&ns=shop.orders")
	name := fmt.Sprintf("rewind-%d-%d.archive", r.Last.T, r.Last.I)
	if h.Get("Content-Type") != "application/octet-stream" || h.Get("Content-Disposition") != `attachment; filename="`+name+`"` {
		t.Fatalf("archive download headers: %v", h)
	}
	file := filepath.Join(t.TempDir(), "cli.archive")
	p, err := export.Prepare(context.Background(), r.Repository, export.Request{To: restore.When{Latest: true}, Include: []string{"shop.orders"},
		Format: export.Archive, Out: file})
	must(t, err)
	_, err = p.Write(context.Background(), export.Options{ToolVersion: "rewind test"})
	p.Release()
	must(t, err)
	cli, err := os.ReadFile(file)
	must(t, err)
	if !bytes.Equal(body, cli) || binary.LittleEndian.Uint32(body) != 0x8199e26d {
		t.Fatalf("the archive downloaded (%d bytes, magic %x) is not the archive rewind export writes (%d bytes)", len(body), body[:4], len(cli))
	}

	h, body = download(t, c, "/api/v1/export?to=latest&format=jsonl")
	files, names := untar(t, body)
	wantNames := []string{"shop/", "shop/orders.jsonl", "shop/orders.metadata.json", "shop/other.jsonl", "shop/other.metadata.json",
		"shop/other2.jsonl", "shop/other2.metadata.json"}
	if !slices.Equal(names, wantNames) || h.Get("Content-Type") != "application/x-tar" ||
		h.Get("Content-Disposition") != fmt.Sprintf(`attachment; filename="rewind-%d-%d-jsonl.tar"`, r.Last.T, r.Last.I) {
		t.Fatalf("jsonl download: %v, headers %v; want %v", names, h, wantNames)
	}
	if got, want := notes(t, files["shop/orders.jsonl"], true), latestOrders(); !maps.Equal(got, want) {
		t.Fatalf("jsonl orders as of latest: %v, want %v", got, want)
	}

	_, body = download(t, c, "/api/v1/export?to="+rt.EntryTS(0).String()+"&format=bson&ns=shop.orders")
	files, _ = untar(t, body)
	want := map[int32]string{}
	for i := range 20 {
		want[int32(i)] = fmt.Sprintf("o%d", i)
	}
	want[5] = "five v2"
	if got := notes(t, files["shop/orders.bson"], false); !maps.Equal(got, want) || len(files) != 2 {
		t.Fatalf("bson orders as of entry 0: %v (%d files), want %v", got, len(files), want)
	}

	for q, words := range map[string]string{
		"to=latest&format=zip":             `format "zip": want jsonl`,
		"to=latest":                        "format is required",
		"format=archive":                   "to is required",
		"to=09:30&format=archive":          `to "09:30" looks like a clock time`,
		"to=latest&format=bson&out=/tmp/x": "out is not a parameter",
	} {
		wantError(t, c.do("GET", "/api/v1/export?"+q, token, ""), 400, "bad_request", words)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the exports left %d files in the temporary directory, want none", len(left))
	}
	wantError(t, c.do("GET", "/api/v1/export?to=2001-01-01T00:00:00Z&format=archive", token, ""), 422, "not_restorable", "no restore window holds")
	wantError(t, c.do("GET", "/api/v1/export?to=latest&format=archive&ns=shop.nothing", token, ""), 422, "not_restorable", "shop.nothing")
}
