"""BM25 (bm25s) kept beside the index.

``BM25Index`` keeps each live document's analysed terms (lowercased, stopwords removed,
Snowball-stemmed with PyStemmer when installed) so that ``add`` tokenizes only the new texts and
``delete`` only drops rows; either marks the bm25s matrix stale, and it is rebuilt from the kept
terms on the next search or save. The rebuild is O(total terms): 0.66 s for msmarco's 5,000
passages on this 2-core machine (about 0.13 ms per passage), against about 140 ms per passage
to encode them, so one rebuild per add/delete batch is cheap; a per-document add loop is not.
A query is scored in one compiled call over bm25s's score matrix (``engine.sparse.posting_top``:
the posting sum and the top-k of the positive scores; only the query's postings are checked).
On disk (no pickle): ``bm25.json`` (settings, ids) + ``bm25_terms.jsonl`` (terms per document)
+ bm25s's own ``.npy``/``.json`` score matrix under ``bm25s/``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from typing import Sequence

import numpy as np

from ..engine.sparse import posting_top
from ..storage.errors import CorruptionError
from . import saved

STATE_FILE = "bm25.json"
FORMAT_VERSION = 1
TERMS_FILE = "bm25_terms.jsonl"
BM25S_DIR = "bm25s"

# language -> (bm25s stopword list name or None, Snowball stemmer name)
_LANGUAGES = {
    "english": ("en", "english"), "german": ("de", "german"), "french": ("fr", "french"),
    "spanish": ("es", "spanish"), "italian": ("it", "italian"), "dutch": ("nl", "dutch"),
    "portuguese": ("pt", "portuguese"), "russian": ("ru", "russian"),
    "swedish": ("sv", "swedish"), "norwegian": ("no", "norwegian"),
    "danish": ("da", "danish"), "turkish": ("tr", "turkish"), "arabic": (None, "arabic"),
    "none": (None, None),
}


def _stemmer(name: str | None):
    if name is None:
        return None
    try:
        import Stemmer
    except ImportError:
        return None  # PyStemmer is optional: BM25 still works on unstemmed terms
    return Stemmer.Stemmer(name)


# bm25s.tokenize's defaults: lowercase, words of two or more word characters.
_TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")


class _Analyzer:
    """bm25s.tokenize's analysis (lowercase, split, drop stopwords, stem) with the stopword set
    and stemmer built once: bm25s.tokenize rebuilds them and starts three progress bars per
    call, about 1 ms, which a one-query search pays every time."""

    def __init__(self, language: str) -> None:
        from bm25s.tokenization import _infer_stopwords

        stop, stem = _LANGUAGES[language]
        self.stopwords = frozenset(_infer_stopwords(stop)) if stop else frozenset()
        self.stemmer = _stemmer(stem)

    def __call__(self, text: str) -> list[str]:
        words = [w for w in _TOKEN_PATTERN.findall(text.lower()) if w not in self.stopwords]
        return self.stemmer.stemWords(words) if self.stemmer is not None and words else words


class BM25Index:
    """BM25 over caller ids; ``search`` returns best-first (ids, scores) per query.

    language: one of the Snowball languages listed in ``_LANGUAGES`` (stopwords + stemmer), or
    "none" for plain lowercased word tokens. k1, b, method: bm25s parameters.
    """

    def __init__(self, language: str = "english", *, k1: float = 1.5, b: float = 0.75,
                 method: str = "lucene") -> None:
        if language not in _LANGUAGES:
            raise ValueError(f"language must be one of {sorted(_LANGUAGES)}; got {language!r}")
        self.language = language
        self.k1, self.b, self.method = float(k1), float(b), method
        self.ids: list[str] = []
        self._terms: list[list[str]] = []
        self._row: dict[str, int] = {}
        self._bm25 = None
        self._stale = True
        # (score matrix, query, scores) of the last query: a hybrid search asks BM25 for its
        # top hits and then for the scores of the other list's hits with the same query.
        self._last: tuple | None = None
        self._analyzer: _Analyzer | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._row

    def analyze(self, texts: Sequence[str]) -> list[list[str]]:
        """Texts -> lists of terms, exactly as documents and queries are analysed (the terms
        ``bm25s.tokenize`` gives with this language's stopwords and stemmer)."""
        if self._analyzer is None:
            self._analyzer = _Analyzer(self.language)
        return [self._analyzer(t) for t in texts]

    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Add documents; ids must be new strings, one text per id."""
        ids = [str(i) for i in ids]
        if len(ids) != len(texts):
            raise ValueError(f"ids and texts must have equal length; got {len(ids)} and "
                             f"{len(texts)}")
        if len(set(ids)) != len(ids) or any(i in self._row for i in ids):
            raise ValueError("ids must be unique and not already in the BM25 index")
        terms = self.analyze(texts)
        for i, t in zip(ids, terms):
            self._row[i] = len(self.ids)
            self.ids.append(i)
            self._terms.append(list(t))
        self._stale = True

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents by id; unknown ids raise ``KeyError`` before anything changes."""
        drop = {str(i) for i in ids}
        unknown = sorted(drop - self._row.keys())
        if unknown:
            raise KeyError(f"unknown ids: {unknown[:5]}")
        keep = [r for r, i in enumerate(self.ids) if i not in drop]
        self.ids = [self.ids[r] for r in keep]
        self._terms = [self._terms[r] for r in keep]
        self._row = {i: r for r, i in enumerate(self.ids)}
        self._stale = True

    def _index(self):
        if self._stale:
            import bm25s

            self._bm25 = None
            if self.ids:
                bm = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
                # bm25s needs at least one term per document to build its vocabulary rows.
                bm.index([t if t else [""] for t in self._terms], show_progress=False)
                self._bm25 = bm
            self._stale = False
        return self._bm25

    def search(self, queries: str | Sequence[str], k: int = 10
               ) -> list[tuple[list[str], np.ndarray]]:
        """Top-k per query: list of (ids best first, float32 scores); only documents sharing a
        term with the query are returned, so a list can be shorter than k."""
        if isinstance(queries, str):
            queries = [queries]
        if not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k must be a positive int; got {k!r}")
        out: list[tuple[list[str], np.ndarray]] = []
        for query in queries:
            _, top, top_scores = self._scored(query, int(k))
            out.append(([self.ids[r] for r in top.tolist()], top_scores))
        return out

    def _all_scores(self, query: str) -> np.ndarray | None:
        """float32 (len(self),) BM25 scores of every document for one query; None when no
        query term is in the vocabulary (every score is 0)."""
        last = self._last  # one read: another thread may replace it meanwhile
        if last is not None and last[0] is self._index() and last[1] == query:
            return last[2]
        return self._scored(query, 1)[0]

    def _scored(self, query: str, k: int) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """(every document's score as ``_all_scores``, rows int64 of the k best documents with
        a positive score, best first, ties by lower row, their float32 scores) of one query;
        the scores are kept for the ``score`` calls that follow with the same query."""
        bm = self._index()
        known = [] if bm is None else [bm.vocab_dict[t] for t in self.analyze([query])[0]
                                       if t in bm.vocab_dict]
        if not known:
            self._last = (bm, query, None)
            return None, np.zeros(0, np.int64), np.zeros(0, np.float32)
        terms = np.asarray(known, dtype=np.int64)
        matrix = bm.scores
        scores, top, top_scores = posting_top(matrix["data"], matrix["indices"],
                                              matrix["indptr"], terms, len(self.ids), k)
        if bm.nonoccurrence_array is not None:  # bm25l / bm25+: a per-query constant
            shift = np.float32(bm.nonoccurrence_array[terms].sum())
            scores += shift
            top_scores += shift
        scores.setflags(write=False)
        self._last = (bm, query, scores)
        return scores, top, top_scores

    def score(self, query: str, ids: Sequence[str]) -> np.ndarray:
        """True BM25 scores of the documents ``ids`` for one query -> float32 (len(ids),), in
        input order; 0 exactly when a document shares no term with the query. Unknown ids raise
        ``KeyError``."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string; got {type(query).__name__}")
        try:
            rows = np.fromiter(map(self._row.__getitem__, ids), np.int64, len(ids))
        except KeyError:  # ids given as other types than str, or unknown ids
            ids = [str(i) for i in ids]
            unknown = [i for i in ids if i not in self._row]
            if unknown:
                raise KeyError(f"unknown ids: {unknown[:5]}") from None
            rows = np.fromiter(map(self._row.__getitem__, ids), np.int64, len(ids))
        scores = self._all_scores(query) if len(rows) else None
        if scores is None:
            return np.zeros(len(rows), np.float32)
        return scores[rows]

    def score_stats(self, query: str) -> tuple[float, float]:
        """(mean, population std) of the query's BM25 scores over every indexed document: the
        scores of documents unrelated to the query, against which the default hybrid
        standardizes BM25. (0.0, 0.0) when the index is empty or no query term is known."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string; got {type(query).__name__}")
        scores = self._all_scores(query) if self.ids else None
        if scores is None:
            return 0.0, 0.0
        return float(scores.mean(dtype=np.float64)), float(scores.std(dtype=np.float64))

    def save(self, folder: str | os.PathLike) -> None:
        """Write the index into ``folder`` (json + npy, no pickle)."""
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, TERMS_FILE), "w", encoding="utf-8") as f:
            for t in self._terms:
                f.write(json.dumps(t, ensure_ascii=False) + "\n")
        sub = os.path.join(folder, BM25S_DIR)
        if os.path.exists(sub):
            shutil.rmtree(sub)
        bm = self._index()
        if bm is not None:
            bm.save(sub, allow_pickle=False)
        names = [TERMS_FILE] + _matrix_files(folder)
        state = {"format_version": FORMAT_VERSION, "language": self.language, "k1": self.k1,
                 "b": self.b, "method": self.method, "ids": self.ids,
                 saved.FILES_KEY: saved.file_digests(folder, names)}
        saved.write_json(os.path.join(folder, STATE_FILE), state)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "BM25Index":
        """Read an index written by :meth:`save` (the score matrix is not recomputed). Every
        file is checked against the sha256 in ``bm25.json`` before it is parsed, and the score
        matrix's structure after: a damaged file raises CorruptionError naming it, one written
        by a newer gingham FormatVersionError."""
        path = os.path.join(folder, STATE_FILE)
        state = saved.read_json(path, _STATE_FIELDS, newest_version=FORMAT_VERSION)
        try:
            idx = cls(state["language"], k1=state["k1"], b=state["b"], method=state["method"])
        except ValueError as exc:
            raise CorruptionError(path, str(exc)) from None
        idx.ids = state["ids"]
        idx._row = {i: r for r, i in enumerate(idx.ids)}
        if len(idx._row) != len(idx.ids):
            raise CorruptionError(path, "'ids' holds the same id twice")
        matrix = _matrix_files(folder) if idx.ids else []
        saved.check_files(folder, state, [TERMS_FILE] + matrix, path)
        idx._terms = _read_terms(os.path.join(folder, TERMS_FILE), len(idx.ids))
        if matrix:
            idx._bm25 = _load_matrix(os.path.join(folder, BM25S_DIR), len(idx.ids))
            idx._stale = False
        return idx


