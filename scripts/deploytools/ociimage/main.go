// Command ociimage builds rewind's OCI image without a container daemon or
// a base image, and checks one.
//
//	ociimage build -out DIR -tar FILE -version V -source URL -revision R \
//	    -created UNIX -ca BUNDLE linux/amd64=BIN [linux/arm64=BIN ...]
//	ociimage check -dir DIR -version V [-run]
//
// build writes an OCI image layout into DIR and the same layout as a tar
// archive (an "oci-archive") into FILE: one image index with an image per
// platform, each a single layer holding the static binary as
// /usr/local/bin/rewind, the CA bundle as /etc/ssl/certs/ca-certificates.crt,
// /etc/passwd and /etc/group naming uid and gid 65532 "nonroot", and
// /var/lib/rewind (its home, owned by it) and /tmp. The image runs as
// 65532:65532 with rewind as its entrypoint. Every timestamp is -created,
// so the same inputs give the same digests.
//
// check reads DIR back and fails unless every image has that entrypoint,
// user, labels and files; with -run it also runs the binary of the image
// for this machine's platform with "version" and expects V in its output.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ociimage build|check [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = build(os.Args[2:])
	case "check":
		err = check(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "ociimage: unknown command %q: build or check\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

// The image's fixed shape, shared by build and check.
const (
	binPath  = "usr/local/bin/rewind"
	caPath   = "etc/ssl/certs/ca-certificates.crt"
	home     = "/var/lib/rewind"
	user     = "65532:65532"
	uid      = 65532
	apiPort  = "7070/tcp"
	refLabel = "org.opencontainers.image.ref.name"
)

var entrypoint = []string{"/" + binPath}
