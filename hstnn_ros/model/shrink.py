"""Neuron selection mechanics (paper Eqs. 14-17): keep given neurons, drop the rest, as real smaller matrices.

For each kept neuron its afferent rows stay (input rows; RNN/LSTM recurrent rows restricted to kept units; ALIF
time constants); the next layer and the readout keep only the columns of kept inputs. The compact network computes
exactly what the masked network (``model.run(x, keep=kept)``) computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hstnn_ros.model.errors import ModelError
from hstnn_ros.model.network import HSTNN, HSTNNConfig, KeptNeurons, check_kept
from hstnn_ros.model.neurons import ALIF, LIF, RNN, Population


def _population_state(pop: Population, rows: torch.Tensor, cols: torch.Tensor) -> dict[str, torch.Tensor]:
    """State dict of ``pop`` restricted to kept neurons ``rows`` and kept inputs ``cols``."""
    out: dict[str, torch.Tensor] = {}
    if isinstance(pop, LIF):
        out["fc.weight"] = pop.fc.weight[rows][:, cols]
        if pop.fc.bias is not None:
            out["fc.bias"] = pop.fc.bias[rows]
        if isinstance(pop, ALIF):
            out["tau_m"], out["tau_adp"] = pop.tau_m[rows], pop.tau_adp[rows]
    elif isinstance(pop, RNN):
        g_rows = torch.cat([g * pop.size + rows for g in range(pop.gates)])
        out["fc_in.weight"] = pop.fc_in.weight[g_rows][:, cols]
        out["fc_rec.weight"] = pop.fc_rec.weight[g_rows][:, rows]
        if pop.fc_in.bias is not None:
            out["fc_in.bias"] = pop.fc_in.bias[g_rows]
    else:
        raise ModelError(f"cannot shrink a {type(pop).__name__} population")
    return out


def shrink(model: HSTNN, kept: Sequence[KeptNeurons]) -> HSTNN:
    """A new, compact HSTNN keeping ``kept[n]`` neurons of hidden layer n, with the trained weights (Eq. 17)."""
    if not isinstance(model, HSTNN):
        raise ModelError(f"shrink needs an HSTNN, got {type(model).__name__}")
    check_kept(model, kept)
    cfg = model.config
    new_cfg = HSTNNConfig.from_dict({**cfg.to_dict(),
                                     "hidden": [[k.snn.numel(), k.rnn.numel()] for k in kept]})
    w = model.readout.weight
    new = HSTNN(new_cfg).to(device=w.device, dtype=w.dtype)
    state: dict[str, torch.Tensor] = {}
    cols = torch.arange(cfg.input_size)
    with torch.no_grad():
        for i, (layer, k) in enumerate(zip(model.hybrid_layers, kept, strict=True)):
            for role, pop, rows in (("snn", layer.snn, k.snn), ("rnn", layer.rnn, k.rnn)):
                for key, t in _population_state(pop, rows.to(w.device), cols.to(w.device)).items():
                    state[f"layers.{i}.{role}.{key}"] = t.clone()
            cols = torch.cat([k.snn, layer.spec.n_snn + k.rnn])
        state["readout.weight"] = model.readout.weight[:, cols.to(w.device)].clone()
        if model.readout.bias is not None:
            state["readout.bias"] = model.readout.bias.clone()
    new.load_state_dict(state, strict=True)
    new.train(model.training)
    return new
