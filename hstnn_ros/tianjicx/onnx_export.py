"""ONNX export of the float network (an unrolled T-step graph) for interoperability, checked with onnxruntime.

BiMap uses ONNX as its NN IR (openBII/BiMap ``README.md``: "当前，Bi-Map使用 ONNX 作为NN IR"), so the float
network travels next to the integer program. The graph is traced with a fixed number of steps and a dynamic batch.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from hstnn_ros.tianjicx.errors import TianjicxError

log = logging.getLogger(__name__)

ONNX_NAME = "float_model.onnx"
ONNX_OPSET = 17


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Trace ``model(x[B, T, F]) -> logits[B, C]`` into ONNX at ``path`` (batch dynamic, T fixed by ``example``)."""
    model = model.eval()
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        try:
            torch.onnx.export(
                model,
                (example,),
                # the TorchScript exporter (dynamo=False) writes to file-like objects too; the stub only names paths
                buf,  # type: ignore[arg-type]
                input_names=["x"],
                output_names=["logits"],
                dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
        except Exception as e:  # the exporter raises many unrelated types; report them as one
            raise TianjicxError(f"ONNX export of {type(model).__name__} failed: {e}") from e
    path = Path(path)
    path.write_bytes(buf.getvalue())
    log.info("wrote ONNX graph %s (%d bytes)", path, path.stat().st_size)
    return path


def run_onnx(path: Path, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits of the ONNX graph at ``path`` on float ``x[N, T, F]`` (CPU onnxruntime), in batches."""
    import onnxruntime as ort  # noqa: PLC0415  (optional dependency, extras "export")

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own non-exported exception types
        raise TianjicxError(f"{path}: onnxruntime cannot load the graph ({e})") from e
    x = np.asarray(x, dtype=np.float32)
    outs = [sess.run(None, {"x": x[i : i + batch_size]})[0] for i in range(0, x.shape[0], batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)
