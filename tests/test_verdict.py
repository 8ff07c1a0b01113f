"""The one verdict vocabulary (bench.verdict): labels spelled once, each command's order kept."""

from __future__ import annotations

import json
from pathlib import Path

from bench import verdict as V

REPO = Path(__file__).resolve().parents[1]


def test_check_keeps_its_table_order():
    assert V.CHECK_ORDER == ("regression", "broken", "unreliable", "improvement", "same",
                             "no baseline", "skipped", "error", "baseline only", "current only")


def test_ab_keeps_its_order():
    assert V.AB_ORDER == ("broken", "regression", "unreliable", "improvement", "same", "error",
                          "skipped")


def test_both_commands_judge_and_fail_with_the_same_labels():
    for order in (V.CHECK_ORDER, V.AB_ORDER):
        assert set(V.JUDGED) <= set(order)
        assert set(V.FAILING) <= set(order)
    assert set(V.AB_ORDER) <= set(V.CHECK_ORDER)


def test_committed_ab_documents_count_verdicts_in_ab_order():
    """The `verdict_counts` of every committed ab.json lists the verdicts in AB_ORDER."""
    docs = sorted(REPO.glob("reports/**/ab.json"))
    assert docs
    for path in docs:
        counts = json.loads(path.read_text(encoding="utf-8")).get("verdict_counts")
        if counts is not None:
            assert tuple(counts) == V.AB_ORDER, path
