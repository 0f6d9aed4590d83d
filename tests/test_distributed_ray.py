"""The Ray side of gingham.distributed on one local Ray session (num_cpus=2, shared by the
module): actor fan-out equal to one Index, a shard actor killed or hung mid-search, the
parallel build from embeddings and from text (Ray Data), and a build killed and resumed."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import gingham
from gingham import _synthetic as syn
from gingham.distributed import ShardedIndex, ShardUnavailableError, build
from gingham.distributed.shard import add_with_codec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::FutureWarning", "ignore::ResourceWarning")
DIM = 16


def skip_unless_selected(request) -> None:
    """Slow tests run only when asked for (``-m slow``), as the marker's help says."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow: run with -m slow")


class WordEncoder:
    """Deterministic stand-in for a text encoder: one seeded unit vector per word."""

    def __init__(self, log: str | None = None, gate: str | None = None):
        self.log, self.gate = log, gate

    def encode_documents(self, texts):
        if self.gate and any("gated" in t for t in texts):
            while not os.path.exists(self.gate):  # held until the test opens the gate
                time.sleep(0.02)
        if self.log:
            Path(self.log, texts[0].split()[0]).touch()
        out = []
        for t in texts:
            rows = []
            for w in t.split():
                seed = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
                rows.append(v / np.linalg.norm(v))
            out.append(np.stack(rows))
        return out


@pytest.fixture(scope="module")
def session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus():
    tokens, offsets = syn.clustered_corpus(400, dim=DIM, n_centers=32, min_len=3, max_len=9,
                                           seed=5)
    ids = [f"d{i}" for i in range(400)]
    return ids, syn.split(tokens, offsets), syn.queries_near(tokens, offsets, 6, n_tokens=5)


def single_with_codec(path, ids, docs, codec, texts=None):
    """The oracle: one Index holding the corpus in input order, with the given codec."""
    idx = gingham.Index.create(path, DIM)
    tokens, offsets = syn.to_csr(docs)
    add_with_codec(str(path), ids, tokens, offsets, None, texts, codec)
    idx.refresh()
    return idx


def hits(result):
    return [[(h.id, round(h.score, 5)) for h in q] for q in result]


def test_actor_fanout_equals_single_index(session, tmp_path, corpus):
    ids, docs, queries = corpus
    single = gingham.Index.create(tmp_path / "single", DIM)
    single.add(ids, docs)
    with ShardedIndex.create(tmp_path / "s", DIM, n_shards=3, backend="ray", threads=1,
                             timeout=20) as sharded:
        sharded.add(ids, docs)
        assert sharded.backend == "ray"
        where = {"where": "external_id > ?", "params": ["d2"]}
        for kw in ({}, where, {"subset": ids[::3]}):
            for mode in ("exact", "plaid"):  # PLAID at its defaults: cuts over every shard
                assert hits(sharded.search(queries, 10, mode=mode, **kw)) == \
                    hits(single.search(queries, 10, mode=mode, **kw))
        assert sharded.rerank(queries[0], ids[:30], 5) == single.rerank(queries[0], ids[:30], 5)
        sharded.delete(ids[:50])
        single.delete(ids[:50])
        assert hits(sharded.search(queries, 10, mode="exact")) == \
            hits(single.search(queries, 10, mode="exact"))
        expected = hits(single.search(queries, 10, mode="exact"))

        # a shard actor killed while a search is in flight: Ray restarts it, the call retries
        victim = sharded._backend.actors[1]
        pid = ray.get(victim.pid.remote())
        os.kill(pid, signal.SIGSTOP)  # the call below cannot finish before the kill
        ref = sharded._backend.actors[1].size.remote()
        os.kill(pid, signal.SIGKILL)
        assert hits(sharded.search(queries, 10, mode="exact")) == expected
        assert hits(sharded.search(queries, 10)) == hits(single.search(queries, 10))
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(ref)
        assert ray.get(victim.pid.remote()) != pid

        # a hung shard: its actor is killed and restarted after the timeout
        pid = ray.get(sharded._backend.actors[2].pid.remote())
        os.kill(pid, signal.SIGSTOP)
        assert hits(sharded.search(queries, 10, mode="exact")) == expected
        assert ray.get(sharded._backend.actors[2].pid.remote()) != pid
        try:
            os.kill(pid, signal.SIGKILL)  # the stopped process, if Ray has not reaped it
        except ProcessLookupError:
            pass

        # no retry left: a clear error, or a result marked partial when asked for
        sharded._backend.retries = 0
        sharded._backend.timeout = 5.0
        pid = ray.get(sharded._backend.actors[0].pid.remote())
        os.kill(pid, signal.SIGSTOP)
        with pytest.raises(ShardUnavailableError, match=r"shard\(s\) \[0\b"):
            sharded.search(queries, 10, mode="exact")
        partial = sharded.search(queries, 10, mode="exact", allow_partial=True)
        assert all(q.partial and 0 in q.missing_shards for q in partial)
        assert all(0 not in sharded.shard_of([h.id for h in q]).tolist() for q in partial)
        os.kill(pid, signal.SIGKILL)  # now dead: Ray restarts it and a retry finds it
        sharded._backend.retries, sharded._backend.timeout = 1, 30.0
        full = sharded.search(queries, 10, mode="exact", allow_partial=True)
        assert hits(full) == expected and not any(q.partial for q in full)
        with pytest.raises(KeyError):  # a shard's own error reaches the caller as itself
            sharded.rerank(queries[0], ["nope"])


