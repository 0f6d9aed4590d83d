"""ShardedIndex on the local backend (no Ray): results equal one Index holding the same
documents, routing, updates across shards, kill -9 of a writer, bad input."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gingham
from gingham import _synthetic as syn
from gingham.distributed import ShardedIndex, is_sharded, route
from gingham.distributed.manifest import MANIFEST, SEQ_KEY
from gingham.distributed.plaid import cut
from gingham.storage import DuplicateIdError
from plaid_data import approx_reference

DIM = 32
N = 500


@pytest.fixture(scope="module")
def corpus():
    tokens, offsets = syn.clustered_corpus(N, dim=DIM, n_centers=64, min_len=4, max_len=12,
                                           seed=3)
    docs = syn.split(tokens, offsets)
    # Exact copies of earlier documents under later ids: equal scores in different shards,
    # which only the insertion order can break.
    for i in range(0, 40, 4):
        docs[N - 1 - i] = docs[i].copy()
    ids = [f"doc-{i}" for i in range(N)]
    meta = [{"g": i % 3} for i in range(N)]
    queries = syn.queries_near(tokens, offsets, 12, n_tokens=6) + [docs[0], docs[8]]
    return ids, docs, meta, queries


def build_pair(tmp_path, corpus, n_shards=3, storage="residual"):
    ids, docs, meta, _ = corpus
    single = gingham.Index.create(tmp_path / "single", DIM, storage=storage)
    sharded = ShardedIndex.create(tmp_path / "sharded", DIM, n_shards=n_shards,
                                  storage=storage)
    for lo, hi in ((0, 300), (300, N)):
        single.add(ids[lo:hi], docs[lo:hi], meta[lo:hi], [f"t{i}" for i in range(lo, hi)])
        sharded.add(ids[lo:hi], docs[lo:hi], meta[lo:hi], [f"t{i}" for i in range(lo, hi)])
    return single, sharded


def assert_same(a, b):
    """Same ids in the same order, scores within 1e-5, same ranks."""
    assert [[h.id for h in q] for q in a] == [[h.id for h in q] for q in b]
    for qa, qb in zip(a, b):
        assert [h.rank for h in qa] == [h.rank for h in qb]
        np.testing.assert_allclose([h.score for h in qa], [h.score for h in qb], atol=1e-5)


def count_cuts(stats, bound):
    """Count the queries whose candidates one Index's PLAID cut at ndocs, at ndocs / 4, or
    whose probe it widened past ncells (n_cells above the 1 per query token at ncells=1)."""
    for q in stats["per_query"]:
        bound["ndocs"] += q["n_candidates"] > q["n_after_pruning"]
        bound["ndocs / 4"] += q["n_after_pruning"] > q["n_full"]
        bound["widened"] += stats["ncells"] == 1 and q["n_cells"] > 12


@pytest.mark.parametrize("storage", ["residual", "fp16"])
def test_sharded_equals_single_index(tmp_path, corpus, storage):
    ids, _, _, queries = corpus
    single, sharded = build_pair(tmp_path, corpus, storage=storage)
    filters = [{}, {"where": "json_extract(metadata, '$.g') = ?", "params": [1]},
               {"subset": ids[::5] + ["no-such-id"]},
               {"subset": ids[::3], "where": "json_extract(metadata, '$.g') != 2"}]
    bound = {"ndocs": 0, "ndocs / 4": 0, "widened": 0}
    for kw in filters:
        for k in (1, 10, 40):
            assert_same(single.search(queries, k, mode="exact", **kw),
                        sharded.search(queries, k, mode="exact", **kw))
        # PLAID takes its candidate cuts over every shard together (distributed/plaid.py):
        # the same list as one Index at its default parameters and with tighter cuts.
        for k in (1, 10, 40):
            for ndocs in (None, 16):
                a, st = single.search(queries, k, ndocs=ndocs, return_stats=True, **kw)
                assert_same(a, sharded.search(queries, k, ndocs=ndocs, **kw))
                if storage == "residual":
                    count_cuts(st, bound)
        assert_same(single.search(queries, 20, subset=ids[:60:2], ncells=1),
                    sharded.search(queries, 20, subset=ids[:60:2], ncells=1))
    if storage == "residual":  # each cut (and the widening) decided some query's list
        _, st = single.search(queries, 20, subset=ids[:60:2], ncells=1, return_stats=True)
        count_cuts(st, bound)
        assert min(bound.values()) > 0, bound
    plaid_a = single.search(queries[:4], 7, ndocs=16, with_documents=True)
    assert plaid_a == sharded.search(queries[:4], 7, ndocs=16, with_documents=True)
    tied = sharded.search(queries[-2], 3, mode="exact")
    assert [h.id for h in tied[:2]] == ["doc-0", f"doc-{N - 1}"]
    assert route(["doc-0"], 3)[0] != route([f"doc-{N - 1}"], 3)[0]  # the tie spans shards
    docs_a = single.search(queries[:3], 5, mode="exact", with_documents=True)
    docs_b = sharded.search(queries[:3], 5, mode="exact", with_documents=True)
    assert docs_a == docs_b
    assert sharded.codec() is None if storage != "residual" else sharded.codec() is not None


def test_rerank_documents_ids_stats(tmp_path, corpus):
    ids, docs, meta, queries = corpus
    single, sharded = build_pair(tmp_path, corpus)
    pick = sorted(set(ids[::7] + ids[:40:4] + ids[N - 40::4]))
    for q in queries[-3:]:
        assert_same([single.rerank(q, pick)], [sharded.rerank(q, pick)])
        assert_same([single.rerank(q, pick, 5)], [sharded.rerank(q, pick, 5)])
    assert sharded.documents(ids[:9]) == single.documents(ids[:9])
    assert SEQ_KEY not in sharded.get("doc-3")["metadata"]
    np.testing.assert_array_equal(sharded.tokens("doc-7"), single.tokens("doc-7"))
    assert sharded.ids() == single.ids()
    st, ss = sharded.stats(), single.stats()
    for f in ("n_docs", "n_tokens", "n_deleted", "dim", "nbits"):
        assert st[f] == ss[f], f
    assert sum(s["n_docs"] for s in st["shards"]) == N and st["n_shards"] == 3
    assert sharded.verify()["n_docs"] == N
    with pytest.raises(KeyError):
        sharded.rerank(queries[0], ["doc-1", "nope"])
    assert_same([single.rerank(queries[0], ["doc-1", "nope"], missing="ignore")],
                [sharded.rerank(queries[0], ["doc-1", "nope"], missing="ignore")])


def test_also_score_equals_one_index(tmp_path, corpus):
    ids, _, _, queries = corpus
    single, sharded = build_pair(tmp_path, corpus)
    single.delete(["doc-5"])
    sharded.delete(["doc-5"])
    also = [ids[::37] + ["doc-5", "nope"], [], ids[3:9]]
    for options in ({}, {"mode": "exact"}, {"subset": ids[:50]}):
        a_hits, a_scored = single.search(queries[:3], 10, also_score=also, **options)
        b_hits, b_scored = sharded.search(queries[:3], 10, also_score=also, **options)
        assert_same(a_hits, b_hits)
        assert [list(d) for d in a_scored] == [list(d) for d in b_scored]
        for da, db in zip(a_scored, b_scored):
            np.testing.assert_allclose(list(da.values()), list(db.values()), atol=1e-5)
    assert "doc-5" not in a_scored[0] and "nope" not in a_scored[0]


def test_updates_across_shards(tmp_path, corpus):
    ids, docs, meta, queries = corpus
    single, sharded = build_pair(tmp_path, corpus)
    # a PLAID search first: the shards read the sequence numbers of the documents they hold
    # now, and must learn those of the upserted documents below
    assert_same(single.search(queries, 10), sharded.search(queries, 10))
    gone = ids[10:60]
    assert sharded.delete(gone) == single.delete(gone) == 50
    with pytest.raises(KeyError, match="nothing deleted"):
        sharded.delete(["doc-100", "ghost"])
    assert len(sharded) == N - 50  # doc-100 kept
    new = [docs[(i * 13) % N][::-1].copy() for i in range(30)]
    up = ids[100:130]
    with pytest.raises(DuplicateIdError):
        sharded.add(up, new)
    assert len(sharded) == N - 50
    single.add(up, new, upsert=True)
    sharded.add(up, new, upsert=True)
    assert sharded.delete(["ghost", "doc-0"], missing="ignore") == 1
    single.delete(["doc-0"])
    for mode in ("exact", "plaid"):
        assert_same(single.search(queries, 20, mode=mode),
                    sharded.search(queries, 20, mode=mode))
        assert_same(single.search(queries, 10, mode=mode, ndocs=16),
                    sharded.search(queries, 10, mode=mode, ndocs=16))
    assert sharded.ids() == single.ids()
    sharded.compact()
    for mode in ("exact", "plaid"):
        assert_same(single.search(queries, 20, mode=mode),
                    sharded.search(queries, 20, mode=mode))
    reopened = ShardedIndex.open(tmp_path / "sharded")
    assert reopened.ids() == single.ids()
    assert reopened.verify()["n_docs"] == len(single)


def test_plaid_cut_equals_a_sort_by_score_then_sequence():
    """cut() keeps what one sort of every shard's entries by (score desc, sequence asc) keeps,
    with many equal scores across and within shards (oracle: that sort, in Python)."""
    rng = np.random.default_rng(5)
    for trial in range(300):
        seq = rng.permutation(60)
        values, seqs, entries = {}, {}, []
        used = 0
        for s in range(int(rng.integers(1, 4))):
            n = int(rng.integers(0, 20))
            mine = np.sort(seq[used:used + n])  # a shard's internal order is sequence order
            used += n
            v = rng.integers(0, 4, n).astype(np.float32)
            order = np.lexsort((mine, -v))  # the shard's list: score desc, internal asc
            values[s], seqs[s] = v[order], mine[order]
            entries += [(float(x), int(q), s, p) for p, (x, q) in
                        enumerate(zip(values[s], seqs[s]))]
        m = int(rng.integers(1, 30))
        expect = {s: [] for s in values}
        for _, _, s, p in sorted(entries, key=lambda t: (-t[0], t[1]))[:m]:
            expect[s].append(p)
        got = cut(values, seqs, m)
        assert {s: v.tolist() for s, v in got.items()} == \
            {s: sorted(v) for s, v in expect.items()}, trial


def test_a_shard_that_loses_its_phase_1_makes_the_search_start_again(tmp_path, corpus):
    """A shard restarted between the PLAID phases no longer holds the search: the search
    starts again (once) and still returns one Index's list."""
    _, _, _, queries = corpus
    single, sharded = build_pair(tmp_path, corpus)
    shard = sharded._backend.shards[1]
    real, tokens = shard.plaid_candidates, []

    def forgetful(token, *args):
        out = real(token, *args)
        if not tokens:
            shard._pending.clear()  # what a restarted actor holds
        tokens.append(token)
        return out

    shard.plaid_candidates = forgetful
    assert_same(single.search(queries, 10), sharded.search(queries, 10))
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    assert all(not s._pending for s in sharded._backend.shards)  # phase 2 let them go