_STATE_FIELDS: dict[str, saved.Field] = {
    "format_version": saved.one_of(FORMAT_VERSION),
    "language": saved.TEXT,
    "k1": saved.NUMBER,
    "b": saved.NUMBER,
    "method": saved.TEXT,
    "ids": saved.TEXTS,
}


def _matrix_files(folder: str | os.PathLike) -> list[str]:
    """The files of bm25s's saved score matrix, relative to ``folder``."""
    sub = os.path.join(folder, BM25S_DIR)
    if not os.path.isdir(sub):
        return []
    return [f"{BM25S_DIR}/{name}" for name in sorted(os.listdir(sub))]


def _read_terms(path: str, n_docs: int) -> list[list[str]]:
    """One JSON list of strings per line, ``n_docs`` lines."""
    terms = []
    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                row = json.loads(line)
                if not isinstance(row, list) or not all(isinstance(t, str) for t in row):
                    raise CorruptionError(path, f"line {line_no}: expected a list of strings")
                terms.append(row)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptionError(path, f"not a JSON-lines file of terms ({type(exc).__name__})"
                              ) from None
    if len(terms) != n_docs:
        raise CorruptionError(path, f"{len(terms)} term rows for {n_docs} ids")
    return terms


def _load_matrix(sub: str, n_docs: int):
    """bm25s's saved index in ``sub``, its CSC score matrix checked against ``n_docs``."""
    import bm25s
    try:
        bm = bm25s.BM25.load(sub, allow_pickle=False, show_progress=False)
    except (OSError, ValueError, KeyError, TypeError, EOFError, RecursionError) as exc:
        raise CorruptionError(sub, f"not a bm25s index ({type(exc).__name__}: {exc})"[:300]
                              ) from None
    problem = _matrix_problem(bm, n_docs)
    if problem:
        raise CorruptionError(sub, problem)
    return bm


