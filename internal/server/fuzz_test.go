package server_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/api/apifuzz"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/server"
)

// FuzzServerAPI sends rewind server's management API random methods,
// paths, bodies and headers: POST and PATCH /api/v1/deployments bodies
// (the file's deployment keys, in JSON), reload, the deployment views and
// the mounted agent APIs. The promises are apifuzz's: no panic, no 500
// without a logged cause, every error in the envelope, the token never
// echoed. The seeds run in every test run; `go test -fuzz FuzzServerAPI
// ./internal/server/` searches further.
//
// The server has one deployment from its file ("filed") and one added over
// the API ("apid", from the state file), both with a source that refuses
// connections: a well-formed POST or PATCH gets as far as connecting to
// it (bounded by the request's 300 ms), none starts capturing. DELETE is
// left out: it takes no body, and one that removed "apid" would leave
// every later PATCH a 404. The agent API mounted under each deployment is
// FuzzAgentAPI's (internal/api).
func FuzzServerAPI(f *testing.F) {
	const dead = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200"
	dir := f.TempDir()
	stateDir := filepath.Join(dir, "state")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		f.Fatal(err)
	}
	state := `{"deployments": [{"name": "apid", "docs": [{"name": "apid", "source": "` + dead + `", "repo": "file://` + filepath.Join(dir, "apid") + `"}]}]}`
	if err := os.WriteFile(filepath.Join(stateDir, "deployments.json"), []byte(state), 0o600); err != nil {
		f.Fatal(err)
	}
	for _, s := range []apifuzz.Input{
		{Method: 0, Path: "api/v1/server"},
		{Method: 0, Path: "api/v1/deployments"},
		{Method: 0, Path: "api/v1/deployments/filed"},
		{Method: 0, Path: "api/v1/deployments/filed/status"},
		{Method: 1, Path: "api/v1/deployments/apid/restores", Body: []byte(`{"to":"latest","dry_run":true}`)},
		{Method: 0, Path: "api/v1/deployments/nope/audit"},
		{Method: 0, Path: "metrics"},
		{Method: 1, Path: "-/reload"},
		{Method: 1, Path: "api/v1/deployments", Body: []byte(`{"name":"new","source":"` + dead + `","repo":"file://` + filepath.Join(dir, "new") + `","snapshot":{"every":"24h"},"retention":{"restore_window":"7d"}}`)},
		{Method: 1, Path: "api/v1/deployments", Body: []byte(`{"name":"x/y","source":"mongodb://u:pw@h/","api":{"listen":":1"}}`)},
		{Method: 1, Path: "api/v1/deployments", Body: []byte(`{"name":"z","shards":[{"name":"s1","uri":"` + dead + `"}],"config_server":"` + dead + `","repo":"` + filepath.Join(dir, "z") + `"}`)},
		{Method: 1, Path: "api/v1/deployments", Body: []byte(`{"name":"f","source_file":"/etc/hostname","repo":"` + filepath.Join(dir, "f") + `"}`)},
		{Method: 1, Path: "api/v1/deployments", Body: []byte(`[{"name": 3}]`)},
		{Method: 2, Path: "api/v1/deployments/apid", Body: []byte(`{"retention":{"restore_window":"3d","daily":-1},"capture":{"flush_interval":"1s"}}`)},
		{Method: 2, Path: "api/v1/deployments/apid", Body: []byte(`{"name":"other"}`)},
		{Method: 2, Path: "api/v1/deployments/filed", Body: []byte(`{"snapshot":{"every":"1h"}}`)},
		{Method: 2, Path: "api/v1/deployments/apid", Body: []byte(`{"drills":{"every":"1h","scratch":"` + dead + `","points":["random"]}}`)},
	} {
		for _, auth := range []string{"Bearer " + token, "", "Bearer x"} {
			f.Add(s.Method, s.Path, s.Body, auth, "application/json")
		}
	}
	file := `api: {listen: "127.0.0.1:0", token: ` + token + `}
state_dir: ` + stateDir + `
capture: {spool_dir: ` + filepath.Join(dir, "spool") + `}
deployments:
  - {name: filed, source: '` + dead + `', repo: 'file://` + filepath.Join(dir, "filed") + `'}
`
	path := filepath.Join(dir, "server.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		f.Fatal(err)
	}
	cfg, err := config.LoadServer(path)
	if err != nil {
		f.Fatal(err)
	}
	log := &apifuzz.Log{}
	s, err := server.New(path, cfg, log.Logger(), "test")
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	f.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			f.Error("the server did not stop within 60 s")
		}
	})
	for deadline := time.Now().Add(30 * time.Second); s.Addr() == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.Fatal("the server did not start within 30 s")
		}
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, method byte, path string, body []byte, auth, contentType string) {
		in := apifuzz.Input{Method: method, Path: path, Body: body, Auth: auth, ContentType: contentType}
		if apifuzz.Methods[int(method)%len(apifuzz.Methods)] == "DELETE" {
			in.Method = 0 // (see above: DELETE is left out)
		}
		apifuzz.Do(t, h, log, token, in, 300*time.Millisecond)
	})
}
