package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/checksum"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/status"
)

type checksumFlags struct {
	uri     string
	uriFile string // --uri-file
	ns      []string
	at      string
	asJSON  bool
}

func newChecksumCmd() *cobra.Command {
	var f checksumFlags
	cmd := &cobra.Command{
		Use:   "checksum",
		Short: "Print the content checksum of every collection of a deployment",
		Long: `checksum prints, for every collection (or those --ns selects), the number of
documents and the SHA-256 of their raw BSON in _id order: the same checksum
rewind restore --checksum prints and a drill compares. Two deployments hold
the same documents, byte for byte, when every line is the same.

--at reads the data as of a past cluster time (readConcern snapshot with
atClusterTime) on MongoDB 5.0 or later, inside the server's snapshot history
window (minSnapshotHistoryWindowInSeconds, 300 s by default). A server that
cannot read a past point (MongoDB 4.4, FerretDB) refuses --at.`,
		Example: `  rewind checksum --uri mongodb://db1:27017/?replicaSet=rs0
  rewind checksum --uri mongodb://db1:27017/?replicaSet=rs0 --ns shop --at 2026-11-25T09:30:00Z --json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runChecksum(cmd, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.uri, "uri", "", "connection string of the deployment (required)")
	fileFlag(cmd, "uri", &f.uriFile)
	fl.StringArrayVar(&f.ns, "ns", nil, "only these namespaces (db, db.* or db.coll; repeatable); default all")
	fl.StringVar(&f.at, "at", "", "read as of this point: RFC 3339 time or SECONDS:INCREMENT (MongoDB 5.0+ only); default now")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	return cmd
}

// checksumJSON is `rewind checksum --json`.
type checksumJSON struct {
	At          *status.TS     `json:"at"` // null: the current data
	Collections []checksum.Sum `json:"collections"`
}

func runChecksum(cmd *cobra.Command, f *checksumFlags) error {
	if err := readFileFlag(cmd, "uri", f.uriFile, &f.uri); err != nil {
		return err
	}
	if f.uri == "" {
		return usagef(cmd, "--uri is required: the connection string of the deployment to checksum")
	}
	if err := config.CheckMongoURI(f.uri); err != nil {
		return usagef(cmd, "--uri: %v", err)
	}
	m, err := restore.NewMapper(f.ns, nil)
	if err != nil {
		return usagef(cmd, "%v", err)
	}
	var at restore.When
	if f.at != "" {
		if at, err = restore.ParseWhen(f.at); err != nil {
			var inv *restore.InvalidError
			if errors.As(err, &inv) {
				err = errors.New(inv.Msg)
			}
			return usagef(cmd, "--at %v", err)
		}
		if at.Latest {
			return usagef(cmd, "--at latest: leave --at out to read the current data, or give a time")
		}
	}
	ctx := cmd.Context()
	var rd checksum.Reader
	if at.IsZero() {
		t, err := restore.Connect(ctx, f.uri, restore.DefaultConnectTimeout)
		if err != nil {
			return err
		}
		defer t.Close(ctx)
		rd = checksum.Reader{Client: t.Client}
	} else {
		src, err := source.Connect(ctx, f.uri)
		if err != nil {
			return err
		}
		defer closeWithin(src.Close)
		if rd, err = checksum.At(src, at.TS); err != nil {
			return fmt.Errorf("checksum --at %s: %w", at, err)
		}
	}
	sums, err := rd.Deployment(ctx, m.Match)
	if err != nil {
		return fmt.Errorf("checksum: %w", err)
	}
	out := cmd.OutOrStdout()
	if f.asJSON {
		j := checksumJSON{Collections: sums}
		if !at.IsZero() {
			j.At = status.ToTS(at.TS)
		}
		if j.Collections == nil {
			j.Collections = []checksum.Sum{}
		}
		return printJSON(out, j)
	}
	return printChecksumTable(out, outputWidth(out), sums)
}

func printChecksumTable(w io.Writer, width int, sums []checksum.Sum) error {
	p := newPrinter(w, width, 18)
	rows := [][]string{{"NAMESPACE", "DOCUMENTS", "BYTES", "SHA-256"}}
	for _, s := range sums {
		rows = append(rows, []string{s.Namespace, fmt.Sprint(s.Count), fmt.Sprint(s.Bytes), s.SHA256})
	}
	if len(sums) == 0 {
		p.line("no collection")
		return p.err
	}
	p.table("", rows, 0)
	return p.err
}