def test_build_from_embeddings_equals_single_index(session, tmp_path, corpus):
    ids, docs, queries = corpus
    seen = []
    out = build(tmp_path / "b", ids, dim=DIM, n_shards=3, embeddings=docs, batch_size=64,
                metadata=[{"i": i} for i in range(len(ids))],
                progress=lambda phase, done, total: seen.append(phase))
    assert out["n_docs"] == out["added"] == len(ids) and out["n_batches"] == 7
    assert "write" in seen and not (tmp_path / "b" / "build").exists()
    sharded = ShardedIndex.open(tmp_path / "b")
    single = single_with_codec(tmp_path / "single", ids, docs, sharded.codec())
    for mode in ("exact", "plaid"):
        got = sharded.search(queries, 10, mode=mode, ndocs=4 * len(ids), ncells=64)
        assert hits(got) == hits(single.search(queries, 10, mode=mode, ndocs=4 * len(ids),
                                               ncells=64))
    assert sharded.ids() == ids and sharded.get("d7")["metadata"] == {"i": 7}
    assert sharded.verify()["n_docs"] == len(ids)
    with pytest.raises(ValueError, match="shards"):
        build(tmp_path / "b", ids, dim=DIM, n_shards=2, embeddings=docs)


def test_build_from_text_with_encoder_actors(session, tmp_path):
    texts = [f"w{i} common{i % 7} tail{i % 11} x{i % 3}" for i in range(120)]
    ids = [f"t{i}" for i in range(120)]
    out = build(tmp_path / "t", ids, dim=DIM, n_shards=2, texts=texts, encoder=WordEncoder,
                batch_size=16, n_encoders=2, storage="fp32")
    assert out["encoded_batches"] == 8 and out["added"] == 120
    sharded = ShardedIndex.open(tmp_path / "t")
    docs = WordEncoder().encode_documents(texts)
    single = gingham.Index.create(tmp_path / "single", DIM, storage="fp32")
    single.add(ids, docs, texts=texts)
    q = WordEncoder().encode_documents(["common3 tail5 x1"])
    assert hits(sharded.search(q, 10)) == hits(single.search(q, 10))
    assert sharded.get("t5")["text"] == texts[5]


