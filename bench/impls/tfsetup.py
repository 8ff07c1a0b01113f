"""Quiet TensorFlow's start-up and deprecation chatter (imports TensorFlow)."""

from __future__ import annotations

import os
import warnings


def quiet_tensorflow() -> None:
    """Lower TensorFlow's C++ and Python logging to errors; hide legacy-cell deprecations."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.autograph.set_verbosity(0)
    warnings.filterwarnings("ignore", module=r"tf_keras\..*")
    warnings.filterwarnings("ignore", message=r".*is deprecated and will be removed.*")
