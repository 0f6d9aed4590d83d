"""gingham.distributed on a simulated 3-node Ray cluster (ray.cluster_utils.Cluster, 1 CPU per
node): build and fan-out search across nodes equal one Index; a shard's node lost."""
from __future__ import annotations

import os
import sys
import time

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster

import gingham
from gingham import _synthetic as syn
from gingham.distributed import ShardedIndex, build

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::ResourceWarning")]
DIM = 16


def skip_unless_selected(request) -> None:
    """Slow tests run only when asked for (``-m slow``), as the marker's help says."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow: run with -m slow")


@pytest.fixture(scope="module")
def cluster(request):
    skip_unless_selected(request)
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}}
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    nodes = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False, runtime_env=env)
    yield c, nodes
    ray.shutdown()
    c.shutdown()


def hits(result):
    return [[(h.id, round(h.score, 5)) for h in q] for q in result]


def test_build_and_search_across_nodes(cluster, tmp_path):
    c, nodes = cluster
    tokens, offsets = syn.clustered_corpus(900, dim=DIM, n_centers=32, min_len=3, max_len=9,
                                           seed=11)
    ids = [f"n{i}" for i in range(900)]
    build(tmp_path / "s", ids, dim=DIM, n_shards=3, embeddings=(tokens, offsets),
          batch_size=100, address=c.address)
    queries = syn.queries_near(tokens, offsets, 8, n_tokens=5)
    with ShardedIndex.open(tmp_path / "s", backend="ray", address=c.address, num_cpus=1,
                           timeout=60) as sharded:
        hosts = {ray.get(a.pid.remote()) for a in sharded._backend.actors}
        assert len(hosts) == 3  # one actor per node (1 CPU each)
        codec = sharded.codec()
        single = gingham.Index.create(tmp_path / "single", DIM)
        from gingham.distributed.shard import add_with_codec
        add_with_codec(str(tmp_path / "single"), ids, tokens, offsets, None, None, codec)
        single.refresh()
        expected = hits(single.search(queries, 10, mode="exact"))
        assert hits(sharded.search(queries, 10, mode="exact")) == expected
        sharded.add(["late"], [tokens[:4]])
        single.add(["late"], [tokens[:4]])
        assert hits(sharded.search(queries[:2], 5, mode="exact")) == \
            hits(single.search(queries[:2], 5, mode="exact"))

        # The node of a shard is lost: the result is marked partial (no CPU to restart its
        # actor on), then full again once a node joins and Ray restarts the actor there.
        c.remove_node(nodes[0])
        while sum(n["Alive"] for n in ray.nodes()) != 2:  # until Ray has seen the loss
            time.sleep(0.1)
        sharded._backend.timeout, sharded._backend.retries = 10.0, 0
        expected = hits(single.search(queries, 10, mode="exact"))
        partial = sharded.search(queries, 10, mode="exact", allow_partial=True)
        # The lost shard is missing (a loaded host may miss a second one's 5 s deadline);
        # every hit comes from a shard that answered.
        assert [q.partial for q in partial] == [True] * len(queries), partial[0].missing_shards
        assert all(1 <= len(q.missing_shards) < 3 for q in partial), partial[0].missing_shards
        for q in partial:
            assert not set(sharded.shard_of([h.id for h in q]).tolist()) & set(q.missing_shards)
        nodes[0] = c.add_node(num_cpus=1)
        c.wait_for_nodes()
        sharded._backend.timeout, sharded._backend.retries = 60.0, 2
        assert hits(sharded.search(queries, 10, mode="exact")) == expected
