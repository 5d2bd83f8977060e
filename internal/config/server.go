package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rewind-backup/rewind/internal/storage"
)

// Server is the configuration of `rewind server`: the agent's sections at
// the top level (capture, snapshot, retention, alerts, drills, lock, api,
// log) are the defaults of every deployment, and Deployments lists what
// it backs up.
type Server struct {
	// Defaults holds the top level: a deployment's sections start from it.
	Defaults Config
	// StateDir keeps the deployments added over the API (deployments.json,
	// mode 0600: their connection strings hold credentials). Default
	// $XDG_STATE_HOME/rewind/server.
	StateDir string
	// MaxDeployments is how many deployments this process captures at
	// once (0: no limit); it leaves the others to its peers.
	MaxDeployments int
	// RepoPrefix, when set, is where a deployment that names no repo gets
	// one: RepoPrefix/NAME (a prefix under a shared bucket, such as
	// s3://backups/rewind).
	RepoPrefix string
	// Deployments are those declared in the file, in its order.
	Deployments []Deployment
}

// Deployment is one deployment of rewind server: a replica set or a
// sharded cluster with its repository, and its own capture, snapshot,
// retention, alerts and drills sections over the server's defaults.
type Deployment struct {
	// Name names it in the API's paths, the metrics' deployment label
	// and the alerts: up to 64 of [A-Za-z0-9._-].
	Name string
	// Config is the deployment's whole agent configuration (api and log
	// are the server's).
	Config Config
}

// serverFile is the file's shape: the agent's keys, and the server's own.
type serverFile struct {
	Config         `yaml:",inline"`
	StateDir       string      `yaml:"state_dir"`
	MaxDeployments int         `yaml:"max_deployments"`
	RepoPrefix     string      `yaml:"repo_prefix"`
	Deployments    []yaml.Node `yaml:"deployments"`
}

// entry is one deployment as the file or the API gives it.
type entry struct {
	Name   string `yaml:"name"`
	Config `yaml:",inline"`
}

// serverOnly are the top-level keys a deployment cannot set: one server
// has one API, one log and one lock timing.
var serverOnly = []string{"api", "log", "lock", "state_dir", "max_deployments", "repo_prefix", "deployments"}

var innerLine = regexp.MustCompile(`line \d+: `)

// LoadServer reads and checks rewind server's file. Every problem is
// reported at once, each naming its deployment.
func LoadServer(path string) (Server, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Server{}, fmt.Errorf("read config: %w", err)
	}
	s, err := ParseServer(data)
	if err != nil {
		return s, fmt.Errorf("config %s: %w", path, err)
	}
	return s, nil
}

// envRef is a reference to an environment variable in the file: ${NAME}.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces every ${NAME} in the file's values by the variable's
// value, so that connection strings with passwords can come from the
// environment (a Kubernetes Secret) instead of the file. Only values are
// expanded, after YAML parsing: a value's own quotes or colons cannot
// change the file's structure. A variable that is not set is an error.
func expandEnv(data []byte) ([]byte, error) {
	if !envRef.Match(data) {
		return data, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	var missing []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
				name := envRef.FindStringSubmatch(ref)[1]
				v, ok := os.LookupEnv(name)
				if !ok {
					missing = append(missing, name)
				}
				return v
			})
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	if len(missing) > 0 {
		return nil, fmt.Errorf("${%s} is used in the file but not set in the environment", strings.Join(missing, "}, ${"))
	}
	return yaml.Marshal(&root)
}

// ParseServer parses and checks a server configuration. ${NAME} in a
// value is replaced by the environment variable NAME.
func ParseServer(data []byte) (Server, error) {
	data, err := expandEnv(data)
	if err != nil {
		return Server{}, err
	}
	f := serverFile{Config: Default()}
	if err := decode(data, &f); err != nil {
		return Server{}, err
	}
	s := Server{Defaults: f.Config, StateDir: f.StateDir, MaxDeployments: f.MaxDeployments, RepoPrefix: f.RepoPrefix}
	var errs []error
	if f.Source != "" || f.SourceFile != "" || f.Repo != "" || len(f.Shards) > 0 || f.ConfigServer != "" {
		errs = append(errs, errors.New("source, source_file, shards, config_server and repo belong to each entry of deployments:, not to the top level"))
	}
	if s.RepoPrefix != "" {
		if err := storage.CheckURL(s.RepoPrefix); err != nil {
			errs = append(errs, fmt.Errorf("repo_prefix: %w", err))
		}
	}
	if s.MaxDeployments < 0 {
		errs = append(errs, errors.New("max_deployments must not be negative (0: no limit)"))
	}
	if err := s.Defaults.Lock.validate(); err != nil {
		errs = append(errs, err...)
	}
	errs = append(errs, s.Defaults.validateAPI()...)
	errs = append(errs, s.Defaults.validateLog()...)
	for i, n := range f.Deployments {
		raw, err := yaml.Marshal(&n)
		if err == nil {
			var d Deployment
			if d, err = s.patch(Deployment{Config: s.Defaults}, raw, true); err == nil {
				s.Deployments = append(s.Deployments, d)
			}
		}
		if err != nil {
			// (The inner line numbers count from the entry, not the file.)
			msg := innerLine.ReplaceAllString(err.Error(), "")
			errs = append(errs, fmt.Errorf("deployments[%d] (line %d): %s", i, n.Line, msg))
		}
	}
	if err := CheckUnique(s.Deployments); err != nil {
		errs = append(errs, err)
	}
	return s, errors.Join(errs...)
}

