"""``streamproc dlq`` as text: the summary's lines, the ``--at`` positions and the replay lines."""

from __future__ import annotations

from typing import Any

from streamproc.ops.dlq import Selection, position, replay_line, summarise, summary_lines


def letter(reason: str, topic: str, offset: int, message: str = "bad") -> dict[str, Any]:
    return {"reason": reason, "source_topic": topic, "partition": 1, "offset": offset, "message": message,
            "original": "{}", "original_encoding": "utf-8", "rejected_at": "2026-01-01T00:00:00Z"}


def test_summary_lines_list_reasons_by_count_with_their_samples_then_topics() -> None:
    records = [letter("late_event", "purchases", 1), letter("bad_timestamp", "clickstream", 2, "x" * 150),
               letter("late_event", "clickstream", 3)]
    assert summary_lines(summarise(records, samples=1)) == [
        "3 dead-lettered records",
        "  late_event                  2",
        "      purchases[1]@1: bad",
        "  bad_timestamp               1",
        "      clickstream[1]@2: " + "x" * 100,
        "  from clickstream            2",
        "  from purchases              1",
    ]


def test_no_dead_letters_is_one_line() -> None:
    assert summary_lines(summarise([])) == ["0 dead-lettered records"]


def test_a_position_selects_the_record_that_came_from_it() -> None:
    chosen = Selection(positions=frozenset({position("purchases:1:3")}))
    assert [r["offset"] for r in (letter("late_event", "purchases", o) for o in (1, 3)) if chosen(r)] == [3]


def test_replay_lines_say_whether_anything_is_published() -> None:
    r = letter("unknown_currency", "purchases", 7)
    assert replay_line(r, dry_run=True) == "would replay purchases[1]@7 (unknown_currency)"
    assert replay_line(r, dry_run=False) == "replaying purchases[1]@7 (unknown_currency)"
