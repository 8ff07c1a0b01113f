"""Time-to-accuracy on sequential MNIST: train registry RNNs until a held-out target or a budget.

Model and recipe (DESIGN §2): registry RNN layer → output of the last time step → dense(10),
softmax cross-entropy, Adam or RMSProp (lr 1e-3), batch 128, optional clipping by global norm.

Timing (DESIGN §4): the train step and the evaluation are traced and run once before the clock
starts (`compile_s`; the weights and optimizer state are then restored). `train_s` and the
curve's `wall_s` count training only, from the first step; each held-out evaluation is timed
separately (`eval_s`) and excluded. `time_to_target_s` is the training time at the first
evaluation whose accuracy reaches the target. Evaluations run every `eval_every` steps (default
half an epoch) and at the budget; the mean training loss of the interval is fetched there, and a
non-finite or exploded loss (> DIVERGED_LOSS) stops the run as diverged. A time budget is checked
on the host clock after every step, so a run can overshoot it by one step (on a GPU, by the steps
still queued).

TensorFlow is imported inside the functions that train, never at module level.
"""

from __future__ import annotations

import math
import re
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from bench.errors import UserError, one_line
from bench.registry import DEVICES, REGISTRY, get_spec
from bench.tta import mnist as mnist_data

OPTIMIZERS = ("adam", "rmsprop")
DEFAULT_TARGET = 0.90
# Defaults that finish on a 2-core CPU: row reaches 0.90 on the offline subset well inside its
# budget; pixel/permuted report the accuracy reached at a fixed budget. Real targets on full MNIST
# (GPU): --target 0.98 for row, 0.90 for pixel (see --help).
DEFAULT_BUDGET = {"row": "90s", "pixel": "120s", "permuted": "120s"}
DIVERGED_LOSS = 100.0  # mean train loss of an interval; uniform guessing is ln 10 ≈ 2.3
PROGRESS_EVERY_S = 15.0  # a progress line at least this often on long evaluation intervals
EVAL_BATCH = 500  # held-out images per evaluation call (the last chunk is padded)
AUTO = "auto"  # unroll: fused where the impl is fused, else dynamic

_BUDGET_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)\s*$")
_BUDGET_UNITS = {"s": ("seconds", 1.0), "sec": ("seconds", 1.0), "m": ("seconds", 60.0),
                 "min": ("seconds", 60.0), "ep": ("epochs", 1.0), "epoch": ("epochs", 1.0),
                 "epochs": ("epochs", 1.0), "steps": ("steps", 1.0), "step": ("steps", 1.0)}


@dataclass(frozen=True)
class Budget:
    """When a run gives up: after `value` training seconds, epochs or steps."""

    kind: str  # "seconds" | "epochs" | "steps"
    value: float

    def __str__(self) -> str:
        unit = {"seconds": "s", "epochs": "ep", "steps": "steps"}[self.kind]
        return f"{self.value:g}{unit}"

    def settings(self) -> dict:
        """The budget as results settings: budget_s, budget_epochs or budget_steps."""
        key = {"seconds": "budget_s", "epochs": "budget_epochs", "steps": "budget_steps"}
        return {key[self.kind]: self.value}


def parse_budget(text: str) -> Budget:
    """Parse `90s`, `2m`, `5ep` or `200steps` into a Budget; UserError if malformed."""
    match = _BUDGET_RE.match(str(text).lower())
    unit = _BUDGET_UNITS.get(match.group(2)) if match else None
    if unit is None:
        raise UserError(f"--budget {text!r}: expected a number with a unit: seconds `90s`, "
                        "minutes `2m`, epochs `5ep` or steps `200steps`")
    kind, scale = unit
    value = float(match.group(1)) * scale
    if value <= 0 or (kind == "steps" and value != int(value)):
        raise UserError(f"--budget {text!r}: must be positive (and whole for steps)")
    return Budget(kind, value)