def test_plaid_over_read_only_answers(tmp_path, corpus):
    """Ray hands a shard's arrays over read-only: the coordinator (widening included) never
    writes into them."""
    ids, _, _, queries = corpus
    single, sharded = build_pair(tmp_path, corpus)

    def read_only(method):
        def call(*args):
            out = method(*args)
            for v in out.values():
                if isinstance(v, np.ndarray):
                    v.flags.writeable = False
            return out
        return call

    for shard in sharded._backend.shards:
        shard.plaid_candidates = read_only(shard.plaid_candidates)
        shard.plaid_widen = read_only(shard.plaid_widen)
    kw = {"subset": ids[:60:2], "ncells": 1}  # few candidates: the probe widens
    assert_same(single.search(queries, 20, **kw), sharded.search(queries, 20, **kw))


def test_routing_is_stable(tmp_path, corpus):
    ids = ["a", "doc-1", "ü-ñ", "x" * 300]
    expected = [int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little")
                % 7 for i in ids]
    assert route(ids, 7).tolist() == expected
    # Pinned values: a change of the hash would strand every existing sharded index.
    assert route(["a", "doc-1", "b"], 4).tolist() == pinned_routes()
    _, sharded = build_pair(tmp_path, corpus, n_shards=4)
    for s, st in enumerate(sharded._all("ids").values()):
        assert (route(st, 4) == s).all()
    assert is_sharded(tmp_path / "sharded") and not is_sharded(tmp_path / "single")


