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
		{Request{To: latest, Target: "notmongo://u:pw@h:1/"}, "target", "--target", "target"},
		{Request{To: latest, Target: "mongodb://u:pw@[::1/", DryRun: true}, "target", "--target", "target"},
		{Request{To: latest, Target: "mongodb://x", Parallel: -1}, "parallel", "--parallel -1: want at least 1", "parallel -1"},
		{Request{To: latest, Target: "mongodb://x", ConnectTimeout: config.Duration(-time.Second)}, "connect_timeout",
			"--connect-timeout -1s: want a positive duration", "connect_timeout -1s"},
		{Request{To: latest, Target: "mongodb://x", Include: []string{"shop.ord*"}}, "ns", `--ns "shop.ord*": wildcards`, `ns "shop.ord*"`},
		{Request{To: latest, Target: "mongodb://x", Include: []string{"admin"}}, "ns", "system database", "ns"},
		{Request{To: latest, Target: "mongodb://x", Rename: map[string]string{"shop": "a.b"}}, "rename", "--rename shop=a.b: rename a database to a database", "rename shop=a.b"},
		{Request{To: latest, Target: "mongodb://x", Rename: map[string]string{"shop": ""}}, "rename", "both names are needed", "rename shop="},
		// Target names MongoDB refuses, or keeps for itself.
		{Request{To: latest, Target: "mongodb://x", Rename: map[string]string{"app.users": "app.system.x"}}, "rename",
			`--rename app.users=app.system.x: collection name "system.x" starts with system.`, "rename app.users=app.system.x: collection"},
		{Request{To: latest, Target: "mongodb://x", Rename: map[string]string{"app.users": "app..x"}}, "rename", "starts with a dot", "rename app.users=app..x"},
		{Request{To: latest, Target: "mongodb://x", Rename: map[string]string{"app.users": "app.a$b"}}, "rename", "holds $ or NUL", "rename"},
		{Request{To: latest, Target: "mongodb://x", Rename: map[string]string{"app.users": "app.a\x00b"}}, "rename", "holds $ or NUL", "rename"},
		{Request{To: latest, Target: "mongodb://x", Rename: map[string]string{"app": "a*b"}}, "rename", "MongoDB forbids there", "rename app=a*b"},
		{Request{To: latest, Target: "mongodb://x", Rename: map[string]string{"app": strings.Repeat("d", 64)}}, "rename", "has 64 bytes; MongoDB takes at most 63", "rename"},
		{Request{To: latest, Target: "mongodb://x", Rename: map[string]string{"app.users": "app." + strings.Repeat("c", 252)}}, "rename",
			"has 256 bytes; MongoDB takes at most 255", "rename"},
	} {
		err := tc.req.Validate()
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Field != tc.field || !strings.Contains(err.Error(), tc.cli) || !strings.HasPrefix(inv.API(), tc.api) {
			t.Errorf("Validate(%+v) = %v (API: %v); want field %s, %q on the command line, %q in the API", tc.req, err, apiText(inv), tc.field, tc.cli, tc.api)
		}
	}
	// The API's words never name a command-line flag.
	for _, req := range []Request{{To: latest, DryRun: true, Rename: map[string]string{"shop": "a.b"}}, {To: latest, DryRun: true, Include: []string{"admin"}}} {
		var inv *InvalidError
		if err := req.Validate(); !errors.As(err, &inv) || strings.Contains(inv.API(), "--") {
			t.Errorf("Validate(%+v) in the API's words: %v", req, apiText(inv))
		}
	}
	for _, req := range []Request{{To: latest, DryRun: true, Rename: map[string]string{"app.users": "app.users_old"}},
		{To: latest, DryRun: true, Rename: map[string]string{"app": "app" + strings.Repeat("x", 60)}}} {
		if err := req.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v; want a valid rename", req, err)
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

// A FROM given twice is refused, naming both pairs, in each caller's words.
func TestRenamesRefusesTheSameSourceTwice(t *testing.T) {
	_, err := Renames([]RenamePair{{"app.users", "x.y"}, {"app.users", "x.z"}})
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Field != "rename" ||
		err.Error() != "--rename app.users=x.y and --rename app.users=x.z: app.users is renamed twice; give it one target" ||
		inv.API() != "rename app.users=x.y and rename app.users=x.z: app.users is renamed twice; give it one target" {
		t.Fatalf("Renames of app.users twice: %v (API: %s)", err, apiText(inv))
	}
	m, err := Renames([]RenamePair{{"app.users", "x.y"}, {"app", "b"}})
	if err != nil || len(m) != 2 || m["app"] != "b" {
		t.Fatalf("Renames of two sources: %v, %v", m, err)
	}
}

// A connect timeout the caller gave is a positive duration: 0 would not
// mean "no wait" but the default, so it is refused, as are negatives.
func TestParseConnectTimeout(t *testing.T) {
	for _, in := range []string{"0", "0s", "-5s", "soon"} {
		_, err := ParseConnectTimeout(in)
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Field != "connect_timeout" || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseConnectTimeout(%q) = %v; want an error on connect_timeout naming the value", in, err)
		}
	}
	if d, err := ParseConnectTimeout("2m"); err != nil || d.Std() != 2*time.Minute {
		t.Errorf("ParseConnectTimeout(2m) = %s, %v", d, err)
	}
}

// A malformed --target is bad input (the CLI exits 2) and its password is
// not shown.
func TestRequestValidateMalformedTarget(t *testing.T) {
	for _, uri := range []string{"notmongo://u:s3cretpw@h:1/", "mongodb://u:s3cretpw@[::1/", "garbage"} {
		r := Request{To: When{Latest: true}, Target: uri}
		err := r.Validate()
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Field != "target" || strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("Validate(target %s) = %v; want an invalid target without the password", uri, err)
		}
	}
}
