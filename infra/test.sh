#!/usr/bin/env bash
# Command (2): install what is missing (cached in $HOME), then lint and run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=$(bash infra/bootstrap.sh | tail -n 1)
"$py" -m ruff check .
"$py" -m ruff format --check .
"$py" -m mypy  # streams/ and processors/, configured in pyproject.toml [tool.mypy]
promtool check config infra/prometheus/prometheus.yml infra/prometheus/prometheus.compose.yml
promtool check rules infra/prometheus/rules.yml
(cd infra/prometheus && promtool test rules rules_test.yml)
"$(dirname "$py")/catalog" schemas --check
set +e
"$py" -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"
