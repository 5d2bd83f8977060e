package restore

import (
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
)

// Defaults of a Request.
const (
	DefaultParallel       = 4
	DefaultConnectTimeout = config.Duration(30 * time.Second)
)

// Request is a restore as a user asks for it: the flags of `rewind restore`
// and the body of POST /api/v1/restores fill the same fields, and Validate
// checks them once for both. Build reads To, Include, Rename and
// WithUsersAndRoles; the rest says where and how the plan is carried out.
type Request struct {
	To                When              // --to / "to", from ParseWhen; required
	Include           []string          // --ns / "ns" patterns (db, db.*, db.coll); empty: everything
	Rename            map[string]string // --rename / "rename": FROM -> TO, databases or collections
	WithUsersAndRoles bool              // also restore the snapshot's users and roles

	// Filter is a MongoDB query as Extended JSON text (--filter / "filter"),
	// "" for none: only the documents that match it as of To are restored.
	// A real server evaluates it: the restore stages the documents at To in
	// staging collections on the target and queries them there (see
	// StagingPrefix).
	Filter string
	// Merge writes into target namespaces that hold data (--merge /
	// "merge"); MergeNone: they must be absent or empty, or Drop.
	Merge Merge

	Target   string // connection string of the target; required unless DryRun
	Drop     bool   // drop and re-create target namespaces in the way
	Parallel int    // snapshot objects loaded at once, and oplog replay lanes; 0: left out, DefaultParallel (the CLI refuses a given 0)
	// ConnectTimeout is how long to wait for the target; 0: left out,
	// DefaultConnectTimeout. A value the caller was given is read with
	// ParseConnectTimeout, which refuses 0.
	ConnectTimeout config.Duration
	DryRun         bool // plan (and check the target, when given) only
	// Checksum (--checksum / "checksum") computes the content checksum of
	// every restored collection when the restore is done (Report.Checksums).
	Checksum bool
}

// Validate checks a request the way both the CLI and the API need it
// checked, before anything is read, and fills the defaults. Every error is
// an *InvalidError naming the field: the CLI turns it into a usage error
// (exit 2), the API into 400.
func (r *Request) Validate() error {
	if r.To.IsZero() {
		return invalid("to", "is required: %s", toHint)
	}
	if r.Target == "" && !r.DryRun {
		return invalid("target", "is required (the connection string to restore into), unless it is a dry run")
	}
	if r.Target != "" {
		if err := config.CheckMongoURI(r.Target); err != nil {
			return invalid("target", "%v", err)
		}
	}
	if r.Parallel < 0 {
		return invalid("parallel", "%d: want at least 1 (or leave it out for %d)", r.Parallel, DefaultParallel)
	}
	if r.ConnectTimeout < 0 {
		return invalid("connect_timeout", "%s: want a positive duration like 30s (or leave it out for %s)", r.ConnectTimeout, DefaultConnectTimeout)
	}
	if _, err := NewMapper(r.Include, r.Rename); err != nil {
		return err
	}
	if err := r.validateStaged(); err != nil {
		return err
	}
	r.defaults()
	return nil
}

// validateStaged checks --filter and --merge, and what they exclude.
func (r *Request) validateStaged() error {
	if r.Filter != "" {
		if _, err := ParseFilter("filter", r.Filter); err != nil {
			return err
		}
	}
	if _, err := ParseMerge(string(r.Merge)); err != nil {
		return err
	}
	switch {
	case r.Merge != MergeNone && r.Drop:
		return invalid("merge", "%s with %s: a merge writes beside the documents the target holds, %s drops them first; choose one", string(r.Merge), Field("drop"), Field("drop"))
	case r.WithUsersAndRoles && (r.Filter != "" || r.Merge != MergeNone):
		return invalid("with_users_and_roles", "with %s or %s: a filtered or merging restore restores documents only; restore users and roles in a restore of their own", Field("filter"), Field("merge"))
	}
	return nil
}

func (r *Request) defaults() {
	if r.Parallel == 0 {
		r.Parallel = DefaultParallel
	}
	if r.ConnectTimeout == 0 {
		r.ConnectTimeout = DefaultConnectTimeout
	}
}

// ParseConnectTimeout reads a connect timeout the caller was given
// (--connect-timeout, "connect_timeout"): a positive duration such as 30s or
// 2m. 0 is refused: it would not mean "no wait" but the default. Errors are
// *InvalidError.
func ParseConnectTimeout(s string) (config.Duration, error) {
	d, err := config.ParseDuration(s)
	if err != nil {
		return 0, invalid("connect_timeout", "%s", strings.TrimPrefix(err.Error(), "duration "))
	}
	if d <= 0 {
		return 0, invalid("connect_timeout", "%q: want a positive duration such as 30s or 2m (leave it out for %s)", s, DefaultConnectTimeout)
	}
	return d, nil
}
