package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/storage/storagetest"
	"github.com/rewind-backup/rewind/internal/testbin"
)

// `rewind init` then `rewind repo info` on every backend, run as a user
// runs them: the binary, with credentials only in the environment.
func TestInitAndInfoOnEveryBackend(t *testing.T) {
	bin := testbin.Rewind(t)
	for _, b := range storagetest.StartAll(t) {
		t.Run(b.Name, func(t *testing.T) {
			var env []string
			if b.Server != nil {
				env = b.Server.Env()
			}
			rewind := func(args ...string) (string, string, error) {
				cmd := exec.Command(bin, args...)
				cmd.Env = append(os.Environ(), env...)
				var out, errb strings.Builder
				cmd.Stdout, cmd.Stderr = &out, &errb
				err := cmd.Run()
				return out.String(), errb.String(), err
			}
			// No backend here has object lock (the S3 bucket was made
			// without it): --object-lock is refused and writes nothing.
			_, stderr, err := rewind("init", "--repo", b.URL, "--object-lock", "7")
			if err == nil || !strings.Contains(stderr, "object lock") || !strings.Contains(stderr, map[bool]string{true: "--object-lock-enabled-for-bucket", false: "S3 buckets only"}[b.Name == "s3"]) {
				t.Fatalf("init --object-lock on %s was not refused clearly: %v %s", b.Name, err, stderr)
			}
			out, stderr, err := rewind("init", "--repo", b.URL)
			if err != nil || !strings.Contains(out, "created repository") {
				t.Fatalf("init on %s: %v\n%s%s", b.Name, err, out, stderr)
			}
			out, stderr, err = rewind("repo", "info", "--repo", b.URL, "--json")
			if err != nil {
				t.Fatalf("repo info on %s: %v\n%s", b.Name, err, stderr)
			}
			var info struct {
				ID          string `json:"id"`
				Version     int    `json:"format_version"`
				Compression string `json:"compression"`
				ObjectLock  string `json:"object_lock"`
			}
			if err := json.Unmarshal([]byte(out), &info); err != nil || info.ID == "" || info.Version != 1 || info.Compression != "zstd" || info.ObjectLock != "unsupported" {
				t.Fatalf("repo info on %s: %v %+v\n%s", b.Name, err, info, out)
			}
			_, stderr, err = rewind("init", "--repo", b.URL)
			if err == nil || !strings.Contains(stderr, "already holds a rewind repository") {
				t.Fatalf("second init on %s was not refused: %v %s", b.Name, err, stderr)
			}
			for _, kv := range env {
				if _, secret, ok := strings.Cut(kv, "="); ok && len(secret) > 12 && strings.Contains(stderr, secret) {
					t.Fatalf("a credential from the environment shows in the error: %s", stderr)
				}
			}
		})
	}
}
