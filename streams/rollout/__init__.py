"""Model rollout, the re-index side (docs/rollout.md): rebuild a new model's collection from the log.

Public API::

    build_reindexer(settings, activation, previous_collection=None, metrics=None, embedder=None)
        -> PartitionReindexer                 # nothing connects until start()
    PartitionReindexer
        await start() / await stop()          # stop() commits nothing: the last batch's commit stands
        await assign(partitions)              # images partition numbers; their gallery partitions follow
        await revoke(partitions)              # waits for a batch in flight first
        await step(max_records=None) -> StepResult      # one batch over owned, unswitched partitions
        await catch_up_partition(p, until_offset) -> StepResult   # up to until_offset, then "switched"
        await switched_partitions() -> frozenset[int]   # from the group's committed metadata
        await total_lag() -> int / await owned_lag() -> int / await offsets() -> GroupOffsets
        index, parts.embedder, group_id       # the new collection and model, for the switch
    reindex_group_id(app_id, collection, activated_at), SWITCHED
    read_status(settings) -> RolloutStatus    # what `catalog rollout status` prints
    apply_retention(client, prefix, keep, latest, entries)  # after a switch; keep 0 drops nothing

How a worker drives it (one re-indexer per activation, on the worker's event loop):

1. On a valid ``ModelActivated``: ``r = build_reindexer(settings, event, previous_collection=<the
   served collection>, metrics=ReindexMetrics(worker_metrics.registry), embedder=<the new model
   already loaded>)``, ``await r.start()``, ``await r.assign(<images partitions the worker owns>)``.
   Partitions already ``switched`` (after a restart) are served with the new model at once.
2. Between two enrichment batches, while ``await r.total_lag() > CATALOG_ROLLOUT_SWITCH_LAG``:
   ``await r.step()`` (one bounded batch; it raises ``TransientFailure`` with nothing committed
   when Milvus is away: retry later). Labels confirmed meanwhile go to both collections
   (``apply_labels(r.index, store, ...)`` beside the worker's own), so no label is lost in between.
3. Caught up: for each owned partition ``p``, at a batch boundary where the worker has processed
   ``p`` up to ``w_p - 1``, ``await r.catch_up_partition(p, w_p)``; from ``w_p`` on the worker
   enriches ``p`` with the new model into ``r.index``'s collection.
4. Rebalance: ``await r.revoke(lost)`` in ``on_partitions_revoked``, ``await r.assign(gained)`` in
   ``on_partitions_assigned``. When ``switched_partitions()`` covers every partition and
   ``total_lag()`` is 0: move the alias, unload the old model, ``apply_retention(...)``, ``stop()``.
"""

from streams.rollout.collections import apply_retention
from streams.rollout.factory import build_reindexer
from streams.rollout.metrics import ReindexMetrics
from streams.rollout.offsets import SWITCHED, GroupOffsets, PartitionOffsets, reindex_group_id
from streams.rollout.reindexer import PartitionReindexer, ReindexParts, StepResult

__all__ = [
    "SWITCHED",
    "GroupOffsets",
    "PartitionOffsets",
    "PartitionReindexer",
    "ReindexMetrics",
    "ReindexParts",
    "StepResult",
    "apply_retention",
    "build_reindexer",
    "reindex_group_id",
]
