// Command k8sschemas turns Kubernetes' OpenAPI v2 document (swagger.json,
// shipped in the k8s.io/kubernetes module under api/openapi-spec) into the
// strict standalone JSON schemas kubeconform reads from a local directory,
// one file per kind: deployment-apps-v1.json, service-v1.json...
//
// Strict, as kubeconform's own "-strict" schemas: every object with listed
// properties gets additionalProperties: false, so a misspelt or misplaced
// field is an error. IntOrString fields take a string or an integer, and
// quantities (cpu: 1, memory: 64Mi) a string or a number, as the API server
// does. Descriptions are dropped.
//
//	go run ./k8sschemas SWAGGER_JSON OUT_DIR
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const refPrefix = "#/definitions/"

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: k8sschemas SWAGGER_JSON OUT_DIR")
		os.Exit(2)
	}
	n, err := convert(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8sschemas:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d schemas into %s\n", n, os.Args[2])
}

// convert writes one schema per group-version-kind of the swagger
// document at in into the directory out, and returns how many.
func convert(in, out string) (int, error) {
	raw, err := os.ReadFile(in)
	if err != nil {
		return 0, fmt.Errorf("read swagger: %w", err)
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return 0, fmt.Errorf("parse swagger %s: %w", in, err)
	}
	defs := map[string]any{}
	for name, d := range doc.Definitions {
		defs[name] = strict(d)
	}
	defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = oneOf("string", "integer")
	defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = oneOf("string", "number")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, fmt.Errorf("create schema dir: %w", err)
	}
	names := make([]string, 0, len(doc.Definitions))
	for name := range doc.Definitions {
		names = append(names, name)
	}
	sort.Strings(names) // the first definition of a kind wins, the same on every run
	written := map[string]bool{}
	for _, name := range names {
		gvks, _ := doc.Definitions[name]["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk, _ := g.(map[string]any)
			file := schemaFile(fmt.Sprint(gvk["group"]), fmt.Sprint(gvk["version"]), fmt.Sprint(gvk["kind"]))
			if written[file] {
				continue
			}
			if err := write(filepath.Join(out, file), standalone(name, defs)); err != nil {
				return 0, err
			}
			written[file] = true
		}
	}
	if len(written) == 0 {
		return 0, fmt.Errorf("%s defines no kind: is it Kubernetes' swagger.json?", in)
	}
	return len(written), nil
}

// schemaFile is the name kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json
// gives a kind: lower-case kind, the group's first label, the version.
func schemaFile(group, version, kind string) string {
	s := strings.ToLower(kind)
	if group != "" {
		s += "-" + strings.ToLower(strings.Split(group, ".")[0])
	}
	return s + "-" + strings.ToLower(version) + ".json"
}

// strict copies a schema node without descriptions, closing every object
// that lists its properties.
func strict(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			switch {
			case k == "description" || strings.HasPrefix(k, "x-"):
			case k == "properties":
				// a map of property names, which may be "description"
				props := map[string]any{}
				for name, p := range x.(map[string]any) {
					props[name] = strict(p)
				}
				m[k] = props
			default:
				m[k] = strict(x)
			}
		}
		if _, ok := m["properties"]; ok {
			if _, set := m["additionalProperties"]; !set {
				m["additionalProperties"] = false
			}
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = strict(x)
		}
		return s
	}
	return v
}

func oneOf(types ...string) map[string]any {
	var alts []any
	for _, t := range types {
		alts = append(alts, map[string]any{"type": t})
	}
	return map[string]any{"oneOf": alts}
}

// standalone is the schema of definition name with every definition it
// reaches, and only those, under "definitions".
func standalone(name string, defs map[string]any) map[string]any {
	need := map[string]any{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				d := strings.TrimPrefix(ref, refPrefix)
				if _, seen := need[d]; !seen {
					need[d] = defs[d]
					walk(defs[d])
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(defs[name])
	root := map[string]any{"$schema": "http://json-schema.org/draft-04/schema#", "definitions": need}
	for k, v := range defs[name].(map[string]any) {
		root[k] = v
	}
	return root
}

func write(path string, schema map[string]any) error {
	b, err := json.Marshal(schema)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write schema: %w", err)
	}
	return nil
}