// ParseDeployment reads one deployment (YAML or JSON: the API's request
// bodies are read here too) over the server's defaults, and checks it.
func (s Server) ParseDeployment(doc []byte) (Deployment, error) {
	return s.PatchDeployment(Deployment{Config: s.Defaults}, doc)
}

// PatchDeployment applies doc over d: the keys doc gives replace d's, the
// others stay (PATCH /api/v1/deployments/{name}). A doc that renames the
// deployment is refused.
func (s Server) PatchDeployment(d Deployment, doc []byte) (Deployment, error) {
	return s.patch(d, doc, false)
}

// patch is PatchDeployment; fromFile allows source_file, which only the
// server's own file may give: an API client must not make the server read
// its local files.
func (s Server) patch(d Deployment, doc []byte, fromFile bool) (Deployment, error) {
	var probe map[string]any
	if err := yaml.Unmarshal(doc, &probe); err != nil {
		return d, fmt.Errorf("read deployment: %v", err)
	}
	for _, k := range serverOnly {
		if _, ok := probe[k]; ok {
			return d, fmt.Errorf("%s: is the server's (top level of its file), not a deployment's", k)
		}
	}
	if _, ok := probe["source_file"]; ok && !fromFile {
		return d, errors.New("source_file: is read only from the server's file; give source (the connection string) instead")
	}
	e := entry{Name: d.Name, Config: d.Config}
	e.Origins = nil
	e.SourceFile = ""
	if err := decode(doc, &e); err != nil {
		return d, err
	}
	if err := e.readSourceFile(); err != nil {
		return d, fmt.Errorf("deployment %q: %w", e.Name, err)
	}
	e.SourceFile = "" // read: the deployment holds its source
	if d.Name != "" && e.Name != d.Name {
		return d, fmt.Errorf("name: %q cannot be renamed to %q; add a new deployment instead", d.Name, e.Name)
	}
	if err := CheckShardName(e.Name); err != nil {
		return d, fmt.Errorf("name: %w", err)
	}
	if e.Repo == "" && s.RepoPrefix != "" {
		e.Repo = under(s.RepoPrefix, e.Name)
	}
	if e.Capture.SpoolDir == s.Defaults.Capture.SpoolDir && e.Capture.SpoolDir != "" {
		// One spool per deployment under the server's.
		e.Capture.SpoolDir = filepath.Join(s.Defaults.Capture.SpoolDir, e.Name)
	}
	e.API, e.Log, e.Lock = s.Defaults.API, s.Defaults.Log, s.Defaults.Lock
	if err := e.Validate(); err != nil {
		return d, fmt.Errorf("deployment %q: %s", e.Name, bytes.ReplaceAll([]byte(err.Error()), []byte("\n"), []byte("; ")))
	}
	return Deployment{Name: e.Name, Config: e.Config}, nil
}

// under is the repository URL NAME under prefix: its path gets /NAME,
// its query (?region=...) stays.
func under(prefix, name string) string {
	u, err := url.Parse(prefix)
	if err != nil || u.Scheme == "" {
		return filepath.Join(prefix, name) // a local path
	}
	u.Path = path.Join("/", u.Path, name)
	if u.Host != "" || u.Scheme == "file" {
		return u.String()
	}
	return strings.TrimPrefix(u.String(), "/")
}

// CheckUnique refuses two deployments of one name, or of one repository
// (two writers for one repository would only stand by for each other).
func CheckUnique(ds []Deployment) error {
	names, repos := map[string]bool{}, map[string]string{}
	var errs []error
	for _, d := range ds {
		if names[d.Name] {
			errs = append(errs, fmt.Errorf("deployment %q is declared twice: give each its own name", d.Name))
		}
		names[d.Name] = true
		loc := storage.Canonical(d.Config.Repo)
		if other, ok := repos[loc]; ok {
			errs = append(errs, fmt.Errorf("deployments %q and %q have the same repo: give each deployment a repository of its own", other, d.Name))
		}
		repos[loc] = d.Name
	}
	return errors.Join(errs...)
}
