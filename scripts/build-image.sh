#!/usr/bin/env bash
# Builds rewind's OCI image without a container daemon or a base image:
# static binaries (CGO_ENABLED=0) of ./cmd/rewind for each platform, put by
# scripts/deploytools/ociimage into one layer with the CA bundle, a passwd
# naming uid 65532 and its home /var/lib/rewind. Writes
#
#   dist/rewind-image/       an OCI image layout (crane push dist/rewind-image REF)
#   dist/rewind-image.tar    the same as an archive (skopeo copy oci-archive:dist/rewind-image.tar docker://REF,
#                            podman load -i dist/rewind-image.tar)
#
# and checks what it wrote (entrypoint, user, labels, files; runs the
# binary for this machine's platform with "version").
#
#   REWIND_VERSION     version, default: git describe, else "dev"
#   REWIND_PLATFORMS   default "linux/amd64 linux/arm64"
#   REWIND_CA_BUNDLE   PEM CA bundle to ship, default the host's
#                      /etc/ssl/certs/ca-certificates.crt (Debian's ca-certificates)
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${REWIND_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
PLATFORMS="${REWIND_PLATFORMS:-linux/amd64 linux/arm64}"
CA_BUNDLE="${REWIND_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
SOURCE=https://github.com/rewind-backup/rewind
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# Every file and the image are dated at the commit, so a rebuild of the same
# commit with the same toolchain and CA bundle gives the same digests.
CREATED="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

[ -s "$CA_BUNDLE" ] || { echo "build-image: no CA bundle at $CA_BUNDLE: apt-get install ca-certificates, or set REWIND_CA_BUNDLE" >&2; exit 1; }

mkdir -p dist
bins=()
for p in $PLATFORMS; do
	out="dist/rewind-${p%%/*}-${p##*/}"
	echo "build-image: building $out ($VERSION)" >&2
	CGO_ENABLED=0 GOOS="${p%%/*}" GOARCH="${p##*/}" go build -trimpath -buildvcs=auto \
		-ldflags "-s -w -X main.version=$VERSION" -o "$out" ./cmd/rewind
	bins+=("$p=$PWD/$out")
done

root=$PWD
cd scripts/deploytools
go run ./ociimage build -out "$root/dist/rewind-image" -tar "$root/dist/rewind-image.tar" \
	-version "$VERSION" -source "$SOURCE" -revision "$REVISION" -created "$CREATED" -ca "$CA_BUNDLE" "${bins[@]}"
go run ./ociimage check -dir "$root/dist/rewind-image" -version "$VERSION" -run
echo "build-image: wrote dist/rewind-image.tar ($(du -h "$root/dist/rewind-image.tar" | cut -f1))" >&2
