#!/usr/bin/env bash
# Build kube-apiserver and etcd for the integration tests under tests/rollback/.
#
# Called by CI (.ci/run) before pytest, and by tests/kube_fixture.py when the binaries are
# missing, so the tests never skip. The versions come from tools/kube/go.mod; the binaries go
# to a cache directory keyed by both versions:
#
#   ${CANARY_SENTINEL_CACHE:-<repo>/.cache}/kube/<k8s-version>-etcd<etcd-version>/bin/
#
# A `.complete` marker is written last; when it exists the script does nothing. A lock file
# keeps two concurrent callers (CI and a test run) from building the same directory twice.
# Prints the directory that holds the binaries as its last line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
cache_root="${CANARY_SENTINEL_CACHE:-${repo}/.cache}"

cd "${here}"
k8s_version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
etcd_version="$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
out="${cache_root}/kube/${k8s_version}-etcd${etcd_version}"
bin="${out}/bin"

if [[ -f "${out}/.complete" ]]; then
    echo "kube binaries cached in ${bin}" >&2
    echo "${bin}"
    exit 0
fi

mkdir -p "${bin}"
exec 9>"${out}/.lock"
flock 9
# Another caller may have finished while this one waited for the lock.
if [[ -f "${out}/.complete" ]]; then
    echo "kube binaries cached in ${bin}" >&2
    echo "${bin}"
    exit 0
fi

# v1.34.4 -> major 1, minor 34; without these /version reports a v0.0.0-master placeholder.
minor="${k8s_version#v1.}"
minor="${minor%%.*}"
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kube_ldflags+=" -X ${pkg}.gitVersion=${k8s_version}"
    kube_ldflags+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    kube_ldflags+=" -X ${pkg}.gitTreeState=clean"
done
# etcd's version number is a constant in the module; only the commit is a variable.
etcd_ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-${etcd_version}"

export CGO_ENABLED=0
# Two cores are shared with other work: keep the compile to two parallel packages.
build_flags=(-p 2 -trimpath)

start=$(date +%s)
echo "building kube-apiserver ${k8s_version} into ${bin}" >&2
go build "${build_flags[@]}" -ldflags "${kube_ldflags}" \
    -o "${bin}/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mid=$(date +%s)
echo "kube-apiserver built in $((mid - start)) s" >&2

echo "building etcd ${etcd_version} into ${bin}" >&2
go build "${build_flags[@]}" -ldflags "${etcd_ldflags}" -o "${bin}/etcd.tmp" ./etcd
end=$(date +%s)
echo "etcd built in $((end - mid)) s" >&2

mv "${bin}/kube-apiserver.tmp" "${bin}/kube-apiserver"
mv "${bin}/etcd.tmp" "${bin}/etcd"
printf 'kubernetes=%s\netcd=%s\nbuild_seconds=%s\n' \
    "${k8s_version}" "${etcd_version}" "$((end - start))" >"${out}/.complete"
echo "kube binaries built in $((end - start)) s" >&2
echo "${bin}"
