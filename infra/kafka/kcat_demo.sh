#!/usr/bin/env bash
# Demo the enrichment stream from the outside, with kcat only:
#   1. publish ImageSubmitted events from a JSON file to catalog.images.v1, keyed by product_id;
#   2. print the ImageEnriched events a running worker writes to catalog.enriched.v1 for them.
#
# Usage:  infra/kafka/kcat_demo.sh BOOTSTRAP EVENTS.json
#   BOOTSTRAP    host:port of the broker, e.g. the line printed by
#                `python -m infra.kafka.runner start`
#   EVENTS.json  one JSON object, a JSON array of objects, or JSON Lines; each needs product_id
#
# Env:  IN_TOPIC (catalog.images.v1)  OUT_TOPIC (catalog.enriched.v1)  WAIT_S (60)
#
# Needs kcat (apt-get install kcat) and python3 (to compact the JSON and pull out the key).
# Only output records newer than this run are shown (kcat -o s@<start ms>). Events the worker
# rejects go to catalog.images.dlq.v1 instead, see them with:
#   kcat -b BOOTSTRAP -t catalog.images.dlq.v1 -C -e -o beginning
set -euo pipefail

if [ $# -ne 2 ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
bootstrap=$1
events=$2
in_topic=${IN_TOPIC:-catalog.images.v1}
out_topic=${OUT_TOPIC:-catalog.enriched.v1}
wait_s=${WAIT_S:-60}
command -v kcat >/dev/null || { echo "kcat not found (apt-get install kcat)" >&2; exit 1; }
[ -r "$events" ] || { echo "cannot read $events" >&2; exit 1; }

# "product_id<TAB>compact JSON" per event, the form `kcat -P -K '\t'` reads.
lines=$(python3 - "$events" <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
try:
    data = json.loads(text)
    items = data if isinstance(data, list) else [data]
except json.JSONDecodeError:
    items = [json.loads(line) for line in text.splitlines() if line.strip()]
for item in items:
    print(f"{item['product_id']}\t{json.dumps(item, separators=(',', ':'))}")
PY
)
count=$(printf '%s\n' "$lines" | grep -c .)
start_ms=$(python3 -c 'import time; print(int(time.time() * 1000))')

printf '%s\n' "$lines" | kcat -b "$bootstrap" -t "$in_topic" -P -K '\t'
echo "produced $count event(s) to $in_topic; waiting up to ${wait_s}s for $out_topic ..." >&2

# A consumer must not create the output topic (the worker owns its partition count): wait for it.
deadline=$((SECONDS + wait_s))
until kcat -b "$bootstrap" -L -J 2>/dev/null | grep -q "\"topic\":\"$out_topic\""; do
  if [ $SECONDS -ge $deadline ]; then echo "$out_topic does not exist; is a worker running?" >&2; exit 1; fi
  sleep 1
done

left=$((deadline - SECONDS)); [ $left -gt 0 ] || left=1
rc=0
timeout "$left" kcat -b "$bootstrap" -t "$out_topic" -C -q -o "s@$start_ms" -c "$count" \
  -f 'key=%k partition=%p offset=%o\n%s\n' || rc=$?
if [ $rc -eq 124 ]; then
  echo "timed out before $count enriched event(s) arrived (rejects go to the DLQ topic)" >&2
fi
exit $rc
