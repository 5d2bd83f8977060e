package storagetest_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/storage/storagetest"
)

// TestStopStart proves what outage tests rely on: a stopped server refuses
// connections and fails Puts, and after Start on the same port its data is
// back.
func TestStopStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (storagetest.Server, string)
	}{
		{"S3", func(t *testing.T) (storagetest.Server, string) {
			s := storagetest.StartS3(t)
			return s, strings.TrimPrefix(s.Endpoint(), "http://")
		}},
		{"GCS", func(t *testing.T) (storagetest.Server, string) { s := storagetest.StartGCS(t); return s, s.Host() }},
		{"Azurite", func(t *testing.T) (storagetest.Server, string) {
			s := storagetest.StartAzurite(t)
			return s, s.Domain()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, addr := tc.start(t)
			ctx := context.Background()
			st, err := storage.OpenWith(ctx, srv.URL(), srv.Options())
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer st.Close()
			if err := st.Put(ctx, "before/outage", strings.NewReader("kept")); err != nil {
				t.Fatalf("Put: %v", err)
			}
			srv.Stop()
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Fatalf("%s still accepts connections after Stop", addr)
			}
			short, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = st.Put(short, "during/outage", strings.NewReader("x"))
			cancel()
			if err == nil {
				t.Fatalf("Put while the server is stopped succeeded")
			}
			srv.Start()
			r, err := st.Get(ctx, "before/outage")
			if err != nil {
				t.Fatalf("Get after restart: %v", err)
			}
			b, _ := io.ReadAll(r)
			r.Close()
			if string(b) != "kept" {
				t.Errorf("Get after restart = %q, want %q", b, "kept")
			}
			if _, err := st.Stat(ctx, "during/outage"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Stat of the object put during the outage = %v, want ErrNotFound", err)
			}
		})
	}
}

// TestStartAll checks that every backend StartAll returns can be opened
// from its URL and options and round-trips an object.
func TestStartAll(t *testing.T) {
	for _, b := range storagetest.StartAll(t) {
		s := b.Open(t)
		if err := s.Put(t.Context(), "hello", strings.NewReader(b.Name)); err != nil {
			t.Errorf("%s: Put: %v", b.Name, err)
			continue
		}
		var got []string
		err := s.List(t.Context(), "", func(i storage.Info) error { got = append(got, i.Key); return nil })
		if err != nil || len(got) != 1 || got[0] != "hello" {
			t.Errorf("%s: List = %q, %v; want [hello]", b.Name, got, err)
		}
	}
}
