"""Import TensorFlow quietly: its C++ start-up chatter is captured, kept for env.json, not shown.

Some start-up lines (`cudart_stub … Could not find cuda drivers`, `E0000 … failed call to
cuInit` on a CPU-only machine) are written before TF_CPP_MIN_LOG_LEVEL takes effect, so file
descriptor 2 itself is redirected while TensorFlow is imported and its devices are listed. The
captured lines are shown only when the import fails or `verbose` is set.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings

_STARTUP_LOG: list[str] = []


def startup_log() -> list[str]:
    """The lines TensorFlow printed while it was imported through `import_tensorflow`."""
    return list(_STARTUP_LOG)


def import_tensorflow(verbose: bool = False):
    """Import TensorFlow with its start-up logs captured; return the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules:
        _import_captured(verbose)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.autograph.set_verbosity(0)
    warnings.filterwarnings("ignore", module=r"tf_keras\..*")
    warnings.filterwarnings("ignore", message=r".*is deprecated and will be removed.*")
    return tf


def _import_captured(verbose: bool) -> None:
    sys.stderr.flush()
    saved = os.dup(2)
    failed = True
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # device start-up logs (cuInit) come here
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            _STARTUP_LOG[:] = [line for line in text.splitlines() if line.strip()]
            if text and (failed or verbose):
                sys.stderr.write(text)
                sys.stderr.flush()