@dataclass(frozen=True)
class TTASettings:
    """One time-to-accuracy run: task, model, recipe, target, budget and seed."""

    task: str = "row"
    impl: str = "keras_lstm"
    unroll: str = "dynamic"
    device: str = "cpu"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    target: float = DEFAULT_TARGET
    budget: Budget = field(default_factory=lambda: parse_budget(DEFAULT_BUDGET["row"]))
    seed: int = 0
    optimizer: str = "adam"
    lr: float = 1e-3
    batch: int = 128
    clip: float | None = None
    eval_every: int | None = None  # steps; None = half an epoch

    @property
    def group_id(self) -> str:
        """The id without the seed: what seeds are summarised over."""
        bi = "-bi" if self.bidirectional else ""
        return (f"{self.task}/{self.impl}/{self.unroll}/{self.device}/"
                f"h{self.hidden_size}-l{self.num_layers}{bi}/b{self.batch}")

    @property
    def id(self) -> str:
        """Stable row id, e.g. `row/keras_lstm/dynamic/cpu/h128-l1/b128/seed0`."""
        return f"{self.group_id}/seed{self.seed}"

    def validate(self) -> TTASettings:
        """Raise a one-line UserError for any value out of range; return self."""
        from bench.registry import check_device, check_unroll

        mnist_data.check_task(self.task)
        check_unroll(get_spec(self.impl), self.unroll)
        check_device(self.device)
        if not 0.0 < self.target <= 1.0:
            raise UserError(f"--target {self.target:g}: must be in (0, 1] (held-out accuracy)")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.optimizer!r}; valid: "
                            f"{', '.join(OPTIMIZERS)}")
        for name, value in (("--lr", self.lr), ("--clip", self.clip)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise UserError(f"{name} {value:g}: must be a positive number")
        for name, value in (("--hidden", self.hidden_size), ("--layers", self.num_layers),
                            ("--batch", self.batch), ("--eval-every", self.eval_every)):
            if value is not None and value < 1:
                raise UserError(f"{name} {value}: must be at least 1")
        return self

    def record(self) -> dict:
        """The settings as stored in a results row (budget flattened to budget_s/_epochs)."""
        out = asdict(self)
        out.pop("budget")
        out.update(self.budget.settings())
        out["budget"] = str(self.budget)
        return out


# The pytest-benchmark preset (bench/suites/test_tta.py): small model, high learning rate, a
# target a few seconds away on 2 cores. Impl and unroll are filled in per test.
TINY_PRESET = TTASettings(task="row", hidden_size=32, lr=1e-2, target=0.80,
                          budget=Budget("epochs", 10.0))


# Training ------------------------------------------------------------------------------------

def _make_optimizer(name: str, lr: float):
    import keras

    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    return keras.optimizers.RMSprop(learning_rate=lr)


def _head_init(in_size: int, seed: int) -> np.ndarray:
    """Glorot-uniform dense(10) kernel, seeded separately from the RNN weights."""
    rng = np.random.default_rng([seed, 10])
    bound = math.sqrt(6.0 / (in_size + mnist_data.NUM_CLASSES))
    return rng.uniform(-bound, bound, (in_size, mnist_data.NUM_CLASSES)).astype(np.float32)


def run_tta(settings: TTASettings, data: mnist_data.TaskData, *, data_info: dict | None = None,
            timer: Callable[[], float] = time.perf_counter,
            progress: Callable[[str], None] | None = None) -> dict:
    """Train one seed until the target or the budget; return a `tta` results row."""
    settings.validate()
    if data.task != settings.task:
        raise ValueError(f"data is for task {data.task!r}, settings for {settings.task!r}")
    import tensorflow as tf

    from bench.impls.base import LayerConfig, build_layer
    from bench.impls.devices import require_device, tf_device_name

    require_device(settings.device)
    n_train, n_test = len(data.y_train), len(data.y_test)
    steps_per_epoch = n_train // settings.batch
    if steps_per_epoch < 1:
        raise UserError(f"--batch {settings.batch}: larger than the {n_train} training images")
    eval_every = settings.eval_every or max(1, steps_per_epoch // 2)
    budget = settings.budget
    max_steps = (math.ceil(budget.value * steps_per_epoch) if budget.kind == "epochs"
                 else int(budget.value) if budget.kind == "steps" else None)
    say = progress or (lambda _line: None)
    config = LayerConfig(settings.impl, settings.unroll, data.input_size, settings.hidden_size,
                         settings.num_layers, settings.bidirectional)

    with tf.device(tf_device_name(settings.device)):
        t_build = timer()
        layer = build_layer(config, settings.device, seed=settings.seed)
        head_w = tf.Variable(_head_init(config.output_size, settings.seed), name="head_kernel")
        head_b = tf.Variable(np.zeros(mnist_data.NUM_CLASSES, np.float32), name="head_bias")
        variables = [*layer.variables, head_w, head_b]
        optimizer = _make_optimizer(settings.optimizer, settings.lr)
        optimizer.build(variables)
        x_train = tf.convert_to_tensor(data.x_train)
        y_train = tf.convert_to_tensor(data.y_train)
        chunk = min(EVAL_BATCH, n_test)
        n_pad = -n_test % chunk
        x_test = np.concatenate([data.x_test, np.zeros((n_pad, *data.x_test.shape[1:]),
                                                       np.float32)])
        test_chunks = [tf.convert_to_tensor(x_test[i:i + chunk])
                       for i in range(0, len(x_test), chunk)]
        build_s = timer() - t_build

        def logits_of(x):
            return tf.matmul(layer(x)[:, -1, :], head_w) + head_b

        @tf.function
        def train_step(x_all, y_all, idx):
            x, y = tf.gather(x_all, idx), tf.gather(y_all, idx)
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=y, logits=logits_of(x)))
            grads = tape.gradient(loss, variables)
            if settings.clip is not None:
                grads, _ = tf.clip_by_global_norm(grads, settings.clip)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            return loss

        @tf.function
        def predict(x):
            return tf.argmax(logits_of(x), axis=-1, output_type=tf.int32)

        def evaluate() -> float:
            preds = np.concatenate([predict(c).numpy() for c in test_chunks])[:n_test]
            return float(np.mean(preds == data.y_test))

        rng = np.random.default_rng([settings.seed, 1])

        def epoch_batches():
            order = rng.permutation(n_train)[:steps_per_epoch * settings.batch]
            return [tf.constant(b, tf.int32) for b in order.reshape(steps_per_epoch, -1)]

        # Trace and run both functions once outside the clock, then undo the update.
        say(f"compiling {settings.id} ...")
        all_vars = [*variables, *optimizer.variables]
        snapshot = [v.numpy() for v in all_vars]
        t_compile = timer()
        float(train_step(x_train, y_train, epoch_batches()[0]).numpy())
        evaluate()
        compile_s = timer() - t_compile
        for var, value in zip(all_vars, snapshot, strict=True):
            var.assign(value)

        curve: list[dict] = []
        train_s = eval_s = 0.0
        best_acc = final_acc = 0.0
        reached = diverged = False
        time_to_target = None
        reason = None
        step = 0
        losses: list = []
        batches: list = []
        start = last_said = timer()
        while True:
            if step % steps_per_epoch == 0:
                batches = epoch_batches()
            losses.append(train_step(x_train, y_train, batches[step % steps_per_epoch]))
            step += 1
            now = timer()
            at_budget = (step >= max_steps if max_steps is not None
                         else train_s + (now - start) >= budget.value)
            if step % eval_every and not at_budget:
                if now - last_said >= PROGRESS_EVERY_S:  # heartbeat between evaluations
                    say(f"{settings.id}: epoch {step / steps_per_epoch:5.2f}  step {step:5d}  "
                        f"train {train_s + now - start:7.1f}s")
                    last_said = now
                continue
            mean_loss = float(tf.reduce_mean(tf.stack(losses)).numpy())  # forces the device
            train_s += timer() - start
            losses = []
            t_eval = timer()
            acc = evaluate()
            eval_s += timer() - t_eval
            final_acc = acc
            best_acc = max(best_acc, acc)
            epoch = step / steps_per_epoch
            curve.append({"step": step, "epoch": round(epoch, 4), "wall_s": train_s,
                          "train_loss": mean_loss, "heldout_acc": acc})
            say(f"{settings.id}: epoch {epoch:5.2f}  step {step:5d}  loss {mean_loss:7.4f}  "
                f"held-out acc {acc:.4f}  train {train_s:7.1f}s")
            last_said = timer()
            if not math.isfinite(mean_loss) or mean_loss > DIVERGED_LOSS:
                diverged = True
                reason = f"diverged at step {step}: mean train loss {mean_loss:g}"
                break
            if acc >= settings.target:
                reached, time_to_target = True, train_s
                break
            if at_budget:
                reason = f"target {settings.target:g} not reached within {budget}"
                break
            start = timer()

    settings_out = {**settings.record(), **(data_info or {}), "eval_in_wall_clock": False,
                    "steps_per_epoch": steps_per_epoch, "eval_every": eval_every,
                    "permutation_seed": data.permutation_seed,
                    "permutation_sha256": data.permutation_sha256, "seq_len": data.seq_len,
                    "input_size": data.input_size}
    stats = {"reached": reached, "time_to_target_s": time_to_target, "steps": step,
             "epochs": step / steps_per_epoch, "best_acc": best_acc, "final_acc": final_acc,
             "train_s": train_s, "eval_s": eval_s, "compile_s": compile_s, "build_s": build_s,
             "diverged": diverged, "evals": len(curve), "curve": curve}
    return {"id": settings.id, "settings": settings_out, "status": "ok", "reason": reason,
            "stats": stats}


