"""Every file of a residual and an fp32 index x every damage (truncate, flip a header byte,
flip a data byte, zero-fill, delete, swap with another segment's or codec's file), in both
modes (small files checksummed at open; every array large): each cell is detected (open or
verify raises an error naming the index) or harmless (same results, verify passes). The table
itself is in docs/hardening.md (tests/fuzz/damage_table.py prints it)."""
from collections import Counter

from fuzz.damage_table import DAMAGES, table


def test_every_cell_is_detected_or_harmless(tmp_path):
    cells = table(tmp_path)
    verdicts = Counter(c["verdict"] for c in cells)
    assert set(verdicts) <= {"detected", "harmless"}, [c for c in cells
                                                      if c["verdict"] == "UNDETECTED"]
    kinds = {c["kind"] for c in cells}
    assert kinds == {"catalog", "codec manifest", "segments manifest", "id map",
                     "codec array", "segment array"}
    assert {c["damage"] for c in cells} == set(DAMAGES)
    # a plain open of an index of small files catches every damage to its arrays by itself
    small = [c for c in cells if c["mode"] == "small" and c["kind"] != "catalog"
             and c["verdict"] == "detected"]
    assert all(c["open+search"] != "different results" for c in small)
    for c in cells:  # harmless cells only where the swapped file had the same bytes' meaning
        if c["verdict"] == "harmless":
            assert c["damage"] == "swap" or c["kind"] == "catalog", c
