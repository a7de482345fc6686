#!/usr/bin/env bash
# Installs everything canary-sentinel's demo and tests need, idempotently:
#   - system packages (Java 17, Maven, Go, Prometheus Alertmanager, kubectl), when missing;
#   - a virtualenv in .venv with the project and its dev tools;
#   - the Apache Kafka broker jars from Maven Central (cached, keyed by version);
#   - with --kube: kube-apiserver and etcd built from the Go module proxy (cached by version).
# Caches live in $CANARY_SENTINEL_CACHE (default: .cache/ in the checkout, git-ignored).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
kube=0
for arg in "$@"; do
    case "$arg" in
        --kube) kube=1 ;;
        *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

say() { printf '[setup] %s\n' "$*" >&2; }

# Go from its usual install folder, when it is not on PATH.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
fi

# 1. System packages, only the missing ones.
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v kubectl >/dev/null 2>&1 || need+=(kubectl)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        say "installing system packages: ${need[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
    else
        say "missing system packages (install them, e.g. with sudo apt-get install): ${need[*]}"
        exit 1
    fi
fi

# 2. The virtualenv.
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$py" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    say "installing canary-sentinel and its dev tools into .venv"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi

# 3. The Kafka broker jars.
say "Kafka broker jars: $(.venv/bin/python -c 'from detector.localbroker import ensure_jars; print(ensure_jars())')"

# 4. kube-apiserver and etcd (built with Go >= 1.24; Debian's golang-go is too old).
if [ $kube = 1 ]; then
    if ! command -v go >/dev/null 2>&1; then
        say "Go 1.24 or newer is needed to build kube-apiserver and etcd for the tests"
        exit 1
    fi
    start=$(date +%s)
    bin="$(bash tools/kube/build.sh | tail -n 1)"
    say "kube-apiserver and etcd in $bin ($(( $(date +%s) - start )) s)"
fi