DRIVER = textwrap.dedent("""
    import functools, json, sys
    import ray
    sys.path[:0] = json.loads(sys.argv[4])
    import test_distributed_ray as t
    from gingham.distributed import build
    ray.init(address=sys.argv[1], log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(t)
    texts = [f"w{i} c{i % 5}" + (" gated" if i >= 48 else "") for i in range(160)]
    build(sys.argv[2], [f"t{i}" for i in range(160)], dim=t.DIM, n_shards=2, texts=texts,
          encoder=functools.partial(t.WordEncoder, log=sys.argv[3], gate=sys.argv[3] + "/gate"),
          batch_size=16, keep_spool=True)
""")


@pytest.mark.slow
def test_build_killed_and_resumed(session, tmp_path, request):
    skip_unless_selected(request)
    path, log = tmp_path / "k", tmp_path / "log"
    log.mkdir()
    here = str(Path(__file__).parent)
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, ray.get_runtime_context().gcs_address,
                             str(path), str(log), json.dumps([here] + sys.path)],
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    batches = path / "build" / "batches"
    deadline = time.monotonic() + 240
    while not all((batches / f"b{b:06d}" / "docs.json").exists() for b in range(3)):
        assert proc.poll() is None and time.monotonic() < deadline, "the build did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # the driver dies with batch 3 held in the encoder
    proc.wait()
    assert sorted(os.listdir(log)) == ["w0", "w16", "w32"]
    (log / "gate").touch()
    texts = [f"w{i} c{i % 5}" + (" gated" if i >= 48 else "") for i in range(160)]
    ids = [f"t{i}" for i in range(160)]
    out = build(path, ids, dim=DIM, n_shards=2, texts=texts,
                encoder=functools.partial(WordEncoder, log=str(log)), batch_size=16)
    assert out["encoded_batches"] == 7  # the three finished batches are not encoded again
    assert sorted(os.listdir(log)) == sorted(["gate"] + [f"w{16 * b}" for b in range(10)])
    sharded = ShardedIndex.open(path)
    single = single_with_codec(tmp_path / "single", ids, WordEncoder().encode_documents(texts),
                               sharded.codec())
    q = WordEncoder().encode_documents(["c3 w77 gated"])
    assert hits(sharded.search(q, 10, mode="exact")) == hits(single.search(q, 10, mode="exact"))
    assert sharded.ids() == ids


WRITE_DRIVER = textwrap.dedent("""
    import sys
    import numpy as np
    import ray
    from gingham import _synthetic as syn
    from gingham.distributed import build
    ray.init(address=sys.argv[1], log_to_driver=False)
    tokens, offsets = syn.clustered_corpus(1200, dim=16, n_centers=32, min_len=3, max_len=9,
                                           seed=9)
    build(sys.argv[2], [f"e{i}" for i in range(1200)], dim=16, n_shards=2,
          embeddings=(tokens, offsets), batch_size=20, keep_spool=True)
""")


@pytest.mark.slow
def test_build_killed_while_writing_loses_nothing(session, tmp_path, request):
    skip_unless_selected(request)
    path = tmp_path / "w"
    proc = subprocess.Popen([sys.executable, "-c", WRITE_DRIVER,
                             ray.get_runtime_context().gcs_address, str(path)],
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    done = path / "build" / "done"
    deadline = time.monotonic() + 240
    while not (done.is_dir() and len(os.listdir(done)) >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, "the build did not start"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at_kill = len(os.listdir(done))
    assert at_kill < 120  # killed in the middle of the write phase
    tokens, offsets = syn.clustered_corpus(1200, dim=16, n_centers=32, min_len=3, max_len=9,
                                           seed=9)
    ids = [f"e{i}" for i in range(1200)]
    out = build(path, ids, dim=DIM, n_shards=2, embeddings=(tokens, offsets), batch_size=20)
    assert out["encoded_batches"] == 0 and out["added"] < 1200
    sharded = ShardedIndex.open(path)
    assert sharded.ids() == ids and sharded.verify()["n_docs"] == 1200
    single = single_with_codec(tmp_path / "single", ids, syn.split(tokens, offsets),
                               sharded.codec())
    q = syn.queries_near(tokens, offsets, 4, n_tokens=5)
    assert hits(sharded.search(q, 10, mode="exact")) == hits(single.search(q, 10, mode="exact"))
