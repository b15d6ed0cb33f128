"""Keep TensorFlow's and absl's native start-up lines out of normal output.

Importing TensorFlow on a CPU-only machine makes its C++ side write lines such as
``E0000 00:00:... cuda_dnn.cc:...] Unable to register cuDNN factory`` and
``WARNING: All log messages before absl::InitializeLog() is called ...`` straight to file
descriptor 2, which ``TF_CPP_MIN_LOG_LEVEL`` does not silence. :func:`preload_tensorflow` imports it
once with fd 2 captured and passes on every line that is not such a log line, so real errors still show.
Set ``MOTOCOACH_TF_LOGS=1`` to see everything.

>>> bool(NOISE.match("W0000 00:00:1796585256.156718   14205 computation_placer.cc:177] already registered"))
True
>>> bool(NOISE.match("Traceback (most recent call last):"))
False
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

#: absl/glog-format lines (severity, MMDD, time, thread, file:line]) and absl's pre-init notice.
NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
                   r"|[EWIF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] )")


@contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Capture fd 2 (native code included); afterwards write back the lines that are not log noise."""
    if os.environ.get("MOTOCOACH_TF_LOGS"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode(errors="replace").splitlines() if not NOISE.match(ln)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def preload_tensorflow() -> None:
    """Import TensorFlow now, quietly, so later imports (SB3's TensorBoard logger, onnx2tf) print nothing."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr_filtered():
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            pass
