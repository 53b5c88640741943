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
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "bootstrap: apt-get install ${need_apt[*]}" >&2
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >&2
fi

py="${PYTHON:-python3}"
# keyed by what gets installed (dependency pins + interpreter), not by the rest of pyproject.toml
deps=$("$py" -c 'import json, sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]; print(json.dumps([p["dependencies"], p.get("optional-dependencies")], sort_keys=True))' "$root/pyproject.toml")
key=$( (echo "$deps"; "$py" --version) | sha256sum | cut -c1-16)
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "bootstrap: creating $venv (first run downloads torch, several GB)" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  "$venv/bin/pip" install -q -e "$root[dev]" > "$cache/pip-install.log" 2>&1 || { tail -n 40 "$cache/pip-install.log" >&2; exit 1; }
  touch "$venv/.complete"
else
  # the package is installed editable: re-link it only when this checkout is not the one linked
  linked=$(cd / && "$venv/bin/python" -c 'import pathlib, streams; print(pathlib.Path(streams.__file__).resolve().parents[1])' 2>/dev/null || true)
  if [ "$linked" != "$root" ]; then
    "$venv/bin/pip" install -q --no-deps -e "$root" > "$cache/pip-relink.log" 2>&1
  fi
fi

"$venv/bin/python" -m infra.kafka.runner fetch >&2
echo "$venv/bin/python"
