"""Time-to-accuracy training: one seed of a registry RNN until a held-out target or a budget.

Model and recipe (docs/design.md): registry RNN layer → output of the last time step → dense(10),
softmax cross-entropy, Adam or RMSProp (lr 1e-3), batch 128, optional clipping by global norm.

Timing (docs/design.md): the train step and the evaluation are traced and run once before the clock
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
import time
from collections.abc import Callable

import numpy as np

from bench.errors import UserError
from bench.results import clean_json
from bench.tta import mnist as mnist_data
from bench.tta.settings import TTASettings
from bench.tta_rows import TTARow

DIVERGED_LOSS = 100.0  # mean train loss of an interval; uniform guessing is ln 10 ≈ 2.3
PROGRESS_EVERY_S = 15.0  # a progress line at least this often on long evaluation intervals
EVAL_BATCH = 500  # held-out images per evaluation call (the last chunk is padded)


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


def _max_steps(budget, steps_per_epoch: int) -> int | None:
    """The step budget of an epochs or steps budget; None for a time budget."""
    if budget.kind == "epochs":
        return math.ceil(budget.value * steps_per_epoch)
    return int(budget.value) if budget.kind == "steps" else None


def _outcome(mean_loss: float, acc: float, at_budget: bool, step: int,
             settings: TTASettings) -> tuple[str | None, str | None]:
    """(outcome, reason) after an evaluation: `diverged`, `reached`, `budget`, or (None, None)
    to train on."""
    if not math.isfinite(mean_loss) or mean_loss > DIVERGED_LOSS:
        return "diverged", f"diverged at step {step}: mean train loss {mean_loss:g}"
    if acc >= settings.target:
        return "reached", None
    if at_budget:
        return "budget", f"target {settings.target:g} not reached within {settings.budget}"
    return None, None


def run_tta(settings: TTASettings, data: mnist_data.TaskData, *, data_info: dict | None = None,
            timer: Callable[[], float] = time.perf_counter,
            progress: Callable[[str], None] | None = None) -> TTARow:
    """Train one seed until the target or the budget; return its typed `tta` row."""
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
    max_steps = _max_steps(budget, steps_per_epoch)
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
            outcome, reason = _outcome(mean_loss, acc, at_budget, step, settings)
            if outcome is not None:
                diverged, reached = outcome == "diverged", outcome == "reached"
                time_to_target = train_s if reached else None
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
    return _row({"id": settings.id, "settings": settings_out, "status": "ok", "reason": reason,
                 "stats": stats})


def failed_row(settings: TTASettings, status: str, reason: str | None,
               data_info: dict | None = None) -> TTARow:
    """A `skipped` or `error` row for a run that could not train."""
    return _row({"id": settings.id, "settings": {**settings.record(), **(data_info or {})},
                 "status": status, "reason": reason, "stats": {"reached": False, "curve": []}})


def _row(raw: dict) -> TTARow:
    """The typed row, values checked (a loss that blew up to NaN or inf is stored as null)."""
    return TTARow.from_dict(clean_json(raw), "this run")
