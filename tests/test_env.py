"""Environment fingerprint: every field present, no failure without a GPU, thread setting."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

import pytest

from bench.errors import UserError
from bench.measure import env

KEYS = {"hostname", "platform", "os", "python", "tensorflow", "keras", "tf_keras", "numpy",
        "cuda", "cudnn", "cpu_model", "cpu_count", "intra_op_threads", "inter_op_threads",
        "threads_requested", "gpus", "git_commit", "git_dirty", "rnnbench", "cpu_features",
        "onednn"}


def test_cpu_model_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Fake CPU @ 3GHz\n")
    assert env.cpu_model(info) == "Fake CPU @ 3GHz"


def test_git_commit_outside_a_repo_is_none(tmp_path):
    assert env.git_commit(tmp_path) is None
    assert env.git_dirty(tmp_path) is None


def test_no_nvidia_smi_means_no_gpus(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert env.nvidia_smi_gpus() == []


def test_nvidia_smi_rows_are_parsed(monkeypatch, tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert env.nvidia_smi_gpus() == [
        {"name": "NVIDIA H100 80GB HBM3", "memory": "81559 MiB", "driver": "550.54.15"}]


@pytest.mark.tf
def test_collect_env_has_every_field_and_serialises(monkeypatch, tmp_path):
    import tensorflow as tf

    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    doc = env.collect_env(threads=None)
    assert set(doc) >= KEYS
    assert doc["tensorflow"] == tf.__version__
    assert doc["threads_requested"] is None
    assert isinstance(doc["gpus"], list)
    assert isinstance(doc["cpu_count"], int)
    assert doc["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", doc["git_commit"])
    json.dumps(doc)


def test_apply_threads_rejects_nonpositive():
    env.apply_threads(None)  # leaves TensorFlow's default alone
    with pytest.raises(UserError, match="positive"):
        env.apply_threads(0)


@pytest.mark.tf
def test_apply_threads_after_tensorflow_started_is_a_user_error():
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # initialise the runtime
    current = tf.config.threading.get_intra_op_parallelism_threads()
    env.apply_threads(current or None)  # the value already in force: no error
    with pytest.raises(UserError, match="already ran an op"):
        env.apply_threads(current + 3)


@pytest.mark.tf
@pytest.mark.slow
def test_apply_threads_is_recorded_in_a_fresh_process():
    code = ("from bench.measure.env import apply_threads, collect_env; apply_threads(1); "
            "import json; d = collect_env(1); "
            "print(json.dumps([d['intra_op_threads'], d['threads_requested']]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [1, 1]


X86_CPUINFO = ("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Fake Xeon\n"
               "flags\t\t: fpu vme sse4_2 avx f16c fma avx2 avx512f avx512bw avx512_vnni "
               "avx512_bf16 amx_tile amx_bf16 amx_int8 pku\n\nprocessor\t: 1\nflags\t\t: fpu avx\n")
ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes crc32 atomics fphp asimdhp sve sve2 bf16 i8mm svebf16
CPU implementer\t: 0x41
"""


@pytest.mark.parametrize(("text", "features"), [
    (X86_CPUINFO, ["amx_bf16", "amx_int8", "amx_tile", "avx", "avx2", "avx512_bf16",
                   "avx512_vnni", "avx512bw", "avx512f", "f16c", "fma"]),
    (ARM_CPUINFO, ["asimd", "asimdhp", "bf16", "i8mm", "sve", "sve2", "svebf16"]),
    ("processor\t: 0\nflags\t\t: fpu vme sse2\n", []),
    ("processor\t: 0\nmodel name\t: no flags line\n", None),
], ids=["x86-first-core", "aarch64", "no-relevant-feature", "no-flags-line"])
def test_cpu_features_from_a_fake_cpuinfo(tmp_path, text, features):
    info = tmp_path / "cpuinfo"
    info.write_text(text)
    assert env.cpu_features(info) == features


def test_cpu_features_without_cpuinfo_is_unknown(tmp_path):
    assert env.cpu_features(tmp_path / "missing") is None


VNNI = ["avx", "avx2", "avx512_vnni", "fma"]


@pytest.mark.parametrize(("environ", "reported", "features", "expected"), [
    ({}, True, None, "on (default)"),
    ({}, False, VNNI, "off (default)"),  # TensorFlow's own answer wins
    ({"TF_ENABLE_ONEDNN_OPTS": "0"}, False, VNNI, "off (TF_ENABLE_ONEDNN_OPTS=0)"),
    ({"TF_ENABLE_ONEDNN_OPTS": "0"}, None, VNNI, "off (TF_ENABLE_ONEDNN_OPTS=0)"),
    ({"TF_ENABLE_ONEDNN_OPTS": "true"}, None, [], "on (TF_ENABLE_ONEDNN_OPTS=true)"),
    ({"TF_ENABLE_ONEDNN_OPTS": "maybe"}, None, VNNI,
     "on (TF_ENABLE_ONEDNN_OPTS=maybe, not understood)"),
    ({}, None, VNNI, "on (default)"),
    ({}, None, ["avx", "avx2", "fma"], "off (default)"),
    ({}, None, None, "unknown (default)"),
])
def test_onednn_setting_on_x86_linux(environ, reported, features, expected):
    got = env.onednn_setting(environ, reported=reported, tf_version="2.21.0", system="Linux",
                             machine="x86_64", features=features)
    assert got == expected


@pytest.mark.parametrize(("version", "system", "machine", "features", "default"), [
    ("2.9.0", "Linux", "x86_64", ["amx_tile"], True),
    ("2.21.0", "Linux", "x86_64", ["avx2", "avx512f"], False),
    ("2.8.4", "Linux", "x86_64", ["amx_tile"], False),
    ("2.21.0", "Linux", "aarch64", ["asimd"], None),
    ("2.21.0", "Darwin", "x86_64", ["amx_tile"], None),
    (None, "Linux", "x86_64", ["amx_tile"], None),
])
def test_onednn_default(version, system, machine, features, default):
    assert env.onednn_default(version, system, machine, features) is default
    text = env.onednn_setting({}, tf_version=version, system=system, machine=machine,
                              features=features)
    assert text == {True: "on", False: "off", None: "unknown"}[default] + " (default)"


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("value", [None, "0", "1"])
def test_onednn_is_what_tensorflow_reports(value):
    import platform

    if platform.system() != "Linux" or platform.machine() != "x86_64":
        pytest.skip("oneDNN's default is known for x86-64 Linux only")
    environ = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if value is None:
        default = env.onednn_default("2.21", "Linux", "x86_64", env.cpu_features())
        expected = f"{'on' if default else 'off'} (default)"
    else:
        environ["TF_ENABLE_ONEDNN_OPTS"] = value
        expected = f"{'on' if value == '1' else 'off'} (TF_ENABLE_ONEDNN_OPTS={value})"
    code = ("from bench.measure import env; import json; "
            "print(json.dumps([env.onednn_reported(), env.collect_env()['onednn']]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    reported, recorded = json.loads(out.stdout.strip().splitlines()[-1])
    assert reported is not None, "TensorFlow no longer says whether oneDNN is on"
    assert recorded == expected
