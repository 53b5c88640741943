#!/usr/bin/env bash
# Install everything the project needs, cached in $HOME keyed by a hash of the inputs.
# Prints the path of the virtualenv's python on its last line.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${CATALOG_CACHE_DIR:-$HOME/.cache/catalog-enrich}"
mkdir -p "$cache"

need_apt=()
[ -d /usr/share/datasets/fashion-mnist ] || need_apt+=(dataset-fashion-mnist)
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
command -v socat >/dev/null 2>&1 || need_apt+=(socat)  # loopback bridges of the Milvus server's namespace
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# the console's browser tests drive Debian's Chromium through its matching driver (nothing downloads a browser)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "bootstrap: apt-get install ${need_apt[*]}" >&2
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >&2
fi
# promtool checks infra/prometheus in CI and a test runs the real server on 127.0.0.1. Its package
# would start a service on 0.0.0.0:9090 (and recommends node-exporter on 0.0.0.0:9100): install it
# without recommends under a policy-rc.d that refuses every service start, then put things back.
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "bootstrap: apt-get install prometheus (no service started)" >&2
  policy=/usr/sbin/policy-rc.d
  policy_backup=""
  if [ -e "$policy" ]; then
    policy_backup=$(mktemp)
    $sudo_cmd cp -p "$policy" "$policy_backup"
  fi
  printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee "$policy" >/dev/null
  $sudo_cmd chmod 755 "$policy"
  $sudo_cmd apt-get update -qq >&2
  apt_rc=0
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends prometheus >&2 || apt_rc=$?
  if [ -n "$policy_backup" ]; then $sudo_cmd cp -p "$policy_backup" "$policy"; rm -f "$policy_backup"
  else $sudo_cmd rm -f "$policy"; fi
  [ "$apt_rc" -eq 0 ] || exit "$apt_rc"
  # under systemd, keep the unit off for good (the tests run their own server on a loopback port)
  if [ -d /run/systemd/system ]; then
    $sudo_cmd systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi

py="${PYTHON:-python3}"
# The heavy dependencies live in one virtualenv in $HOME, shared by every checkout and keyed by what
# gets installed (dependency pins + interpreter), not by the rest of pyproject.toml.
# The small "checks" extra (type checker, YAML parser, the parallel test runner) stays out of the key: it is added in place below,
# so pinning or bumping it never rebuilds the torch venv.
deps=$("$py" -c 'import json, sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]; o = {k: v for k, v in (p.get("optional-dependencies") or {}).items() if k != "checks"}; print(json.dumps([p["dependencies"], o or None], sort_keys=True))' "$root/pyproject.toml")
key=$( (echo "$deps"; "$py" --version) | sha256sum | cut -c1-16)
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "bootstrap: creating $venv (first run downloads torch, several GB)" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  # the same pins, as a requirements file: dependencies only, the project itself goes into .venv below
  "$py" -c 'import sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]; print("\n".join(p["dependencies"] + p.get("optional-dependencies", {}).get("dev", [])))' "$root/pyproject.toml" > "$cache/requirements-$key.txt"
  "$venv/bin/pip" install -q -r "$cache/requirements-$key.txt" > "$cache/pip-install.log" 2>&1 \
    || { tail -n 40 "$cache/pip-install.log" >&2; exit 1; }
  touch "$venv/.complete"
fi
# the "checks" extra's exact pins, installed into the shared venv when one is missing or differs
checks=$("$py" -c 'import sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]; print("\n".join(p.get("optional-dependencies", {}).get("checks", [])))' "$root/pyproject.toml")
if [ -n "$checks" ] && ! "$venv/bin/python" -c 'import sys; from importlib.metadata import version, PackageNotFoundError
def ok(pin):
    name, _, want = pin.partition("==")
    try:
        return version(name.strip()) == want.strip()
    except PackageNotFoundError:
        return False
sys.exit(0 if all(ok(p) for p in sys.argv[1].split()) else 1)' "$checks"; then
  echo "bootstrap: pip install $(echo $checks)" >&2
  # shellcheck disable=SC2086  # one pin per word
  flock "$cache/checks.lock" "$venv/bin/pip" install -q $checks > "$cache/pip-checks.log" 2>&1 \
    || { tail -n 40 "$cache/pip-checks.log" >&2; exit 1; }
fi
shared_site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# older layouts installed this project into the shared venv; that link would follow whichever
# checkout ran last, so it goes
if compgen -G "$shared_site/__editable__*catalog_enrich*" >/dev/null; then
  "$venv/bin/pip" uninstall -q -y catalog-enrich >&2
fi

# This checkout's own thin virtualenv (.venv, git-ignored): the shared site-packages plus an
# editable install of THIS checkout and its `catalog` command, so checkouts never re-point each other.
local_venv="$root/.venv"
if [ "$(cat "$local_venv/.shared" 2>/dev/null)" != "$venv" ] || [ ! -x "$local_venv/bin/catalog" ]; then
  rm -rf "$local_venv"
  "$venv/bin/python" -m venv --without-pip "$local_venv"
  local_site=$("$local_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # python quotes the path (repr), so any character in the cache path is safe in the .pth line
  "$local_venv/bin/python" -c 'import sys; open(sys.argv[1], "w").write(f"import site; site.addsitedir({sys.argv[2]!r})\n")' \
    "$local_site/_catalog_shared_deps.pth" "$shared_site"
  "$local_venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$root" \
    > "$cache/pip-local.log" 2>&1 || { tail -n 40 "$cache/pip-local.log" >&2; exit 1; }
  echo "$venv" > "$local_venv/.shared"
fi

"$local_venv/bin/python" -m infra.kafka.runner fetch >&2
# the real Milvus 2.3 server (PyPI package milvus, ~57 MB) for the server half of the tests and --milvus server
"$local_venv/bin/python" -m infra.milvus.server fetch >&2
echo "$local_venv/bin/python"
