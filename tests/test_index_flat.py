"""Flat index kinds (storage fp32 / fp16 / int8) and filters against oracles."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gingham
from plaid_data import clustered_docs, csr, queries_from


@pytest.fixture(scope="module")
def corpus():
    docs = clustered_docs(300, 32, 20, seed=31)
    return docs, queries_from(docs, 6, 8, seed=32)


def stored(docs, storage):
    """What the index should hold per kind, as exact_search inputs."""
    tokens, offsets = csr(docs)
    if storage == "fp32":
        return tokens, offsets, None
    if storage == "fp16":
        return tokens.astype(np.float16), offsets, None
    values, scales = gingham.quantize_int8(tokens)
    return values, offsets, scales


@pytest.mark.parametrize("storage", ["fp32", "fp16", "int8"])
def test_flat_equals_exact_search_oracle(tmp_path, corpus, storage):
    docs, queries = corpus
    idx = gingham.Index.create(tmp_path / storage, dim=32, storage=storage)
    for a in range(0, 300, 100):  # three segments
        idx.add([f"d{i}" for i in range(a, a + 100)], docs[a:a + 100])
    tokens, offsets, scales = stored(docs, storage)
    for k in (1, 7, 300):
        want_scores, want_ids = gingham.exact_search(queries, tokens, offsets, k=k,
                                                     token_scales=scales)
        for mode in ("plaid", "exact"):  # plaid is exact on flat kinds
            got = idx.search(queries, k=k, mode=mode)
            for q in range(len(queries)):
                assert [h.id for h in got[q]] == [f"d{i}" for i in want_ids[q]]
                np.testing.assert_allclose([h.score for h in got[q]], want_scores[q],
                                           rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(idx.tokens("d17"), tokens[offsets[17]:offsets[18]].astype(
        np.float32) * (1 if scales is None else scales[offsets[17]:offsets[18], None]))
    rr = idx.rerank(queries[0], ["d3", "d250", "d100"])
    ref = gingham.maxsim_scores(queries[0], tokens, offsets, token_scales=scales)
    assert sorted(h.id for h in rr) == ["d100", "d250", "d3"]
    assert [h.score for h in rr] == sorted(h.score for h in rr)[::-1]
    for h in rr:
        assert h.score == pytest.approx(float(ref[int(h.id[1:])]), rel=1e-6)
    st_ = idx.stats()
    assert st_["storage"] == storage and st_["n_segments"] == 3 and st_["nbits"] is None
    per_token = {"fp32": 128, "fp16": 64, "int8": 36}[storage]
    assert st_["data_bytes_per_token"] == per_token


def test_int8_recall_vs_fp32(tmp_path, corpus):
    docs, queries = corpus
    ids = [f"d{i}" for i in range(len(docs))]
    f32 = gingham.Index.create(tmp_path / "f32", dim=32, storage="fp32")
    i8 = gingham.Index.create(tmp_path / "i8", dim=32, storage="int8")
    f32.add(ids, docs)
    i8.add(ids, docs)
    more = queries_from(docs, 30, 8, seed=33)
    recall = np.mean([len({h.id for h in f32.search(q, k=10)} &
                          {h.id for h in i8.search(q, k=10)}) / 10 for q in more])
    assert recall >= 0.97


def test_deletes_compact_on_flat(tmp_path, corpus):
    docs, queries = corpus
    idx = gingham.Index.create(tmp_path / "f", dim=32, storage="fp16")
    idx.add([f"d{i}" for i in range(150)], docs[:150])
    idx.add([f"d{i}" for i in range(150, 300)], docs[150:])
    dead = [f"d{i}" for i in range(0, 300, 3)]
    assert idx.delete(dead) == 100
    keep = [i for i in range(300) if i % 3]
    tokens, offsets, _ = stored([docs[i] for i in keep], "fp16")
    before = idx.search(queries, k=20)
    for q, hits in enumerate(before):
        want_scores, want_ids = gingham.exact_search(queries[q], tokens, offsets, k=20)
        assert [h.id for h in hits] == [f"d{keep[i]}" for i in want_ids[0]]
    idx.compact()
    assert idx.stats()["n_segments"] == 1 and idx.stats()["n_deleted"] == 0
    assert idx.search(queries, k=20) == before
    assert len(idx.search(queries[0], k=1000)) == 200


DIM = 8
_docs = clustered_docs(60, DIM, 6, seed=41, min_len=1, max_len=6)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(storage=st.sampled_from(["residual", "fp32", "int8"]),
       n_docs=st.integers(1, 60), k=st.integers(1, 70),
       dead=st.sets(st.integers(0, 59), max_size=30),
       subset=st.one_of(st.none(), st.sets(st.integers(0, 70), max_size=40)),
       lang=st.one_of(st.none(), st.sampled_from(["en", "fr", "xx"])),
       min_n=st.one_of(st.none(), st.integers(0, 60)),
       q_doc=st.integers(0, 59), split=st.integers(1, 59))
def test_filters_against_brute_force(tmp_path_factory, storage, n_docs, k, dead, subset, lang,
                                     min_n, q_doc, split):
    path = tmp_path_factory.mktemp("filt") / "i"
    idx = gingham.Index.create(path, dim=DIM, storage=storage, n_centroids=8)
    meta = [{"lang": ["en", "fr"][i % 2], "n": i} for i in range(n_docs)]
    ids = [f"id{i}" for i in range(n_docs)]
    split = min(split, n_docs)
    idx.add(ids[:split], _docs[:split], metadata=meta[:split])
    if split < n_docs:
        idx.add(ids[split:], _docs[split:n_docs], metadata=meta[split:])
    dead = sorted(i for i in dead if i < n_docs)
    idx.delete([ids[i] for i in dead])
    clauses, params = [], []
    if lang is not None:
        clauses.append("json_extract(metadata, '$.lang') = ?")
        params.append(lang)
    if min_n is not None:
        clauses.append("json_extract(metadata, '$.n') >= ?")
        params.append(min_n)
    where = " AND ".join(clauses) or None
    sub = None if subset is None else [f"id{i}" for i in sorted(subset)]
    match = [i for i in range(n_docs) if i not in dead
             and (subset is None or i in subset)
             and (lang is None or meta[i]["lang"] == lang)
             and (min_n is None or meta[i]["n"] >= min_n)]
    query = _docs[q_doc][:3]
    hits = idx.search(query, k=k, mode="exact", subset=sub, where=where,
                      params=params if where else None)
    assert len(hits) == min(k, len(match))
    got = [int(h.id[2:]) for h in hits]
    assert len(set(got)) == len(got) and set(got) <= set(match)
    # oracle: the stored (decoded) vectors, scored in float64
    score = {i: float((query.astype(np.float64) @ idx.tokens(ids[i]).T.astype(np.float64))
                      .max(axis=1).sum()) for i in match}
    for h in hits:
        assert h.score == pytest.approx(score[int(h.id[2:])], rel=1e-4, abs=1e-4)
    if hits:
        rest = [score[i] for i in match if i not in set(got)]
        assert not rest or hits[-1].score >= max(rest) - 1e-4
    plaid = idx.search(query, k=k, subset=sub, where=where, params=params if where else None)
    assert len(plaid) == min(k, len(match)) and {int(h.id[2:]) for h in plaid} <= set(match)


def test_filter_errors(tmp_path, corpus):
    docs, queries = corpus
    idx = gingham.Index.create(tmp_path / "e", dim=32, storage="fp32")
    idx.add(["a", "b"], docs[:2], metadata=[{"x": 1}, {"x": 2}])
    with pytest.raises(ValueError, match="params"):
        idx.search(queries[0], params=[1])
    with pytest.raises(ValueError, match="where"):
        idx.search(queries[0], where="1; DROP TABLE documents", params=[])
    with pytest.raises(ValueError):
        idx.search(queries[0], where="nonsense ((")
    hits = idx.search(queries[0], where="json_extract(metadata, '$.x') = ?", params=[2])
    assert [h.id for h in hits] == ["b"]
    assert idx.search(queries[0], subset=["zz"]) == []
    assert [h.id for h in idx.search(queries[0], subset=["a", "zz"])] == ["a"]