def pinned_routes():
    return [int.from_bytes(hashlib.blake2b(x, digest_size=8).digest(), "little") % 4
            for x in (b"a", b"doc-1", b"b")]


def test_bad_input(tmp_path, corpus):
    ids, docs, _, queries = corpus
    with pytest.raises(ValueError, match="n_shards"):
        ShardedIndex.create(tmp_path / "z", DIM, n_shards=0)
    sharded = ShardedIndex.create(tmp_path / "s", DIM, n_shards=2)
    with pytest.raises(ValueError, match="dim 32"):
        sharded.add(["a"], [np.ones((3, DIM + 1), np.float32)])
    with pytest.raises(ValueError, match="reserved"):
        sharded.add(["a"], [np.ones((3, DIM), np.float32)], [{SEQ_KEY: 1}])
    sharded.add(ids[:20], docs[:20])
    with pytest.raises(ValueError, match="dim 32"):
        sharded.search(np.ones((3, 8), np.float32))
    with pytest.raises(ValueError, match="k"):
        sharded.search(queries[0], 0)
    with pytest.raises(FileExistsError):
        ShardedIndex.create(tmp_path / "s", DIM, n_shards=2)
    with pytest.raises(ValueError, match="not a sharded"):
        ShardedIndex.open(tmp_path / "s" / "shard-0000")
    with pytest.raises(FileNotFoundError):
        ShardedIndex.open(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="backend"):
        ShardedIndex.open(tmp_path / "s", backend="mpi")
    sharded.close()
    os.rename(tmp_path / "s" / "shard-0001", tmp_path / "s" / "moved")
    with pytest.raises(FileNotFoundError, match="shard 1 .* missing"):
        ShardedIndex.open(tmp_path / "s")
    (tmp_path / "s" / MANIFEST).write_text("{not json")
    with pytest.raises(ValueError, match="not a readable sharded manifest"):
        ShardedIndex.open(tmp_path / "s")


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from gingham.distributed import ShardedIndex
    idx = ShardedIndex.open(sys.argv[1])
    rng = np.random.default_rng(0)
    for b in range(10_000):
        ids = [f"b{b}-{i}" for i in range(40)]
        docs = [rng.standard_normal((4, 32)).astype(np.float32) for _ in ids]
        idx.add(ids, docs)
        print(b, flush=True)