def failed_row(settings: TTASettings, status: str, reason: str,
               data_info: dict | None = None) -> dict:
    """A `skipped` or `error` row for a run that could not train."""
    return {"id": settings.id, "settings": {**settings.record(), **(data_info or {})},
            "status": status, "reason": reason, "stats": {"reached": False, "curve": []}}


# Seeds summary (no TensorFlow: report can use it on stored rows) --------------------------

def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Per impl/unroll/task group: seeds, reached count, median and min–max over seeds.

    A seed that missed the target counts as never reaching it (infinite time), so the median
    time-to-target is None (not reached) once half or more of the seeds missed.
    """
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("status") == "ok":
            key = row["id"].rsplit("/seed", 1)[0]
            groups.setdefault(key, []).append(row)
    out = []
    for key, members in groups.items():
        stats = [m.get("stats") or {} for m in members]
        ttt = sorted(s["time_to_target_s"] if s.get("reached") and s.get("time_to_target_s")
                     is not None else math.inf for s in stats)
        med = statistics.median(ttt)
        reached = [t for t in ttt if math.isfinite(t)]
        accs = [s["best_acc"] for s in stats if s.get("best_acc") is not None]
        settings = members[0].get("settings") or {}
        out.append({
            "group": key, "task": settings.get("task"), "impl": settings.get("impl"),
            "unroll": settings.get("unroll"), "target": settings.get("target"),
            "seeds": len(members), "reached": len(reached),
            "diverged": sum(bool(s.get("diverged")) for s in stats),
            "ttt_median_s": med if math.isfinite(med) else None,
            "ttt_min_s": min(reached) if reached else None,
            "ttt_max_s": max(reached) if reached else None,
            "epochs_median": _median([s["epochs"] for s in stats if s.get("epochs")]),
            "best_acc_median": _median(accs), "best_acc_min": min(accs, default=None),
            "best_acc_max": max(accs, default=None),
            "s_per_epoch_median": _median([s["train_s"] / s["epochs"] for s in stats
                                           if s.get("epochs") and s.get("train_s")]),
        })
    return out


def format_summary(summary: Sequence[dict], skipped: Sequence[dict] = ()) -> str:
    """The seeds summary as a Markdown table (plus skipped/error rows with their reasons)."""

    def num(v, fmt="{:.1f}"):
        return "—" if v is None else fmt.format(v)

    lines = ["| task | impl/unroll | target | reached | time to target s (median [min–max]) "
             "| epochs (median) | best acc (median [min–max]) | s/epoch |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in summary:
        spread = (f" [{num(s['ttt_min_s'])}–{num(s['ttt_max_s'])}]"
                  if s["ttt_min_s"] is not None else "")
        div = f", {s['diverged']} diverged" if s["diverged"] else ""
        lines.append(
            f"| {s['task']} | {s['impl']}/{s['unroll']} | {s['target']:g} | "
            f"{s['reached']}/{s['seeds']}{div} | {num(s['ttt_median_s'])}{spread} | "
            f"{num(s['epochs_median'])} | {num(s['best_acc_median'], '{:.3f}')} "
            f"[{num(s['best_acc_min'], '{:.3f}')}–{num(s['best_acc_max'], '{:.3f}')}] | "
            f"{num(s['s_per_epoch_median'], '{:.2f}')} |")
    for row in skipped:
        settings = row.get("settings", {})
        lines.append(f"| {settings.get('task')} | {settings.get('impl')}/"
                     f"{settings.get('unroll')} | — | {row['status']}: {row.get('reason')} "
                     "| | | | |")
    return "\n".join(lines)


# Command line ---------------------------------------------------------------------------------

def add_arguments(parser) -> None:
    """Register the `rnnbench tta` options."""
    parser.add_argument("--task", default="row", choices=mnist_data.TASKS,
                        help="row: 28 steps x 28 pixels; pixel: 784 x 1; permuted: 784 x 1 in "
                             "a fixed seeded order (default: row)")
    parser.add_argument("--impl", nargs="+", default=["all"], metavar="IMPL",
                        help="implementations to train, or `all` (every one in the registry; "
                             "those that cannot run on --device are listed as skipped; "
                             "default: all)")
    parser.add_argument("--unroll", nargs="+", default=[AUTO], metavar="MODE",
                        help="static, dynamic, fused or auto (fused where the impl is fused, "
                             "else dynamic); each impl runs every listed mode it supports "
                             "(default: auto)")
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET,
                        help="held-out accuracy to reach, in (0, 1] (default: 0.90; on full "
                             "MNIST with a GPU try 0.98 for row, 0.90 for pixel)")
    parser.add_argument("--budget", default=None,
                        help="give up after this much training: seconds `90s`, minutes `2m`, "
                             "epochs `5ep` or steps `200steps` (default: "
                             + ", ".join(f"{k} {v}" for k, v in DEFAULT_BUDGET.items()) + ")")
    parser.add_argument("--seeds", type=int, default=1,
                        help="seeds 0..N-1 per impl; the table shows median and min–max "
                             "(default: 1)")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="Keras-style mnist.npz, a folder with the four MNIST *-ubyte.gz "
                             "files, or `subset` (default: Keras cache ~/.keras/datasets/"
                             "mnist.npz if present, else the vendored 5,000-image subset)")
    parser.add_argument("--download", action="store_true",
                        help="fetch mnist.npz with keras.utils.get_file (hash-checked) when "
                             "it is not cached")
    parser.add_argument("--optimizer", default="adam", choices=OPTIMIZERS,
                        help="(default: adam)")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: 1e-3)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument("--clip", type=float, default=None, metavar="NORM",
                        help="clip gradients by global norm (default: no clipping)")
    parser.add_argument("--hidden", type=int, default=128, help="hidden units (default: 128)")
    parser.add_argument("--layers", type=int, default=1, help="stacked layers (default: 1)")
    parser.add_argument("--bidirectional", action="store_true", help="bidirectional layers")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="(default: cpu)")
    parser.add_argument("--eval-every", type=int, default=None, metavar="STEPS",
                        help="held-out evaluation interval (default: half an epoch)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="TensorFlow intra-op threads (default: TensorFlow's, all cores)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="new run folder (default: reports/<run id>)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no per-evaluation progress lines on stderr")


def _pairs(impls: Sequence[str], unrolls: Sequence[str], device: str
           ) -> list[tuple[str, str, str | None]]:
    """(impl, unroll, skip reason) to run; UserError for unknown names or explicit refusals."""
    from bench.impls.devices import skip_reason
    from bench.registry import UNROLLS

    for mode in unrolls:
        if mode != AUTO and mode not in UNROLLS:
            raise UserError(f"unknown unroll mode {mode!r}; valid: {', '.join(UNROLLS)}, {AUTO}")
    explicit = list(impls) != ["all"]
    names = list(dict.fromkeys(impls)) if explicit else list(REGISTRY)
    out = []
    for name in names:
        spec = get_spec(name)
        modes = []
        for mode in unrolls:
            if mode == AUTO:
                mode = "fused" if "fused" in spec.unrolls else "dynamic"  # noqa: PLW2901
            if mode in spec.unrolls and mode not in modes:
                modes.append(mode)
        if not modes:
            if explicit:
                raise UserError(f"{name} supports unroll {', '.join(spec.unrolls)}; none of "
                                f"{', '.join(unrolls)} given")
            continue
        reason = skip_reason(spec, device)
        if reason is not None and explicit:
            raise UserError(f"{reason} (--device {device})")
        out.extend((name, mode, reason) for mode in modes)
    return out


def _command(args, budget: Budget) -> str:
    """The run as an explicit command line (every option spelled out; --out left off)."""
    argv = ["rnnbench", "tta", "--task", args.task, "--impl", *args.impl,
            "--unroll", *args.unroll, "--target", f"{args.target:g}", "--budget", str(budget),
            "--seeds", str(args.seeds), "--optimizer", args.optimizer, "--lr", f"{args.lr:g}",
            "--batch", str(args.batch), "--hidden", str(args.hidden),
            "--layers", str(args.layers), "--device", args.device]
    for flag, value in (("--data", args.data), ("--clip", args.clip),
                        ("--eval-every", args.eval_every), ("--threads", args.threads)):
        if value is not None:
            argv += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    argv += [flag for flag, on in (("--bidirectional", args.bidirectional),
                                   ("--download", args.download)) if on]
    return shlex.join(argv)


def _write_report(run_dir) -> None:
    try:
        from bench.analysis.report import write_report
    except ImportError:
        return
    write_report(run_dir)


def main(args) -> int:
    """Run `rnnbench tta`: every impl × unroll × seed, saved after each run; table to stdout."""
    from bench import results
    from bench.impls.tfsetup import quiet_tensorflow
    from bench.measure.env import apply_threads, collect_env

    budget = parse_budget(args.budget or DEFAULT_BUDGET[args.task])
    if args.seeds < 1:
        raise UserError(f"--seeds {args.seeds}: must be at least 1")
    pairs = _pairs(args.impl, args.unroll, args.device)
    runnable = [p for p in pairs if p[2] is None]
    if not runnable:
        raise UserError(f"no implementation can run on {args.device} here: "
                        + "; ".join(str(p[2]) for p in pairs))
    base = TTASettings(task=args.task, impl=runnable[0][0], unroll=runnable[0][1],
                       device=args.device, hidden_size=args.hidden, num_layers=args.layers,
                       bidirectional=args.bidirectional, target=args.target, budget=budget,
                       optimizer=args.optimizer, lr=args.lr, batch=args.batch, clip=args.clip,
                       eval_every=args.eval_every).validate()
    if args.device == "gpu":
        from bench.impls.devices import require_device

        require_device("gpu")
    mnist = mnist_data.load_mnist(args.data, download_ok=args.download)
    data = mnist_data.task_data(mnist, args.task)
    info = mnist.describe()
    if args.batch > info["n_train"]:
        raise UserError(f"--batch {args.batch}: larger than the {info['n_train']} training "
                        "images")

    quiet_tensorflow()
    apply_threads(args.threads)
    run_id = results.new_run_id(f"tta-{args.task}")
    run_dir = results.make_run_dir(args.out, run_id)
    doc = results.empty_document(run_id=run_id, env=collect_env(args.threads),
                                 command=_command(args, budget))
    say = (lambda _line: None) if args.quiet else (
        lambda line: print(line, file=sys.stderr, flush=True))
    say(f"rnnbench tta: {args.task} on {info['data_source']} ({info['n_train']} train / "
        f"{info['n_heldout']} held out), target {args.target:g}, budget {budget}, "
        f"{len(runnable)} impl(s) x {args.seeds} seed(s) -> {run_dir}")
    for impl, unroll, skip in pairs:
        for seed in range(args.seeds):
            settings = replace(base, impl=impl, unroll=unroll, seed=seed)
            if skip is not None:
                row = failed_row(settings, "skipped", skip, info)
            else:
                try:
                    row = run_tta(settings, data, data_info=info, progress=say)
                except (KeyboardInterrupt, UserError):
                    raise
                except Exception as exc:  # an impl that fails (OOM, missing kernel) is a row
                    row = failed_row(settings, "error", one_line(exc), info)
                    say(f"{settings.id}: error: {row['reason']}")
            doc["tta"].append(row)
            results.save_run(run_dir, doc)
            if skip is not None:
                break  # one skipped row per impl is enough
    print(format_summary(summarize(doc["tta"]),
                         [r for r in doc["tta"] if r["status"] != "ok"]))
    _write_report(run_dir)
    print(f"results: {run_dir}")
    return 1 if any(r["status"] == "error" for r in doc["tta"]) else 0
