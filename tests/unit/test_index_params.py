"""Build parameters per index type and backend, and the spelling they travel in."""

from __future__ import annotations

import json

from pymilvus import MilvusClient
from pymilvus.client.prepare import Prepare

from processors.index_params import build_params, is_lite_version, search_params, wire_build_params


def test_a_server_and_milvus_lite_build_hnsw_with_their_own_defaults() -> None:
    assert build_params("HNSW") == {"M": 16, "efConstruction": 200}
    assert build_params("hnsw", lite=True) == {"M": 16, "efConstruction": 100}
    assert build_params("IVF_FLAT") == {"nlist": 1024}
    assert build_params("IVF_FLAT", lite=True) == {"nlist": 128}  # what Lite built while it ignored ours
    assert build_params("FLAT", lite=True) == {}


def test_chosen_parameters_win_over_both_defaults() -> None:
    assert build_params("HNSW", {"efConstruction": 300, "M": 32}, lite=True) == {"M": 32, "efConstruction": 300}
    assert build_params("HNSW", {"efConstruction": 64}) == {"M": 16, "efConstruction": 64}
    assert build_params("NEW_KIND", {"x": 1}, lite=True) == {"x": 1}


def test_lite_is_told_apart_by_its_version_string() -> None:
    assert is_lite_version("milvus_lite-3.2.2")
    assert not is_lite_version("v2.3.5") and not is_lite_version("2.5.4")


def test_the_request_carries_each_parameter_and_a_params_json_key() -> None:
    """What pymilvus puts on the wire: a server reads the keys, Milvus Lite 3.2 only the ``params`` JSON."""
    index = MilvusClient.prepare_index_params()
    params = wire_build_params(build_params("HNSW"))
    index.add_index("embedding", index_type="HNSW", metric_type="COSINE", params=params)
    (param,) = list(index)
    request = Prepare.create_index_request("c", "embedding", param.get_index_configs())
    sent = {kv.key: kv.value for kv in request.extra_params}
    assert json.loads(sent["params"]) == {"M": 16, "efConstruction": 200}
    assert (sent["M"], sent["efConstruction"], sent["index_type"]) == ("16", "200", "HNSW")
    assert wire_build_params({}) == {}  # FLAT: nothing to send


def test_search_params_follow_the_index_type() -> None:
    assert search_params("HNSW", limit=200, ef=128, nprobe=32) == {"ef": 200}
    assert search_params("IVF_SQ8", limit=21, ef=128, nprobe=32) == {"nprobe": 32}
    assert search_params("FLAT", limit=21, ef=128, nprobe=32) == {}
