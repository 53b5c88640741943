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
key=$( (cat "$root/pyproject.toml"; "$py" --version) | sha256sum | cut -c1-16)
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "bootstrap: creating $venv (first run downloads torch, several GB)" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  "$venv/bin/pip" install -q -e "$root[dev]" >&2
  touch "$venv/.complete"
else
  # the package itself is editable; re-link it in case the checkout moved
  "$venv/bin/pip" install -q --no-deps -e "$root" >&2
fi

"$venv/bin/python" -m infra.kafka.runner fetch >&2
echo "$venv/bin/python"