def _matrix_problem(bm, n_docs: int) -> str | None:
    """What is wrong with a loaded bm25s index for ``n_docs`` documents, or None."""
    m = bm.scores if isinstance(bm.scores, dict) else {}
    data, indices, indptr = (np.asarray(m.get(k)) for k in ("data", "indices", "indptr"))
    vocab = bm.vocab_dict if isinstance(bm.vocab_dict, dict) else None
    if vocab is None or not all(isinstance(t, str) and isinstance(r, int) for t, r in
                                vocab.items()):
        return "vocabulary: expected {term: row}"
    if (data.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1 or data.dtype.kind != "f"
            or indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu"):
        return "score matrix: expected 1-D data (float), indices and indptr (integer)"
    n_terms = len(indptr) - 1
    if (n_terms < 0 or len(indices) != len(data) or indptr[0] != 0 or indptr[-1] != len(data)
            or (indptr[1:] < indptr[:-1]).any()):
        return "score matrix: indptr is not 0 .. len(data), non-decreasing"
    if len(indices) and (indices.min() < 0 or indices.max() >= n_docs):
        return f"score matrix: a document row outside [0, {n_docs})"
    if not np.isfinite(data).all():
        return "score matrix: a score that is not finite"
    # bm25s gives the empty term (our stand-in for a document without terms) a row past the
    # matrix; a query never holds it, so only the other rows must index the matrix.
    rows = [r for t, r in vocab.items() if t]
    if rows and (min(rows) < 0 or max(rows) >= n_terms):
        return f"vocabulary: a term row outside [0, {n_terms})"
    extra = bm.nonoccurrence_array
    if extra is not None and (np.shape(extra) != (n_terms,) or not np.isfinite(extra).all()):
        return f"non-occurrence scores: expected {n_terms} finite values"
    return None
