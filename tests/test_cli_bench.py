"""`gingham bench` builds a synthetic compressed index and reports per-stage profiles."""
import json

from gingham import cli


def test_bench_json(capsys):
    assert cli.main(["bench", "--docs", "60", "--queries", "3", "--dim", "32", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["index"]["n_docs"] == 60
    for name in ("plaid", "exact"):
        st = report[name]
        assert st["n_queries"] == 3
        assert set(st["stages_ms"]) == {"centroid", "candidate", "approx", "full", "topk"}
    assert report["exact"]["counts_mean"]["full"] == 60
    assert 0.0 <= report["recall_vs_exact_mode"] <= 1.0


def test_bench_text(capsys):
    assert cli.main(["bench", "--docs", "40", "--queries", "2", "--dim", "16"]) == 0
    out = capsys.readouterr().out
    assert "plaid" in out and "exact" in out and "ms per query" in out
