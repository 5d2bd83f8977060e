package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func check(args []string) error {
	fl := flag.NewFlagSet("check", flag.ContinueOnError)
	dir := fl.String("dir", "", "OCI image layout directory to check")
	version := fl.String("version", "", "the version the image must carry")
	run := fl.Bool("run", false, "also run the binary of this machine's platform with \"version\"")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *version == "" {
		return errors.New("check needs -dir and -version")
	}
	top, err := layout.ImageIndexFromPath(*dir)
	if err != nil {
		return fmt.Errorf("read layout %s: %w", *dir, err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		return fmt.Errorf("read layout index: %w", err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Annotations[refLabel] != *version {
		return fmt.Errorf("layout index: want one image index named %q, have %d entries", *version, len(tm.Manifests))
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		return fmt.Errorf("read image index: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("read image index: %w", err)
	}
	ran := false
	for _, desc := range im.Manifests {
		if desc.Platform == nil {
			return fmt.Errorf("image %s has no platform", desc.Digest)
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return fmt.Errorf("read image %s: %w", desc.Platform, err)
		}
		exe, err := checkImage(img, *desc.Platform, *version)
		if err != nil {
			return fmt.Errorf("image %s: %w", desc.Platform, err)
		}
		fmt.Printf("image %s: %s, entrypoint %v, user %s, binary %d bytes\n", desc.Platform, desc.Digest, entrypoint, user, len(exe))
		if *run && desc.Platform.OS == runtime.GOOS && desc.Platform.Architecture == runtime.GOARCH {
			if err := runVersion(exe, *version); err != nil {
				return fmt.Errorf("image %s: %w", desc.Platform, err)
			}
			ran = true
		}
	}
	if *run && !ran {
		return fmt.Errorf("no image for this machine's platform %s/%s to run", runtime.GOOS, runtime.GOARCH)
	}
	return nil
}

// checkImage checks one image's config and files and returns its binary.
func checkImage(img v1.Image, p v1.Platform, version string) ([]byte, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c := cf.Config
	switch {
	case cf.OS != p.OS || cf.Architecture != p.Architecture:
		return nil, fmt.Errorf("config says %s/%s", cf.OS, cf.Architecture)
	case !slices.Equal(c.Entrypoint, entrypoint):
		return nil, fmt.Errorf("entrypoint %q, want %q", c.Entrypoint, entrypoint)
	case c.User != user:
		return nil, fmt.Errorf("user %q, want %q", c.User, user)
	case c.Labels["org.opencontainers.image.version"] != version:
		return nil, fmt.Errorf("version label %q, want %q", c.Labels["org.opencontainers.image.version"], version)
	case c.Labels["org.opencontainers.image.source"] == "":
		return nil, errors.New("no org.opencontainers.image.source label")
	}
	files := map[string]*tar.Header{}
	var exe, passwd []byte
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read layers: %w", err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "/"), "/")
		files[name] = h
		switch name {
		case binPath:
			exe, err = io.ReadAll(tr)
		case "etc/passwd":
			passwd, err = io.ReadAll(tr)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	if h := files[binPath]; h == nil || h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 || len(exe) == 0 {
		return nil, fmt.Errorf("no executable /%s", binPath)
	}
	if h := files[caPath]; h == nil || h.Size == 0 {
		return nil, fmt.Errorf("no CA bundle /%s", caPath)
	}
	if h := files[strings.TrimPrefix(home, "/")]; h == nil || h.Uid != uid {
		return nil, fmt.Errorf("%s is missing or not owned by %d", home, uid)
	}
	if !bytes.Contains(passwd, []byte(fmt.Sprintf(":%d:%d:", uid, uid))) {
		return nil, fmt.Errorf("/etc/passwd names no user %d", uid)
	}
	return exe, nil
}

// runVersion runs the image's binary with "version" and expects version.
func runVersion(exe []byte, version string) error {
	dir, err := os.MkdirTemp("", "ociimage-check-")
	if err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "rewind")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		return fmt.Errorf("write binary: %w", err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("run rewind version: %w: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "rewind "+version+" ") {
		return fmt.Errorf("rewind version printed %q, want version %s", out, version)
	}
	fmt.Printf("ran it: %s", out)
	return nil
}
