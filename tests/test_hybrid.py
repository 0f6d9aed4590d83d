"""BM25 index (against a hand-written Lucene BM25) and rank fusion on hand-computed cases
(the default complete-score fusion: tests/test_fusion.py)."""
import math

import numpy as np
import pytest

pytest.importorskip("bm25s")

from gingham.text.bm25 import BM25Index
from gingham.text.fusion import minmax, rrf, weighted  # noqa: E402

DOCS = {
    "d1": "cat sat mat",
    "d2": "dog runs fast dog",
    "d3": "cat dog",
    "d4": "bird sings",
}


def lucene_bm25(docs: dict, query: list, k1=1.5, b=0.75) -> dict:
    """Independent oracle: Lucene's BM25 (no (k1 + 1) factor, as Lucene >= 8) over
    whitespace terms."""
    terms = {d: t.split() for d, t in docs.items()}
    n = len(terms)
    avgdl = sum(len(t) for t in terms.values()) / n
    out = {}
    for d, t in terms.items():
        s = 0.0
        for q in query:
            df = sum(1 for tt in terms.values() if q in tt)
            if df == 0 or q not in t:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = t.count(q)
            s += idf * tf / (tf + k1 * (1 - b + b * len(t) / avgdl))
        out[d] = s
    return out


def make(docs=DOCS):
    idx = BM25Index("none")
    idx.add(list(docs), list(docs.values()))
    return idx


def check_against_oracle(idx, docs, query):
    ids, scores = idx.search(query, k=10)[0]
    oracle = lucene_bm25(docs, query.split())
    expected = sorted((d for d in oracle if oracle[d] > 0), key=lambda d: -oracle[d])
    assert ids == expected
    np.testing.assert_allclose(scores, [oracle[d] for d in ids], rtol=1e-5)


@pytest.mark.parametrize("query", ["cat", "dog", "cat dog", "fast bird"])
def test_bm25_scores_match_lucene_formula(query):
    check_against_oracle(make(), DOCS, query)


def test_bm25_k_and_unknown_terms():
    idx = make()
    ids, _ = idx.search("cat dog", k=1)[0]
    assert ids == ["d3"]
    ids, scores = idx.search("zebra", k=5)[0]
    assert ids == [] and scores.shape == (0,)
    with pytest.raises(ValueError, match="k must be"):
        idx.search("cat", k=0)


def test_bm25_add_delete_equal_fresh_build():
    idx = make({d: DOCS[d] for d in ("d1", "d2")})
    idx.add(["d3", "d4"], [DOCS["d3"], DOCS["d4"]])
    check_against_oracle(idx, DOCS, "cat dog")
    idx.delete(["d2"])
    rest = {d: DOCS[d] for d in ("d1", "d3", "d4")}
    check_against_oracle(idx, rest, "cat dog")
    assert idx.ids == ["d1", "d3", "d4"]


def test_bm25_rejects_bad_ids_before_changing():
    idx = make()
    with pytest.raises(KeyError):
        idx.delete(["d1", "nope"])
    assert len(idx) == 4
    with pytest.raises(ValueError, match="unique"):
        idx.add(["d1"], ["again"])
    with pytest.raises(ValueError, match="equal length"):
        idx.add(["x", "y"], ["one"])


def test_bm25_save_load_roundtrip_and_update(tmp_path):
    idx = make()
    idx.save(tmp_path)
    assert not list(tmp_path.rglob("*.pkl"))
    loaded = BM25Index.load(tmp_path)
    for q in ("cat", "dog runs"):
        a, sa = idx.search(q, 10)[0]
        b, sb = loaded.search(q, 10)[0]
        assert a == b
        np.testing.assert_allclose(sa, sb)
    loaded.delete(["d3"])
    check_against_oracle(loaded, {d: t for d, t in DOCS.items() if d != "d3"}, "cat dog")


def test_bm25_english_stems_and_drops_stopwords():
    pytest.importorskip("Stemmer")
    idx = BM25Index("english")
    idx.add(["a", "b"], ["The dogs are running", "a cat"])
    assert idx.analyze(["The dogs are running"]) == [["dog", "run"]]
    assert idx.search("dog", 5)[0][0] == ["a"]
    assert idx.search("the", 5)[0][0] == []


ANALYSIS_TEXTS = ["The dogs are running, aren't they?", "!!!", "", "a I x", "Über Straße naïve "
                  "CAFÉ_au lait 42 3.14", "multi\nline\ttext  with   spaces",
                  "مرحبا بالعالم و الكتاب المدرسة", "Le chat est sur la table des enfants"]


@pytest.mark.parametrize("language", ["english", "french", "arabic", "none"])
def test_analyze_equals_bm25s_tokenize(language):
    import bm25s

    from gingham.text.bm25 import _LANGUAGES, _stemmer

    stop, stem = _LANGUAGES[language]
    want = bm25s.tokenize(ANALYSIS_TEXTS, stopwords=stop, stemmer=_stemmer(stem),
                          return_ids=False, show_progress=False)
    idx = BM25Index(language)
    assert idx.analyze(ANALYSIS_TEXTS) == [list(t) for t in want]
    assert [idx.analyze([t])[0] for t in ANALYSIS_TEXTS] == [list(t) for t in want]