""")


def test_kill_9_of_a_writer_keeps_committed_adds_whole(tmp_path, corpus):
    ids, docs, _, queries = corpus
    path = tmp_path / "s"
    ShardedIndex.create(path, DIM, n_shards=3).add(ids[:50], docs[:50])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env,
                            stdout=subprocess.PIPE, text=True)
    confirmed = -1
    for line in proc.stdout:  # wait for three commits, then kill in the middle of the fourth
        confirmed = int(line)
        if confirmed == 2:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    idx = ShardedIndex.open(path)
    assert idx.verify()["n_docs"] == len(idx)
    present = set(idx.ids())
    n_batches = max(int(i.split("-")[0][1:]) for i in present if i.startswith("b")) + 1
    assert n_batches >= confirmed + 1
    for b in range(n_batches):
        batch = [f"b{b}-{i}" for i in range(40)]
        if b <= confirmed:
            assert set(batch) <= present
        where = route(batch, 3)
        for s in range(3):  # each shard holds its part of a batch whole or not at all
            part = {i for i, w in zip(batch, where) if w == s}
            assert part <= present or not (part & present)
    before = len(idx)
    idx.add(["after"], [docs[0]])  # the folder takes writes again
    assert len(idx) == before + 1 and idx.ids()[-1] == "after"


def test_core_and_distributed_import_without_ray():
    code = ("import sys, gingham, gingham.distributed; "
            "assert 'ray' not in sys.modules, 'ray imported'; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_plaid_phase_kernels_against_references(tmp_path, corpus):
    """_core.plaid_candidates: counts, the kept candidates' approximate scores (oracle: numpy
    reference), their order; _core.plaid_score_candidates equals plaid_score_docs; bad
    arguments raise naming them."""
    from gingham import _core
    ids, docs, meta, queries = corpus
    idx = gingham.Index.create(tmp_path / "i", DIM)
    idx.add(ids, docs)
    seg = idx._view.handles[0]
    codec = seg.codec
    q = np.ascontiguousarray(np.concatenate(queries[:3]), dtype=np.float32)
    qo = np.cumsum([0] + [len(x) for x in queries[:3]]).astype(np.int64)
    for threshold, ndocs in ((0.5, 16), (-np.inf, 4 * N)):
        n_cand, n_kept, approx, rescored, segs, rows = _core.plaid_candidates(
            q, qo, [seg], [None], 5, codec.n_centroids, threshold, ndocs)
        assert (n_cand == N).all() and (n_kept == min(N, max(ndocs, 5))).all()
        for j in range(3):
            qj, n = q[qo[j]:qo[j + 1]], int(n_kept[j])
            want = [approx_reference(qj, codec.centroids, seg.codes, seg.doc_offsets, d,
                                     threshold) for d in rows[j, :n]]
            np.testing.assert_allclose(approx[j, :n], want, rtol=1e-5, atol=1e-5)
            unpruned = [approx_reference(qj, codec.centroids, seg.codes, seg.doc_offsets, d,
                                         -np.inf) for d in rows[j, :n]]
            np.testing.assert_allclose(rescored[j, :n], unpruned, rtol=1e-5, atol=1e-5)
            order = np.lexsort((rows[j, :n], -approx[j, :n].astype(np.float64)))
            assert (order == np.arange(n)).all() and (segs[j, :n] == 0).all()
            everyone = [approx_reference(qj, codec.centroids, seg.codes, seg.doc_offsets, d,
                                         threshold) for d in range(N)]
            assert min(want) >= sorted(everyone, reverse=True)[n - 1] - 1e-5  # the best n
    cand_rows = rows[:, :7].reshape(-1)
    offsets = np.arange(0, 22, 7, dtype=np.int64)
    got = _core.plaid_score_candidates(q, qo, [seg], offsets, np.zeros(21, np.int64),
                                       cand_rows)
    for j in range(3):
        np.testing.assert_array_equal(
            got[7 * j:7 * j + 7], _core.plaid_score_docs(q[qo[j]:qo[j + 1]], seg,
                                                         cand_rows[7 * j:7 * j + 7]))
    bad = {"cand_rows": (offsets, np.zeros(21, np.int64), np.full(21, N, np.int64)),
           "cand_segments": (offsets, np.ones(21, np.int64), cand_rows),
           "cand_offsets": (offsets[:3], np.zeros(21, np.int64), cand_rows)}
    for name, (o, s, r) in bad.items():
        with pytest.raises(ValueError, match=name):
            _core.plaid_score_candidates(q, qo, [seg], o, s, r)
    for name, kw in (("ncells", {"ncells": 0}), ("ndocs", {"ndocs": 0}), ("k", {"k": 0})):
        args = {"k": 5, "ncells": 1, "ndocs": 8, **kw}
        with pytest.raises(ValueError, match=name):
            _core.plaid_candidates(q, qo, [seg], [None], args["k"], args["ncells"], 0.5,
                                   args["ndocs"])
    with pytest.raises(ValueError, match="masks"):
        _core.plaid_candidates(q, qo, [seg], [], 5, 1, 0.5, 8)
    with pytest.raises(ValueError, match="needs residual"):
        gingham.Index.create(tmp_path / "f", DIM, storage="fp16").plaid_candidates(queries, 5)


def test_bounded_compaction_per_shard(tmp_path, corpus):
    """compact(max_segments=N) leaves every shard at most N segments (one Index's merge per
    shard) and changes no result; retrain is refused before anything is written."""
    ids, docs, meta, queries = corpus
    single, sharded = build_pair(tmp_path, corpus)
    for lo in range(0, 60, 10):  # small adds: several segments per shard
        extra = [f"x{i}" for i in range(lo, lo + 10)]
        single.add(extra, docs[lo:lo + 10])
        sharded.add(extra, docs[lo:lo + 10])
    before = [s["n_segments"] for s in sharded.stats()["shards"]]
    assert max(before) > 2
    sharded.compact(max_segments=2)
    after = [s["n_segments"] for s in sharded.stats()["shards"]]
    assert max(after) <= 2 and after != before
    for mode in ("exact", "plaid"):
        assert_same(single.search(queries, 10, mode=mode), sharded.search(queries, 10, mode=mode))
    with pytest.raises(ValueError, match="retrain"):
        sharded.compact(retrain=True)
    with pytest.raises(ValueError, match="max_segments"):
        sharded.compact(max_segments=0)
