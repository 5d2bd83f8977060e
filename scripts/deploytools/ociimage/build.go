package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func build(args []string) error {
	fl := flag.NewFlagSet("build", flag.ContinueOnError)
	out := fl.String("out", "", "OCI image layout directory to write (replaced)")
	tarOut := fl.String("tar", "", "the same layout as a tar archive")
	version := fl.String("version", "", "version label, also the layout's ref name")
	source := fl.String("source", "", "source repository URL label")
	revision := fl.String("revision", "", "VCS revision label")
	created := fl.Int64("created", 0, "creation time of every file and of the image, Unix seconds")
	ca := fl.String("ca", "", "PEM bundle of CA certificates to ship")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *out == "" || *tarOut == "" || *version == "" || *ca == "" || fl.NArg() == 0 {
		return fmt.Errorf("build needs -out, -tar, -version, -ca and at least one OS/ARCH=BINARY")
	}
	bundle, err := os.ReadFile(*ca)
	if err != nil {
		return fmt.Errorf("read CA bundle: %w (on Debian: apt-get install ca-certificates)", err)
	}
	when := time.Unix(*created, 0).UTC()
	labels := map[string]string{
		"org.opencontainers.image.title":    "rewind",
		"org.opencontainers.image.version":  *version,
		"org.opencontainers.image.source":   *source,
		"org.opencontainers.image.revision": *revision,
		"org.opencontainers.image.created":  when.Format(time.RFC3339),
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arg := range fl.Args() {
		platform, bin, ok := strings.Cut(arg, "=")
		osName, arch, ok2 := strings.Cut(platform, "/")
		if !ok || !ok2 {
			return fmt.Errorf("%q: want OS/ARCH=BINARY, e.g. linux/amd64=dist/rewind-linux-amd64", arg)
		}
		img, err := platformImage(osName, arch, bin, bundle, when, labels)
		if err != nil {
			return err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}}})
	}
	if err := os.RemoveAll(*out); err != nil {
		return fmt.Errorf("remove old layout: %w", err)
	}
	p, err := layout.Write(*out, empty.Index)
	if err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refLabel: *version})); err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	return tarDir(*out, *tarOut, when)
}

// platformImage is the one-layer image of one platform's binary.
func platformImage(osName, arch, bin string, bundle []byte, when time.Time, labels map[string]string) (v1.Image, error) {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	layerTar, err := rootfs(exe, bundle, when)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("make layer: %w", err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: when}, CreatedBy: "scripts/build-image.sh", Comment: "rewind " + labels["org.opencontainers.image.version"]}})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = osName, arch
	cf.Created = v1.Time{Time: when}
	cf.Config = v1.Config{
		Entrypoint:   entrypoint,
		User:         user,
		WorkingDir:   home,
		Env:          []string{"PATH=/usr/local/bin", "HOME=" + home, "SSL_CERT_FILE=/" + caPath},
		ExposedPorts: map[string]struct{}{apiPort: {}},
		Labels:       labels,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return img, nil
}

// rootfs is the layer's tar: directories first, then files, all owned by
// root except the home directory.
func rootfs(exe, bundle []byte, when time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, owner int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode,
			Uid: owner, Gid: owner, ModTime: when, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode,
			Size: int64(len(data)), ModTime: when, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"etc", "etc/rewind", "etc/ssl", "etc/ssl/certs", "usr", "usr/local", "usr/local/bin", "var", "var/lib"} {
		if err := dir(d, 0o755, 0); err != nil {
			return nil, fmt.Errorf("write layer: %w", err)
		}
	}
	steps := []error{
		dir("tmp", 0o1777, 0),
		dir(strings.TrimPrefix(home, "/"), 0o700, uid),
		file("etc/passwd", 0o644, []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", uid, uid, home))),
		file("etc/group", 0o644, []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid))),
		file(caPath, 0o644, bundle),
		file(binPath, 0o755, exe),
		tw.Close(),
	}
	for _, err := range steps {
		if err != nil {
			return nil, fmt.Errorf("write layer: %w", err)
		}
	}
	return buf.Bytes(), nil
}

// tarDir archives the layout directory dir into file, in name order with
// fixed times and owners, so that equal layouts give equal archives.
func tarDir(dir, file string, when time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && path != dir {
			names = append(names, path)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("list layout: %w", err)
	}
	sort.Strings(names)
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("create image archive: %w", err)
	}
	tw := tar.NewWriter(f)
	for _, path := range names {
		if err := addFile(tw, dir, path, when); err != nil {
			f.Close()
			return fmt.Errorf("write image archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("write image archive: %w", err)
	}
	return f.Close()
}

func addFile(tw *tar.Writer, dir, path string, when time.Time) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return err
	}
	h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: when, Format: tar.FormatPAX}
	if fi.IsDir() {
		h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
		return tw.WriteHeader(h)
	}
	h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, fi.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, err = tw.Write(data)
	return err
}
