"""TensorFlow's start-up chatter (oneDNN notes, CUDA probes) is printed by C++ before any logging
setting applies; these helpers send just those moments of stderr to /dev/null."""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def stderr_silenced():
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly():
    """Import TensorFlow and probe its devices (where the CUDA probe logs) with stderr silenced;
    Python-level errors still surface as exceptions."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf
