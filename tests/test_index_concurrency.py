"""Searching threads while one thread writes to the same Index: every result is the result of
some commit (concurrency at the Index level)."""
import threading

import gingham
from plaid_data import clustered_docs, csr, queries_from


def expected_results(docs, live_ids, queries, k):
    """Exact top-k ids per query over the documents live_ids (insertion order)."""
    tokens, offsets = csr([docs[int(i[1:])] for i in live_ids])
    _, rows = gingham.exact_search(queries, tokens, offsets, k=k)
    return tuple(tuple(live_ids[r] for r in row) for row in rows)


def test_readers_see_only_committed_states(tmp_path):
    docs = clustered_docs(240, 16, 12, seed=51, max_len=12)
    queries = queries_from(docs, 4, 6, seed=52)
    k = 8
    idx = gingham.Index.create(tmp_path / "c", dim=16, storage="fp32")
    idx.add([f"d{i}" for i in range(40)], docs[:40])
    # the writer's script and the live documents after each of its commits
    ops, live = [], [f"d{i}" for i in range(40)]
    states = {expected_results(docs, live, queries, k)}
    for step, a in enumerate(range(40, 240, 20)):
        new = [f"d{i}" for i in range(a, a + 20)]
        ops.append(("add", new))
        live = live + new
        states.add(expected_results(docs, live, queries, k))
        gone = live[step * 3: step * 3 + 6]
        ops.append(("delete", gone))
        live = [x for x in live if x not in gone]
        states.add(expected_results(docs, live, queries, k))
        if step == 5:
            ops.append(("compact", None))
    seen, errors, stop = [], [], threading.Event()

    def reader():
        try:
            while not stop.is_set():
                got = idx.search(queries, k=k)
                seen.append(tuple(tuple(h.id for h in hits) for hits in got))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for op, arg in ops:
            if op == "add":
                idx.add(arg, [docs[int(i[1:])] for i in arg])
            elif op == "delete":
                idx.delete(arg)
            else:
                idx.compact()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert len(seen) > 0
    bad = [s for s in seen if s not in states]
    assert not bad, f"{len(bad)} of {len(seen)} results match no commit"
    assert tuple(tuple(h.id for h in hits) for hits in idx.search(queries, k=k)) == \
        expected_results(docs, live, queries, k)
    assert idx.ids() == live
