"""``ShardedIndex``: N ordinary gingham Indexes behind the API of one Index.

Layout and routing: distributed/manifest.py. Every shard of a residual index shares one codec,
trained once by the first add on all its tokens (as one Index's first add does) or by the
parallel build on a sample drawn across the whole corpus, and installed in each shard on its
first add; so scores are comparable across shards, and search results (exact, and PLAID with
its candidate cuts taken over every shard together: distributed/plaid.py) are exactly those
of one Index holding the same documents with that codec.

Ties: each document carries its global insertion sequence number (metadata key
``gingham_seq``, hidden from the documents this class returns); merged results are ordered by
(score desc, sequence asc), which is one Index's rule (lower internal id = earlier added).

Writes: one writer at a time (a lock on the folder). An add allocates its sequence numbers in
the manifest (atomic replace), then commits each shard's part in one commit of that shard; a
kill between shard commits leaves whole per-shard parts, never a partial one, and every
committed document stays (rerun the add with upsert=True to finish it).
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..engine import kinds
from ..engine import validate as _validate
from ..engine.csr import token_index
from ..engine.index import MODES, Hit, Index
from ..engine.residual import train_codec
from ..storage import DuplicateIdError
from . import manifest as mf
from .backends import LocalBackend, RayBackend
from .merge import merge, tied_ids
from .plaid import phase1, survivors
from .shard import PhaseExpiredError

_CODEC_OPTIONS = ("nbits", "n_centroids", "seed", "kmeans_iters", "sample_per_centroid")


class ShardedHits(list):
    """A result list that says whether every shard answered (``allow_partial=True`` only)."""

    partial: bool = False
    missing_shards: tuple[int, ...] = ()


def _strip(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items() if k != mf.SEQ_KEY}


class ShardedIndex:
    """A sharded index folder; create with ``ShardedIndex.create``, open with ``.open``.

    backend: "local" (every shard opened in this process) or "ray" (one actor per shard;
    address: a Ray cluster, else the running or a new local session; threads: OpenMP threads
    per actor; timeout / retries / max_restarts: fault handling, distributed/backends.py)."""

    def __init__(self, root: Path, manifest: dict, backend: Any, lock_timeout: float):
        self.root = root
        self._manifest = manifest
        self._backend = backend
        self._lock_timeout = lock_timeout
        self.n_shards: int = int(manifest["n_shards"])
        self.dim: int = int(manifest["dim"])
        self.storage: str = manifest["storage"]
        self.nbits = manifest["kind_settings"].get("nbits")

    # ---- construction --------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike, dim: int, *, n_shards: int,
               storage: str = "residual", nbits: int = 2, n_centroids: int | None = None,
               seed: int = 0, model: str | None = None, settings: dict | None = None,
               overwrite: bool = False, kmeans_iters: int = 10, sample_per_centroid: int = 32,
               lock_timeout: float = 10.0, **backend_options) -> "ShardedIndex":
        """Create an empty sharded index of n_shards shards at ``path`` (absent or empty, or
        an existing sharded index when overwrite=True). Index options as ``Index.create``;
        backend_options as ``ShardedIndex.open``."""
        n_shards = _validate.positive_int(n_shards, "n_shards")
        dim = _validate.positive_int(dim, "dim")
        options = {"nbits": nbits, "n_centroids": n_centroids, "seed": seed,
                   "kmeans_iters": kmeans_iters, "sample_per_centroid": sample_per_centroid}
        kind_settings = kinds.kind_class(storage).create_settings(dim, options)
        root = Path(path)
        if root.exists() and any(root.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{root} exists and is not empty; pass overwrite=True to "
                                      "replace a sharded index")
            if not mf.is_sharded(root):
                raise FileExistsError(f"{root} is not a sharded gingham index; overwrite=True "
                                      "only replaces one")
            shutil.rmtree(root)
        root.mkdir(parents=True, exist_ok=True)
        names = [mf.shard_name(s) for s in range(n_shards)]
        for name in names:
            Index.create(root / name, dim, storage=storage, model=model, settings=settings,
                         **options).close()
        manifest = {"gingham_sharded": mf.FORMAT, "routing": mf.ROUTING, "n_shards": n_shards,
                    "dim": dim, "storage": storage, "kind_settings": kind_settings,
                    "shards": names, "codec_sha256": None, "next_seq": 0}
        mf.write_manifest(root, manifest)  # last: a killed create leaves no sharded index
        return cls.open(root, lock_timeout=lock_timeout, **backend_options)

    @classmethod
    def open(cls, path: str | os.PathLike, *, backend: str = "local",
             address: str | None = None, threads: int | None = None, timeout: float = 30.0,
             retries: int = 1, max_restarts: int = 3, num_cpus: float | None = None,
             lock_timeout: float = 10.0) -> "ShardedIndex":
        """Open a sharded index; FileNotFoundError naming a missing shard folder."""
        root = Path(path)
        manifest = mf.read_manifest(root)
        paths = [root / name for name in manifest["shards"]]
        for s, p in enumerate(paths):
            if not (p / "catalog.sqlite").is_file():
                raise FileNotFoundError(f"shard {s} of {root} is missing: no gingham index at "
                                        f"{str(p)!r}")
        if backend == "local":
            shards = LocalBackend([str(p) for p in paths], threads)
        elif backend == "ray":
            shards = RayBackend([str(p) for p in paths], address=address,
                                threads=1 if threads is None else threads, num_cpus=num_cpus,
                                timeout=timeout, retries=retries, max_restarts=max_restarts)
        else:
            raise ValueError(f"backend must be 'local' or 'ray'; got {backend!r}")
        return cls(root, manifest, shards, lock_timeout)

    def close(self) -> None:
        """Close every shard (and stop the shard actors)."""
        self._backend.close()

    def __enter__(self) -> "ShardedIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def path(self) -> str:
        return str(self.root)

    def shard_of(self, ids: Sequence[str]) -> np.ndarray:
        """Shard number int64 of each id (stable hash, distributed/manifest.py)."""
        return mf.route(_validate.ids_list(ids), self.n_shards)

    def _by_shard(self, ids: list[str]) -> dict[int, np.ndarray]:
        where = mf.route(ids, self.n_shards)
        return {s: np.flatnonzero(where == s) for s in np.unique(where).tolist()}

    def _call(self, method: str, args: dict[int, tuple], allow_partial: bool = False) -> dict:
        return self._backend.call(method, args, allow_partial=allow_partial,
                                  write=method in ("add", "delete", "merge_segments"))

    def _all(self, method: str, *args) -> dict:
        return self._call(method, {s: args for s in range(self.n_shards)})

    def codec(self) -> dict[str, np.ndarray] | None:
        """The shared codec arrays (None before the first add of a residual index)."""
        sha = self._manifest.get("codec_sha256")
        return None if sha is None else mf.read_codec(self.root, sha)

    # ---- writes --------------------------------------------------------------------------

    def add(self, ids: Sequence[str], embeddings: Sequence[Any],
            metadata: Sequence[Any] | None = None, texts: Sequence[Any] | None = None, *,
            upsert: bool = False) -> None:
        """Add documents, each to its shard, as ``Index.add`` (same arguments and checks, all
        made before anything is written). The first add of a residual index trains the
        shared codec on all its tokens."""
        ids, tokens, offsets, metadata, texts = _validate.add_batch(
            ids, embeddings, metadata, texts, self.dim)
        if metadata is not None and any(m and mf.SEQ_KEY in m for m in metadata):
            raise ValueError(f"metadata key {mf.SEQ_KEY!r} is reserved by the sharded index")
        with mf.RootLock(self.root, self._lock_timeout):
            self._manifest = mf.read_manifest(self.root)
            self.commit_parts(ids, tokens, offsets, metadata, texts, upsert=upsert)

    def commit_parts(self, ids: list[str], tokens: np.ndarray, offsets: np.ndarray,
                     metadata: list | None, texts: list | None, *, upsert: bool,
                     codec: dict | None = None, seqs: np.ndarray | None = None) -> None:
        """Checked documents (CSR) -> one commit per shard touched; caller holds the lock.
        codec: the shared codec to record when none is yet (else trained on ``tokens``);
        seqs: sequence numbers already allocated (else taken from the manifest)."""
        parts = self._by_shard(ids)
        if not upsert:
            found = self._call("existing", {s: ([ids[i] for i in rows],)
                                            for s, rows in parts.items()})
            dup = [i for s in sorted(found) for i in found[s]]
            if dup:
                raise DuplicateIdError(f"{len(dup)} id(s) already in the index, e.g. "
                                       f"{dup[:5]!r}; pass upsert=True to replace")
        manifest = dict(self._manifest)
        if self.storage == "residual" and manifest["codec_sha256"] is None:
            if codec is None:
                codec = train_codec(tokens, manifest["kind_settings"], {})
            manifest["codec_sha256"] = mf.write_codec(self.root, codec)
        if seqs is None:
            seqs = manifest["next_seq"] + np.arange(len(ids), dtype=np.int64)
        manifest["next_seq"] = max(int(manifest["next_seq"]), int(seqs.max()) + 1)
        mf.write_manifest(self.root, manifest)  # the sequence numbers are taken before use
        self._manifest = manifest
        args = {}
        for s, rows in parts.items():
            token_rows, sub_offsets = token_index(offsets, rows)
            args[s] = ([ids[r] for r in rows], np.ascontiguousarray(tokens[token_rows]),
                       sub_offsets, None if metadata is None else [metadata[r] for r in rows],
                       None if texts is None else [texts[r] for r in rows],
                       seqs[rows].tolist(), upsert, manifest["codec_sha256"])
        self._call("add", args)

    def delete(self, ids: Sequence[str], *, missing: str = "raise") -> int:
        """Tombstone documents, each in its shard -> number deleted. missing: "raise"
        (KeyError naming unknown ids, nothing deleted) or "ignore"."""
        ids = _validate.ids_list(_validate.sequence(ids, "ids", "strings"))
        if missing not in ("raise", "ignore"):
            raise ValueError(f"missing must be 'raise' or 'ignore'; got {missing!r}")
        if not ids:
            return 0
        parts = self._by_shard(ids)
        with mf.RootLock(self.root, self._lock_timeout):
            if missing == "raise":
                found = self._call("existing", {s: ([ids[i] for i in r],)
                                                for s, r in parts.items()})
                present = {i for f in found.values() for i in f}
                unknown = [i for i in ids if i not in present]
                if unknown:
                    raise KeyError(f"{len(unknown)} id(s) not in the index, e.g. "
                                   f"{unknown[:5]!r}; nothing deleted")
            done = self._call("delete", {s: ([ids[i] for i in r], "ignore")
                                         for s, r in parts.items()})
        return int(sum(done.values()))

    def compact(self, *, retrain: bool = False, max_segments: int | None = None) -> None:
        """Compact every shard (codes copied unchanged: scores do not change). max_segments:
        as ``Index.compact``, per shard: each merges its smallest segments until it holds at
        most that many. retrain=True is refused: the shards share one codec."""
        if retrain:
            raise ValueError("compact(retrain=True) is not supported on a sharded index: its "
                             "shards share one codec")
        if max_segments is not None:
            max_segments = _validate.positive_int(max_segments, "max_segments")
        with mf.RootLock(self.root, self._lock_timeout):
            if max_segments is None:
                self._all_compact()
            else:
                self._call("merge_segments", {s: (max_segments,) for s in range(self.n_shards)})

    def _all_compact(self) -> None:
        for s in range(self.n_shards):
            path = self.root / self._manifest["shards"][s]
            with Index.open(path) as idx:
                idx.compact()
        self._all("refresh")

    # ---- searching -----------------------------------------------------------------------

    def search(self, queries: Any, k: int = 10, *, mode: str = "plaid", subset: Any = None,
               where: str | None = None, params: Any = None, ncells: int | None = None,
               centroid_score_threshold: float | None = None, ndocs: int | None = None,
               return_stats: bool = False, with_documents: bool = False,
               allow_partial: bool = False, also_score: Any = None) -> Any:
        """``Index.search`` over every shard at once, per-shard top-k merged exactly (score
        desc, insertion order asc); PLAID (residual storage) takes its candidate cuts over
        every shard together (distributed/plaid.py: two rounds of calls), so every mode returns
        one Index's list. subset ids go only to their shards. allow_partial=True
        returns what the reachable shards found as ShardedHits lists whose ``partial`` says
        if a shard was left out (else ShardUnavailableError). also_score as ``Index.search``
        (each id scored in its shard, in one more round of calls)."""
        k = _validate.positive_int(k, "k")
        ndocs = _validate.search_params(k, mode, MODES, ncells, centroid_score_threshold,
                                        ndocs)["ndocs"]
        stacked, q_offsets, single = _validate.query_batch(queries, self.dim)
        if params is not None and where is None:
            raise ValueError("params is given without where")
        also_ids = (None if also_score is None else _validate.ids_per_query(
            also_score, len(q_offsets) - 1, single, "also_score"))
        t0 = time.perf_counter()
        qs = [stacked[q_offsets[i]:q_offsets[i + 1]] for i in range(len(q_offsets) - 1)]
        options = {"mode": mode, "where": where, "params": params, "ncells": ncells,
                   "centroid_score_threshold": centroid_score_threshold, "ndocs": ndocs,
                   "return_stats": return_stats, "with_documents": with_documents}
        if subset is None:
            args = {s: (qs, k, options) for s in range(self.n_shards)}
        else:
            subset = _validate.sequence(subset, "subset")
            chosen = [i for i in subset if isinstance(i, str)]
            args = {s: (qs, k, {**options, "subset": [chosen[r] for r in rows]})
                    for s, rows in (self._by_shard(chosen) if chosen else {}).items()}
        # One shard's own PLAID cuts are the global ones: one call, as in exact mode.
        staged = mode == "plaid" and self.storage == "residual" and len(args) > 1
        if staged:
            lists, stats, missing = self._plaid(args, k, ndocs, with_documents, allow_partial)
        else:
            answers = self._call("search", args, allow_partial=allow_partial) if args else {}
            stats = {s: a[1] for s, a in answers.items()} if return_stats else {}
            lists = {s: (a[0] if return_stats else a) for s, a in answers.items()}
            missing = tuple(self._backend.missing()) if allow_partial else ()
        merged = self._merge_queries(lists, len(qs), k, with_documents)
        out: list = []
        for entries in merged:
            hits = ([{"id": e[0], "metadata": _strip(e[2]), "text": e[3], "score": float(e[1]),
                      "rank": r} for r, e in enumerate(entries)] if with_documents else
                    [Hit(e[0], float(e[1]), r) for r, e in enumerate(entries)])
            if allow_partial:
                hits = ShardedHits(hits)
                hits.partial, hits.missing_shards = bool(missing), missing
            out.append(hits)
        result: list = [out[0] if single else out]
        if also_ids is not None:
            scored = self._score_lists(qs, also_ids)
            result.append(scored[0] if single else scored)
        if return_stats:
            effective = mode if self.storage == "residual" else "exact"
            extra = stats if staged else {"shards": {s: stats[s] for s in sorted(stats)}}
            result.append({"mode": effective, "storage": self.storage, "k": k,
                           "n_queries": len(qs), "n_shards": self.n_shards,
                           "missing_shards": list(missing),
                           "wall_ms": 1000.0 * (time.perf_counter() - t0), **extra})
        return result[0] if len(result) == 1 else tuple(result)

    def _score_lists(self, queries: list, ids_per_query: list[list[str]]) -> list[dict]:
        """{id: exact MaxSim} per query of its live ids, in its ids' order, each id scored by
        its shard (one call per shard holding any)."""
        flat = [i for ids in ids_per_query for i in ids]
        query_of = np.repeat(np.arange(len(queries)), [len(ids) for ids in ids_per_query])
        args = {}
        for s, rows in (self._by_shard(flat) if flat else {}).items():
            per_query: list[list[str]] = [[] for _ in queries]
            for r in rows.tolist():
                per_query[query_of[r]].append(flat[r])
            args[s] = (queries, per_query)
        got = self._call("score_lists", args) if args else {}
        out = []
        for q, ids in enumerate(ids_per_query):
            found: dict = {}
            for answer in got.values():
                found.update(answer[q])
            out.append({i: found[i] for i in ids if i in found})
        return out

    def _plaid(self, args: dict[int, tuple], k: int, ndocs: int, with_documents: bool,
               allow_partial: bool) -> tuple[dict, dict, tuple]:
        """PLAID with its cuts over every shard (distributed/plaid.py) -> (per-shard top-k
        lists, stats, shards left out). A shard restarted between phases loses its phase 1:
        the search then starts again, once."""
        for attempt in (0, 1):
            token = uuid.uuid4().hex
            try:
                return self._plaid_once(token, args, k, ndocs, with_documents, allow_partial)
            except PhaseExpiredError:
                # the other shards still hold this attempt's phase 1: let it go before retrying
                self._call("plaid_release", {s: (token,) for s in args}, allow_partial=True)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _plaid_once(self, token: str, args: dict[int, tuple], k: int, ndocs: int,
                    with_documents: bool, allow_partial: bool) -> tuple[dict, dict, tuple]:
        missing: set[int] = set()
        shard_ms: dict[int, float] = {}
        rounds = []

        def call(method: str, per_shard: dict) -> dict:
            clock = time.perf_counter()
            got = self._call(method, per_shard, allow_partial=allow_partial)
            rounds.append((method, 1000.0 * (time.perf_counter() - clock)))
            missing.update(self._backend.missing() if allow_partial else ())
            for s, answer in got.items():
                shard_ms[s] = shard_ms.get(s, 0.0) + answer["wall_ms"]
            return got

        shards = {}
        for s, (qs, _, options) in args.items():
            filters = {f: options[f] for f in ("subset", "where", "params", "ncells",
                                               "centroid_score_threshold", "ndocs")
                       if options.get(f) is not None}
            shards[s] = (qs, filters)
        n_queries = len(next(iter(args.values()))[0]) if args else 0
        first = phase1(call, shards, token, k) if shards else {}

        chosen = {s: [] for s in first}
        for q in range(n_queries):
            for s, pos in survivors(first, q, k, ndocs).items():
                chosen[s].append(pos)
        done = call("plaid_finish", {s: (token, chosen[s], k, with_documents)
                                     for s in first}) if first else {}
        lists = {s: a["lists"] for s, a in done.items()}
        stats = {"round_trips": [{"call": m, "ms": ms} for m, ms in rounds],
                 "shards": {s: {"wall_ms": shard_ms[s]} for s in sorted(shard_ms)},
                 "per_query": [
            {"ncells": int(next(iter(first.values()))["ncells"][q]) if first else 0,
             "n_candidates": int(sum(a["n_candidates"][q] for a in first.values())),
             "n_full": int(sum(len(chosen[s][q]) for s in first))}
            for q in range(n_queries)]}
        return lists, stats, tuple(sorted(missing))

    def _merge_queries(self, lists: dict[int, list], n_queries: int, k: int | None,
                       with_documents: bool) -> list[list]:
        per_query = [{s: lists[s][q] for s in lists} for q in range(n_queries)]
        seqs: dict[str, int] = {}
        if with_documents:
            seqs = {e[0]: int(e[2][mf.SEQ_KEY]) for ls in lists.values() for q in ls for e in q}
        else:
            need: dict[int, set] = {}
            for lq in per_query:
                for s, ids in tied_ids(lq, k).items():
                    need.setdefault(s, set()).update(ids)
            if need:
                asked = {s: sorted(v) for s, v in need.items()}
                got = self._call("seqs", {s: (v,) for s, v in asked.items()})
                seqs = {i: q for s in asked for i, q in zip(asked[s], got[s])}
        return [merge(lq, k, seqs.__getitem__) for lq in per_query]

    def rerank(self, query: Any, ids: Sequence[str], k: int | None = None, *,
               missing: str = "raise") -> list[Hit]:
        """Exact MaxSim of one query against ``ids`` (each scored in its shard) -> list[Hit],
        best first (ties: earlier added); missing as ``Index.rerank`` ("raise": KeyError if an
        id is not in the index; "ignore": such ids left out)."""
        q = _validate.float_matrix(query, "query", self.dim)
        ids = _validate.ids_list(ids)
        if k is not None:
            k = _validate.positive_int(k, "k")
        if not ids:
            return []
        parts = self._by_shard(ids)
        got = self._call("rerank", {s: (q, [ids[i] for i in r], missing)
                                    for s, r in parts.items()})
        merged = self._merge_queries({s: [v] for s, v in got.items()}, 1, k, False)[0]
        return [Hit(e[0], float(e[1]), r) for r, e in enumerate(merged)]

    # ---- documents -----------------------------------------------------------------------

    def documents(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """{"id", "metadata", "text"} of each id in input order; KeyError naming unknown ids."""
        ids = _validate.ids_list(ids)
        parts = self._by_shard(ids)
        got = self._call("documents", {s: ([ids[i] for i in r],) for s, r in parts.items()})
        out: list = [None] * len(ids)
        for s, rows in parts.items():
            for r, doc in zip(rows.tolist(), got[s]):
                out[r] = {**doc, "metadata": _strip(doc["metadata"])}
        return out

    def get(self, id: str) -> dict[str, Any]:
        if not isinstance(id, str):
            raise TypeError(f"id must be a string; got {type(id).__name__}")
        return self.documents([id])[0]

    def tokens(self, id: str) -> np.ndarray:
        """Stored token vectors (n_tokens, dim) float32 of one document."""
        if not isinstance(id, str):
            raise TypeError(f"id must be a string; got {type(id).__name__}")
        s = int(mf.route([id], self.n_shards)[0])
        return self._call("tokens", {s: (id,)})[s]

    def ids(self) -> list[str]:
        """Ids of every live document in insertion order."""
        per = self._all("ids")
        seqs = self._call("seqs", {s: (v,) for s, v in per.items() if v})
        pairs = [(q, i) for s in seqs for i, q in zip(per[s], seqs[s])]
        return [i for _, i in sorted(pairs)]

    def __len__(self) -> int:
        return int(sum(self._all("size").values()))

    def refresh(self) -> None:
        """See commits made by other writers."""
        self._manifest = mf.read_manifest(self.root)
        self._all("refresh")

    @property
    def settings(self) -> dict[str, Any]:
        first = self._call("settings", {0: ()})[0]  # every shard records the same ones
        return {**first, "storage": self.storage, "dim": self.dim, "n_shards": self.n_shards,
                **self._manifest["kind_settings"], "nbits": first.get("nbits")}

    def stats(self) -> dict[str, Any]:
        """Index.stats summed over the shards (n_docs, n_tokens, n_tokens_stored, n_deleted,
        n_segments, bytes_on_disk, commit: every commit of a shard increases it, so it names
        the state of the folder) with the shared fields, n_shards, and each shard's stats."""
        per = self._all("stats")
        total = {f: sum(p[f] for p in per.values()) for f in
                 ("n_docs", "n_tokens", "n_tokens_stored", "n_deleted", "n_segments",
                  "bytes_on_disk", "commit")}
        stored = total["n_tokens_stored"]
        data = sum(p["data_bytes_per_token"] * p["n_tokens_stored"] for p in per.values())
        return {**total, "storage": self.storage, "dim": self.dim, "nbits": per[0]["nbits"],
                "n_centroids": max(p["n_centroids"] for p in per.values()),
                "bytes_per_token": total["bytes_on_disk"] / stored if stored else 0.0,
                "data_bytes_per_token": data / stored if stored else 0.0,
                "n_shards": self.n_shards, "backend": self.backend,
                "shards": [per[s] for s in range(self.n_shards)]}

    def verify(self) -> dict[str, Any]:
        """Verify every shard (Index.verify), that each uses the shared codec and holds only
        the ids routed to it. Raises (CorruptionError / ValueError naming the shard) or
        returns {"n_shards", "n_docs", "shards": [each shard's summary]}."""
        from .shard import codec_digest
        manifest = mf.read_manifest(self.root)
        shared = codec_digest(self.codec())
        per = self._all("verify")
        ids = self._all("ids")
        for s in range(self.n_shards):
            digest = per[s]["codec_digest"]
            if digest is not None and digest != shared:
                raise ValueError(f"shard {s} ({manifest['shards'][s]}) does not use the "
                                 "shared codec")
            wrong = np.flatnonzero(mf.route(ids[s], self.n_shards) != s) if ids[s] else []
            if len(wrong):
                raise ValueError(f"shard {s} holds {len(wrong)} id(s) routed elsewhere, e.g. "
                                 f"{ids[s][wrong[0]]!r}")
        return {"n_shards": self.n_shards, "n_docs": sum(len(v) for v in ids.values()),
                "shards": [per[s] for s in range(self.n_shards)]}
