package config

import "testing"

// A deployment without repo gets one under repo_prefix: the prefix's path
// gains /NAME and its query stays.
func TestRepoUnderPrefix(t *testing.T) {
	for prefix, want := range map[string]string{
		"s3://backups/rewind?region=eu-west-1": "s3://backups/rewind/db1?region=eu-west-1",
		"s3://backups":                         "s3://backups/db1",
		"gs://bucket/a/b/":                     "gs://bucket/a/b/db1",
		"file:///var/lib/rewind":               "file:///var/lib/rewind/db1",
		"/var/lib/rewind":                      "/var/lib/rewind/db1",
	} {
		if got := under(prefix, "db1"); got != want {
			t.Errorf("under(%q) = %q, want %q", prefix, got, want)
		}
	}
}
