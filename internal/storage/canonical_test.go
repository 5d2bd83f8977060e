package storage

import "testing"

// Two spellings of one repository are one location; two repositories are two.
func TestCanonical(t *testing.T) {
	same := [][]string{
		{"file:///tmp/r/orders", "file:///tmp/r/orders/", "file:///tmp/r/x/../orders", "/tmp/r/orders", "/tmp/r//orders", "file://localhost/tmp/r/orders"},
		{"s3://backups/rewind?region=eu-west-1&endpoint=http://minio:9000", "s3://backups/rewind/?endpoint=http://minio:9000&region=eu-west-1"},
		{"gs://b/a/../p", "gs://b/p"},
	}
	for _, group := range same {
		for _, u := range group[1:] {
			if Canonical(u) != Canonical(group[0]) {
				t.Errorf("Canonical(%q) = %q, Canonical(%q) = %q: want equal", u, Canonical(u), group[0], Canonical(group[0]))
			}
		}
	}
	for _, pair := range [][2]string{{"file:///tmp/r/a", "file:///tmp/r/b"}, {"s3://b1/p", "s3://b2/p"}, {"s3://b/p?endpoint=http://a:1", "s3://b/p?endpoint=http://b:1"}} {
		if Canonical(pair[0]) == Canonical(pair[1]) {
			t.Errorf("%q and %q are two repositories, Canonical makes them one: %q", pair[0], pair[1], Canonical(pair[0]))
		}
	}
	if err := CheckURL("file://user:pw@localhost/tmp/r"); err == nil {
		t.Error("a file URL with a password is accepted")
	}
}
