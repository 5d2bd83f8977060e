#!/usr/bin/env bash
# Checks what operators deploy, as CI does (scripts/test.sh runs it):
#
# - the Helm chart deploy/helm/rewind passes `helm lint --strict` and renders
#   (default values and deploy/helm/rewind/ci/*-values.yaml), and every object
#   it renders validates with kubeconform -strict against the Kubernetes API's
#   own schemas: field names (an unknown or misplaced field is an error),
#   types, enums and required fields. The schemas come from the OpenAPI
#   document in the k8s.io/kubernetes module (the Go module proxy), turned
#   into kubeconform's file layout by scripts/deploytools/k8sschemas; first
#   the script checks that they do reject a misspelt field;
# - the server configuration the chart renders is one `rewind server
#   --check-config` accepts (with dummy values for its ${VAR} references);
# - scripts/build-image.sh builds the OCI image and checks it.
#
# helm, kubeconform and the schemas are built once into $REWIND_TEST_CACHE/bin
# and reused; a missing or outdated one is rebuilt.
#
#   REWIND_PLATFORMS   image platforms to build, default here linux/amd64
#                      (arm64 is one more full compile of rewind)
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
KUBERNETES_VERSION=v1.34.4 # the Kubernetes API the chart is validated against

source scripts/install-test-servers.sh # install_go, CACHE, BIN; installs nothing
log() { printf '%s check-deploy: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
install_go helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
install_go kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"

schemas="$CACHE/k8s-schemas-$KUBERNETES_VERSION"
(
	flock 9
	[ -s "$schemas/deployment-apps-v1.json" ] && exit 0
	log "generating Kubernetes $KUBERNETES_VERSION schemas..."
	tmp=$(mktemp -d "$CACHE/.build-k8s-schemas.XXXXXX")
	# A module cache of its own, removed after: the k8s.io/kubernetes
	# module is ~150 MB unpacked and only its swagger.json is needed.
	trap 'GOMODCACHE="$tmp/mod" go clean -modcache; rm -rf "$tmp"' EXIT
	dir=$(cd "$tmp" && GOMODCACHE="$tmp/mod" GOFLAGS=-modcacherw go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	(cd scripts/deploytools && go run ./k8sschemas "$dir/api/openapi-spec/swagger.json" "$tmp/schemas")
	rm -rf "$schemas"
	mv "$tmp/schemas" "$schemas"
) 9>"$CACHE/.lock-k8s-schemas"

kubeconform() {
	"$BIN/kubeconform" -strict -summary -schema-location "$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$@"
}

chart=deploy/helm/rewind
render() { "$BIN/helm" template rewind "$chart" "$@"; }

log "checking that the schemas reject a misspelt field"
if render -f "$chart/ci/example-values.yaml" | sed 's/readOnlyRootFilesystem:/readOnlyRootFilesytem:/' | kubeconform - >/dev/null; then
	log "kubeconform accepted readOnlyRootFilesytem: the schemas in $schemas are not strict"
	exit 1
fi

# The ConfigMap's rewind.yaml: the block under "rewind.yaml: |", unindented.
server_config() {
	render "$@" --show-only templates/configmap.yaml |
		awk '/^  rewind.yaml: \|/ {on=1; next} on && /^    / {print substr($0, 5); next} on {exit}'
}
rewind_bin=$(mktemp -d)/rewind
go build -o "$rewind_bin" ./cmd/rewind

for values in "" "$chart"/ci/*-values.yaml; do
	args=()
	[ -n "$values" ] && args=(-f "$values")
	log "helm lint, kubeconform and rewind server --check-config: $chart ${values:-(default values)}"
	"$BIN/helm" lint --strict --quiet "$chart" "${args[@]}"
	render "${args[@]}" | kubeconform -
	cfg=$(mktemp)
	server_config "${args[@]}" >"$cfg"
	grep -q 'deployments:' "$cfg" || { log "no server configuration found in the rendered ConfigMap"; exit 1; }
	# The token file is the pod's Secret mount, absent here: --check-config reads it.
	sed -i '/token_file:/d' "$cfg"
	ORDERS_SOURCE=mongodb://db1:27017/ BILLING_SOURCE=mongodb://db2:27017/ "$rewind_bin" server --config "$cfg" --check-config
	rm -f "$cfg"
done
rm -rf "$(dirname "$rewind_bin")"

REWIND_PLATFORMS="${REWIND_PLATFORMS:-linux/amd64}" scripts/build-image.sh
