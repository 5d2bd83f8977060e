package restore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
)

// One validation for the CLI and the API: each mistake names its field,
// in the CLI's words (--flag) and the API's (json_name), and a valid
// request gets the defaults.
func TestRequestValidate(t *testing.T) {
	latest := When{Latest: true}
	for _, tc := range []struct {
		req             Request
		field, cli, api string
	}{
		{Request{Target: "mongodb://x"}, "to", "--to is required", "to is required"},
		{Request{To: latest}, "target", "--target is required", "target is required"},
		{Request{To: latest, Target: "mongodb://x", Parallel: -1}, "parallel", "--parallel -1: want at least 1", "parallel -1"},
		{Request{To: latest, Target: "mongodb://x", ConnectTimeout: config.Duration(-time.Second)}, "connect_timeout",
			"--connect-timeout -1s: want a positive duration", "connect_timeout -1s"},
		{Request{To: latest, Target: "mongodb://x", Include: []string{"shop.ord*"}}, "ns", `--ns "shop.ord*": wildcards`, `ns "shop.ord*"`},
		{Request{To: latest, Target: "mongodb://x", Include: []string{"admin"}}, "ns", "system database", "ns"},
		{Request{To: latest, Target: "mongodb://x", Rename: map[string]string{"shop": "a.b"}}, "rename", "--rename shop=a.b: rename a database to a database", "rename shop=a.b"},
		{Request{To: latest, Target: "mongodb://x", Rename: map[string]string{"shop": ""}}, "rename", "both names are needed", "rename shop="},
	} {
		err := tc.req.Validate()
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Field != tc.field || !strings.Contains(err.Error(), tc.cli) || !strings.HasPrefix(inv.API(), tc.api) {
			t.Errorf("Validate(%+v) = %v (API: %v); want field %s, %q on the command line, %q in the API", tc.req, err, apiText(inv), tc.field, tc.cli, tc.api)
		}
	}
	dry := Request{To: latest, DryRun: true}
	if err := dry.Validate(); err != nil || dry.Parallel != DefaultParallel || dry.ConnectTimeout != DefaultConnectTimeout {
		t.Fatalf("dry run without a target: %v, %+v; want valid with the defaults", err, dry)
	}
	set := Request{To: latest, Target: "mongodb://x", Parallel: 2, ConnectTimeout: config.Duration(time.Minute)}
	if err := set.Validate(); err != nil || set.Parallel != 2 || set.ConnectTimeout.Std() != time.Minute {
		t.Fatalf("valid request: %v, %+v", err, set)
	}
}

func apiText(e *InvalidError) string {
	if e == nil {
		return "none"
	}
	return e.API()
}