def test_empty_bm25_returns_empty():
    results = BM25Index("none").search(["x", "y"], 3)
    assert [r[0] for r in results] == [[], []]


def test_rrf_hand_computed():
    ids, scores = rrf([["a", "b", "c"], ["b", "c", "d"]], k=10)
    expected = {"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 63 + 1 / 62, "d": 1 / 63}
    assert ids == ["b", "c", "a", "d"]
    np.testing.assert_allclose(scores, [expected[d] for d in ids])
    assert rrf([["a", "b", "c"], ["b", "c", "d"]], k=2)[0] == ["b", "c"]


def test_rrf_weights_and_ties():
    # equal RRF sums: the first-seen id wins
    ids, _ = rrf([["x"], ["y"]], k=2)
    assert ids == ["x", "y"]
    ids, _ = rrf([["x"], ["y"]], k=2, weights=[1.0, 2.0])
    assert ids == ["y", "x"]
    with pytest.raises(ValueError):
        rrf([["x"]], k=1, weights=[1.0, 2.0])


def test_minmax():
    np.testing.assert_allclose(minmax([3.0, 2.0, 1.0]), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(minmax([5.0, 5.0]), [1.0, 1.0])
    assert minmax([]).shape == (0,)


def test_weighted_fusion_hand_computed():
    dense = (["a", "b", "c"], [3.0, 2.0, 1.0])   # normalized 1, .5, 0
    sparse = (["b", "d"], [10.0, 5.0])            # normalized 1, 0
    ids, scores = weighted(dense, sparse, k=10, alpha=0.5)
    # a = .5*1, b = .5*.5 + .5*1, c = 0, d = 0 (tie: c seen first)
    assert ids == ["b", "a", "c", "d"]
    np.testing.assert_allclose(scores, [0.75, 0.5, 0.0, 0.0])
    ids, scores = weighted(dense, sparse, k=2, alpha=1.0)
    assert ids == ["a", "b"]
    np.testing.assert_allclose(scores, [1.0, 0.5])
    ids, _ = weighted(dense, sparse, k=1, alpha=0.0)
    assert ids == ["b"]
    with pytest.raises(ValueError, match="alpha"):
        weighted(dense, sparse, alpha=1.5)


def test_bm25_score_matches_oracle_and_search():
    idx = make()
    oracle = lucene_bm25(DOCS, ["cat", "dog"])
    np.testing.assert_allclose(idx.score("cat dog", list(DOCS)), [oracle[d] for d in DOCS],
                               rtol=1e-5)
    ids, scores = idx.search("cat dog", 10)[0]
    np.testing.assert_allclose(idx.score("cat dog", ids), scores)
    idx.delete(["d3"])
    rest = {d: t for d, t in DOCS.items() if d != "d3"}
    oracle = lucene_bm25(rest, ["cat", "dog"])
    np.testing.assert_allclose(idx.score("cat dog", list(rest)), [oracle[d] for d in rest],
                               rtol=1e-5)


@pytest.mark.parametrize("method", ["lucene", "robertson", "bm25l", "bm25+"])
def test_bm25_search_equals_a_stable_sort_of_bm25s_scores(method):
    """The compiled posting sum and top-k against bm25s's own scores: equal scores, the same
    order (stable sort of the documents sharing a term with the query, ties by lower row).
    bm25l / bm25+ add a per-query constant to every document."""
    rng = np.random.default_rng(3)
    words = ["cat", "dog", "fish", "bird", "cow", "owl", "yak", "emu"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 6)))) for _ in range(60)]
    idx = BM25Index("none", method=method)
    idx.add([f"d{i}" for i in range(len(texts))], texts)
    bm = idx._index()
    for query in ("cat", "dog owl", "cat cat yak", "emu fish bird cow", "zebra", "zebra cat"):
        known = [t for t in idx.analyze([query])[0] if t in bm.vocab_dict]
        want_scores = (np.asarray(bm.get_scores(known), np.float32) if known
                       else np.zeros(len(texts), np.float32))
        shift = (np.float32(bm.nonoccurrence_array[[bm.vocab_dict[t] for t in known]].sum())
                 if known and bm.nonoccurrence_array is not None else np.float32(0))
        order = np.argsort(-want_scores, kind="stable")
        for k in (1, 5, len(texts) + 3):
            want = order[want_scores[order] - shift > 0][:k]
            ids, scores = idx.search(query, k)[0]
            assert ids == [f"d{r}" for r in want]
            np.testing.assert_array_equal(scores, want_scores[want])
        np.testing.assert_array_equal(idx.score(query, [f"d{i}" for i in range(len(texts))]),
                                      want_scores)
