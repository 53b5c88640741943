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
# two test processes (pytest-xdist), each module whole in one of them (its module fixtures built once):
# most integration tests wait on Kafka, Milvus and real workers, so two share the 2-core machine well
# (more on a bigger machine: bash infra/test.sh -n 4; one: -n 0)
"$py" -m pytest -q -p no:cacheprovider -n 2 --dist loadfile "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"
