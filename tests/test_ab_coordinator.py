"""The A/B coordinator and the `ab` command on scripted fake sides (no TensorFlow, no timing)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench import cli
from bench.analysis import ab_stats
from bench.errors import UserError
from bench.measure.ab import command as ab
from bench.measure.ab import coordinator as coord
from bench.measure.ab.sides import CaseFailed
from bench.measure.run.command import selected_cases
from bench.verdict import AB_ORDER

CASES = selected_cases("smoke", impl=["basic_rnn", "basic_lstm", "keras_gru"])


class Machine:
    """A shared fake machine: a speed factor that drifts with every block, plus noise."""

    def __init__(self, total_visits: int, drift=(1.0, 1.6), sd=0.03, seed=0):
        self.total, self.drift, self.sd = total_visits, drift, sd
        self.rng = np.random.default_rng(seed)
        self.visits = 0
        self.log: list[tuple[str, str]] = []

    def speed(self) -> float:
        lo, hi = self.drift
        return lo + (hi - lo) * min(self.visits / max(self.total - 1, 1), 1.0)

    def block(self, side: str, case_id: str, base: float, rounds: int) -> list[float]:
        self.log.append((side, case_id))
        level = base * self.speed()
        self.visits += 1
        return [level * math.exp(x) for x in self.rng.normal(0, self.sd, rounds)]


def base_time(case_id: str) -> float:
    return 1e-3 * (1 + (sum(map(ord, case_id)) % 7))


class FakeSide:
    """A side with the WorkerSide interface; `slow` maps case-id substrings to a factor."""

    def __init__(self, name, machine, *, slow=None, statuses=None, fail_at=None, raise_at=None):
        self.name, self.machine = name, machine
        self.slow, self.statuses = slow or {}, statuses or {}
        self.fail_at, self.raise_at = fail_at, raise_at  # (case_id, block index) triggers
        self.blocks: dict[str, int] = {}
        self.closed = False
        self.setup_calls = []

    def setup(self, cases, threads, equivalence, progress=None):
        self.setup_calls.append((len(cases), threads, equivalence))
        rows = {}
        for params in cases:
            cid = coord.Case.from_params(params).id
            status, reason = self.statuses.get(cid, ("ok", None))
            rows[cid] = {"status": status, "reason": reason, "compile_s": 0.5,
                         "code_version": f"v-{self.name}"}
        return {"type": "ready", "env": {"tensorflow": f"tf-{self.name}", "python": "3.11"},
                "cases": rows}

    def measure(self, case_id, rounds, warmup):
        k = self.blocks.get(case_id, 0)
        self.blocks[case_id] = k + 1
        if self.fail_at == (case_id, k):
            raise CaseFailed("ValueError: boom")
        if self.raise_at == (case_id, k):
            raise self.raise_at_exc
        factor = next((f for key, f in self.slow.items() if key in case_id), 1.0)
        return self.machine.block(self.name, case_id, base_time(case_id) * factor, rounds)

    def close(self):
        self.closed = True


def run_interleaved(cases, blocks=20, rounds=5, **side_b):
    machine = Machine(total_visits=len(cases) * blocks * 2)
    sides = [FakeSide("A", machine), FakeSide("B", machine, **side_b)]
    state = coord.ABState(cases=cases)
    coord.setup_sides([sides], state, threads=1, equivalence=True)
    coord.measure_sides([sides], state, coord.Schedule(blocks, rounds, 1))
    return state, machine, sides


# schedule --------------------------------------------------------------------------------------
def test_abba_order_and_one_side_at_a_time():
    state, machine, _ = run_interleaved(CASES[:3], blocks=4)
    for case in CASES[:3]:
        order = "".join(side for side, cid in machine.log if cid == case.id)
        assert order == "ABBAABBA"
    # passes visit every case before the next pass starts
    first_pass = machine.log[:6]
    assert [cid for _, cid in first_pass] == [c.id for c in CASES[:3] for _ in "AB"]
    assert all(len(state.samples[c.id]["A"]) == 4 for c in CASES[:3])
    assert all(len(b) == 5 for b in state.samples[CASES[0].id]["B"])


# The fake machine has no per-process offsets, so its passes may be labelled as two worker
# generations taking turns (the verdicts judge nothing with one).
GENERATIONS = [k % 2 for k in range(20)]


# drift -----------------------------------------------------------------------------------------
def test_strong_drift_cancels_when_interleaved_but_not_in_sequential_runs():
    """Speed ramps 1.0 -> 1.6 over the run: ABBA says `same`; two sequential runs say slower."""
    cases = CASES[:10]
    state, _, _ = run_interleaved(cases, blocks=20)
    frame = ab_stats.verdict_frame(state.stats_input(), generations=GENERATIONS)
    judged = frame[frame["case"] != ab_stats.GEOMEAN_LABEL]
    assert set(judged["verdict"]) == {"same"}
    assert not ab_stats.failed(frame)

    # the same machine, measured the old way: run A's blocks first, then B's, identical code
    machine = Machine(total_visits=len(cases) * 20 * 2)
    side_a, side_b = FakeSide("A", machine), FakeSide("B", machine)
    seq = {}
    for side in (side_a, side_b):
        for _ in range(20):
            for case in cases:
                seq.setdefault(case.id, {"A": [], "B": []})[side.name].append(
                    side.measure(case.id, 5, 1))
    inputs = {cid: {"a": s["A"], "b": s["B"], "a_status": "ok", "b_status": "ok"}
              for cid, s in seq.items()}
    sequential = ab_stats.verdict_frame(inputs, generations=GENERATIONS)
    seq_cases = sequential[sequential["case"] != ab_stats.GEOMEAN_LABEL]
    assert (seq_cases["verdict"] == "regression").sum() >= 8
    assert ab_stats.failed(sequential)


def test_known_slowdown_flags_exactly_those_cases():
    state, _, _ = run_interleaved(CASES, blocks=20, slow={"basic_lstm/": 1.25})
    frame = ab_stats.verdict_frame(state.stats_input(),
                                   generations=GENERATIONS).set_index("case")
    frame = frame.drop(ab_stats.GEOMEAN_LABEL)
    flagged = set(frame.index[frame["verdict"] == "regression"])
    assert flagged == {c.id for c in CASES if c.impl == "basic_lstm"}
    assert set(frame["verdict"]) == {"regression", "same"}
    slow = frame.loc[sorted(flagged)]
    assert ((slow["ci_low"] < 1.25) & (slow["ci_high"] > 1.25)).mean() >= 0.8


# statuses --------------------------------------------------------------------------------------
def test_case_failing_on_b_during_measure_is_broken_and_stops_being_measured():
    victim = CASES[1].id
    state, machine, _ = run_interleaved(CASES[:3], blocks=6, fail_at=(victim, 2))
    assert state.status(victim, "B") == ("error", "ValueError: boom")
    assert sum(cid == victim for _, cid in machine.log) == 5  # A0 B0 B1 A1 A2 then B2 failed
    frame = ab_stats.verdict_frame(state.stats_input()).set_index("case")
    assert frame.loc[victim, "verdict"] == "broken"
    assert ab_stats.failed(frame.reset_index())


def test_ok_on_one_side_and_skipped_on_the_other_is_an_input_error():
    machine = Machine(10)
    victim = CASES[0].id
    sides = [FakeSide("A", machine),
             FakeSide("B", machine, statuses={victim: ("skipped", "needs a GPU")})]
    with pytest.raises(UserError, match=f"case {victim} is skipped on side B only"):
        coord.setup_sides([sides], coord.ABState(cases=CASES[:2]), threads=None, equivalence=True)


def test_case_unknown_to_one_side_is_an_input_error():
    victim = CASES[0].id
    sides = [FakeSide("A", Machine(10), statuses={victim: ("unknown", "unknown impl 'x'")}),
             FakeSide("B", Machine(10))]
    with pytest.raises(UserError, match="side A does not know case"):
        coord.setup_sides([sides], coord.ABState(cases=CASES[:2]), threads=None, equivalence=True)


def test_errors_on_a_only_or_both_do_not_fail_the_run():
    a_only, both = CASES[0].id, CASES[1].id
    state, _, _ = run_interleaved(CASES[:3], blocks=4)
    state.ready["A"]["cases"][a_only].update(status="error", reason="E-a")
    state.ready["A"]["cases"][both].update(status="error", reason="E")
    state.ready["B"]["cases"][both].update(status="error", reason="E")
    frame = ab_stats.verdict_frame(state.stats_input()).set_index("case")
    assert frame.loc[a_only, "verdict"] == "unreliable"
    assert frame.loc[both, "verdict"] == "error"
    assert not ab_stats.failed(frame.reset_index())


# the command with fake sides ---------------------------------------------------------------------
def _args(*argv):
    return cli.build_parser().parse_args(["ab", *argv])


def _factory(**b_kwargs):
    made = {}
    n = len(CASES)

    def make(spec, log_path):
        machine = made.setdefault("machine", Machine(total_visits=n * 8 * 2))
        side = FakeSide(spec.name, machine, **(b_kwargs if spec.name == "B" else {}))
        made.setdefault(f"all-{spec.name}", []).append(side)
        made[spec.name] = side  # the latest generation's
        return side
    return make, made


def _run_main(tmp_path, *extra, **b_kwargs):
    make, made = _factory(**b_kwargs)
    out = tmp_path / "run"
    args = _args("--impl", "basic_rnn,basic_lstm,keras_gru", "--blocks", "8", "--rounds", "3",
                 "--out", str(out), *extra)
    return ab.main(args, side_factory=make), out, made


def test_command_writes_the_run_folder_and_passes_on_same_code(tmp_path, capsys):
    code, out, made = _run_main(tmp_path, "--b-env", "X=1")
    assert code == 0
    assert made["A"].closed
    assert made["B"].closed
    # two worker generations per side; equivalence is checked once per job, by B's first
    assert [s.setup_calls for s in made["all-A"]] == [[(len(CASES), None, False)],
                                                      [(len(CASES), None, False)]]
    assert [s.setup_calls for s in made["all-B"]] == [[(len(CASES), None, True)],
                                                      [(len(CASES), None, False)]]
    assert all(s.closed for s in made["all-A"] + made["all-B"])
    assert sorted(p.name for p in out.iterdir()) == ["ab.csv", "ab.json", "figures",
                                                     "report.html", "report.md"]
    assert (out / "figures" / "ab_ratios.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((out / "ab.json").read_text())
    assert doc["kind"] == "rnnbench-ab"
    assert doc["schema_version"] == ab.SCHEMA_VERSION
    assert doc["status"] == "complete"
    assert doc["settings"]["blocks"] == 8
    assert doc["command"].startswith("rnnbench ab --b-env X=1 --preset smoke --impl ")
    assert "--blocks 8 --generations 2 --rounds 3 --warmup 0 --threshold 0.1" in doc["command"]
    assert doc["command"].endswith("--target-mde 0.07 --out " + str(out))
    assert doc["settings"]["target_mde"] == 0.07
    assert [(w["side"], w["generation"]) for w in doc["setup"]] == [
        ("A", 1), ("B", 1), ("A", 2), ("B", 2)]
    assert all(w["wall"] >= 0 for w in doc["setup"])
    assert first_stop(doc).endswith("after 8 pairs")
    assert doc["pass_generation"] == [0, 1, 0, 1, 0, 1, 0, 1]  # generations take turns
    assert doc["differences"]["env:X"] == [None, "1"]
    assert doc["differences"]["tensorflow"] == ["tf-A", "tf-B"]
    first = doc["cases"][0]
    assert len(first["a"]["blocks"]) == 8
    assert len(first["b"]["blocks"][0]) == 3
    assert first["a"]["code_version"] == "v-A"
    assert first["verdict"]["verdict"] in AB_ORDER
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0] == "compared (A → B):"  # what differs between the sides comes first
    assert "  env:X: None → 1" in printed[1:4]
    assert "  tensorflow: tf-A → tf-B" in printed[1:4]
    assert not any(line.startswith("| ") for line in printed)  # the full table: report.md
    assert printed[-1].startswith("PASS")
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page
    assert "tf-A" in page
    report = (out / "report.md").read_text()
    assert "**env:X**" in report
    assert "tf-A" in report


def test_command_exits_1_on_a_regression(tmp_path, capsys):
    code, out, _ = _run_main(tmp_path, slow={"basic_lstm/": 1.5})
    assert code == 1
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].startswith("FAIL")
    slow = [c.id for c in CASES if c.impl == "basic_lstm"]
    head = printed.index(f"regression ({len(slow)}):")
    assert [line.split()[0] for line in printed[head + 1:head + 1 + len(slow)]] == [
        r["case"] for r in csv_rows(out / "ab.csv") if r["verdict"] == "regression"]
    assert any(line.startswith("the rest (") for line in printed[head:])
    assert any(line.startswith("geometric mean B/A ") for line in printed)
    rows = list(csv_rows(out / "ab.csv"))
    flagged = {r["case"] for r in rows if r["verdict"] == "regression"}
    assert flagged == {c.id for c in CASES if c.impl == "basic_lstm"}


def csv_rows(path):
    import csv

    with open(path, newline="") as fh:
        yield from csv.DictReader(fh)


def test_command_exits_1_when_a_case_breaks_on_b(tmp_path):
    code, out, _ = _run_main(tmp_path, fail_at=(CASES[0].id, 3))
    assert code == 1
    doc = json.loads((out / "ab.json").read_text())
    row = next(c for c in doc["cases"] if c["id"] == CASES[0].id)
    assert row["b"]["status"] == "error"
    assert row["verdict"]["verdict"] == "broken"


def test_interrupt_keeps_what_was_measured_as_partial(tmp_path, capsys):
    make, made = _factory()

    def interrupting(spec, log_path):
        side = make(spec, log_path)
        if spec.name == "B":
            side.raise_at, side.raise_at_exc = (CASES[2].id, 3), KeyboardInterrupt()
        return side
    out = tmp_path / "run"
    args = _args("--impl", "basic_rnn,basic_lstm,keras_gru", "--blocks", "8", "--out", str(out))
    assert ab.main(args, side_factory=interrupting) == 130
    doc = json.loads((out / "ab.json").read_text())
    assert doc["status"] == "partial"
    assert doc["passes_done"] == 6  # the first B worker's 4th block is in pass 6
    assert len(doc["cases"][0]["a"]["blocks"]) == 7
    assert made["A"].closed
    assert made["B"].closed
    assert "interrupted" in capsys.readouterr().err


def test_side_dying_mid_run_is_one_line_exit_2_with_the_folder_marked_failed(tmp_path):
    make, made = _factory()
    died = UserError(f"side B: worker exited with code -9 during measure of {CASES[1].id}")

    def dying(spec, log_path):
        side = make(spec, log_path)
        if spec.name == "B":
            side.raise_at, side.raise_at_exc = (CASES[1].id, 2), died
        return side
    out = tmp_path / "run"
    args = _args("--impl", "basic_rnn,basic_lstm,keras_gru", "--blocks", "8", "--out", str(out))
    with pytest.raises(UserError, match="side B: worker exited with code -9") as info:
        ab.main(args, side_factory=dying)
    assert "\n" not in str(info.value)
    doc = json.loads((out / "ab.json").read_text())
    assert doc["status"] == "failed"
    assert "code -9" in doc["error"]
    assert made["B"].closed


def test_a_failing_setup_closes_the_other_side_without_waiting_for_it():
    import threading

    release = threading.Event()

    class Slow(FakeSide):
        def setup(self, *args, **kwargs):
            release.wait(30)  # a long setup: only close() ends it
            return super().setup(*args, **kwargs)

        def close(self):
            super().close()
            release.set()

    class Broken(FakeSide):
        def setup(self, *args, **kwargs):
            raise UserError("side A: worker failed during setup: boom")

    machine = Machine(10)
    sides = [Broken("A", machine), Slow("B", machine)]
    with pytest.raises(UserError, match="side A: worker failed during setup"):
        coord.setup_sides([sides], coord.ABState(cases=CASES[:2]), threads=None, equivalence=True)
    assert sides[1].closed


# set-up concurrency and adaptive passes ----------------------------------------------------------
class CountingSide(FakeSide):
    """A fake side that records how many set-ups run at the same time."""

    def __init__(self, name, machine, counter):
        super().__init__(name, machine)
        self.counter = counter

    def setup(self, cases, threads, equivalence, progress=None):
        import time

        with self.counter["lock"]:
            self.counter["now"] += 1
            self.counter["most"] = max(self.counter["most"], self.counter["now"])
        time.sleep(0.05)  # long enough for the others to start if they were let in
        with self.counter["lock"]:
            self.counter["now"] -= 1
        return super().setup(cases, threads, equivalence, progress)


@pytest.mark.parametrize("at_once", [1, 2, 3])
def test_set_up_runs_at_most_at_once_workers(at_once):
    import threading

    counter = {"lock": threading.Lock(), "now": 0, "most": 0}
    machine = Machine(10)
    gens = [[CountingSide("A", machine, counter), CountingSide("B", machine, counter)]
            for _ in range(3)]
    coord.setup_sides(gens, coord.ABState(cases=CASES[:2]), threads=1, equivalence=True,
                      at_once=at_once)
    assert counter["most"] == at_once
    checks = [[call[2] for call in side.setup_calls] for g in gens for side in g]
    assert checks == [[False], [True], [False], [False], [False], [False]]  # B's first only


def test_settled_cases_are_measured_no_more_and_the_job_ends_when_all_are():
    from bench.analysis.ab_sequential import Sequential, StopRule

    cases = CASES[:4]
    blocks = 200
    machine = Machine(total_visits=len(cases) * blocks * 2, sd=0.01)
    sides = [FakeSide("A", machine), FakeSide("B", machine, slow={cases[0].id: 1.5})]
    gens = [[FakeSide("A", machine), FakeSide("B", machine, slow={cases[0].id: 1.5})]]
    state = coord.ABState(cases=cases)
    coord.setup_sides([sides, *gens], state, threads=1, equivalence=False)
    seq = Sequential(StopRule(blocks, look_every=10))
    lines = []
    coord.measure_sides([sides, *gens], state, coord.Schedule(blocks, 1, 0, 2),
                        progress=lines.append, sequential=seq)
    assert set(seq.stops) == {c.id for c in cases}
    assert seq.stops[cases[0].id].reason == "settled regression"
    assert state.passes_done == max(s.passes for s in seq.stops.values()) < blocks
    for case in cases:
        got = len(state.samples[case.id]["A"])
        assert got == seq.stops[case.id].passes
    assert "4/4 case(s) settled" in lines[-1]
    assert "measuring 0" in lines[-1]


def first_stop(doc: dict) -> str:
    """The `stop` text of the first case's stored verdict."""
    return doc["cases"][0]["verdict"]["stop"]
