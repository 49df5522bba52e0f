"""Which base model an adapter belongs to: the base's weights under the adapters, their fingerprint, and the check
that refuses an adapter file recorded for another base (``minilora.lora.adapters`` writes and reads the record).

An adapter only makes sense on the base model it was trained on: the same shapes with another vocabulary or
another pretraining give garbage without an error.  So the weights file's metadata records the base's
``base_model_name_or_path``, its config, ``base_fingerprint`` (16 hex digits of SHA-256 over the base weights
rounded to float16) and, for a 4-bit base (QLoRA), its ``quantization``; ``load_adapter`` compares them with the
model's.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from minilora import backend, nn
from minilora.lora.inject import lora_layers
from minilora.lora.variants.vera import vera_layers

__all__ = ["AdapterBaseMismatch", "base_weights", "base_fingerprint", "base_quantization", "base_record",
           "check_recorded_base"]

_MAGNITUDE = "lora_magnitude_vector"


class AdapterBaseMismatch(ValueError):
    """An adapter file records a base model other than the one it is loaded onto (``load_adapter``).

    A ValueError like every bad-input error; its own class so that a caller (the command line) can catch
    exactly this case and word the way out in its own terms (the message names ``check_base=False``).
    """


def base_weights(model: nn.Module) -> Iterator[tuple[str, Any]]:
    """(name, array) of every weight of the base model under the adapters, in model order.

    LoRA's A and B (and DoRA's m) are left out; a LoRALinear's frozen Linear is listed under the name of the
    layer it replaced (``blocks.0.attn.q_proj.weight``, not ``...q_proj.base.weight``) with its un-merged W0
    (for PiSSA / OLoRA the W0 before the residual replaced it), so a model gives the same list before
    ``apply_lora``, after it, and while merged.
    """
    skip: set[str] = set()
    rename: dict[str, str] = {}
    w0: dict[str, Any] = {}
    for layer_name, layer in lora_layers(model):
        prefix = f"{layer_name}." if layer_name else ""
        skip |= {prefix + "lora_A", prefix + "lora_B", prefix + _MAGNITUDE}  # the adapter, not the base
        skip |= {f"{prefix}lora_adapters.{a}.lora_{m}" for a in layer.adapter_names()[1:] for m in "AB"}  # others
        rename[prefix + "base.weight"], rename[prefix + "base.bias"] = prefix + "weight", prefix + "bias"
        w0[prefix + "base.weight"] = layer.original_weight                  # W0, not W0 + s·B A nor a residual
    for layer_name, layer in vera_layers(model):  # VeRA: its λ vectors and the shared A, B are the adapter
        prefix = f"{layer_name}." if layer_name else ""
        skip |= {prefix + p for p in ("vera_lambda_b", "vera_lambda_d", "vera_A", "vera_B")}
        rename[prefix + "base.weight"], rename[prefix + "base.bias"] = prefix + "weight", prefix + "bias"
        w0[prefix + "base.weight"] = layer.w0
    for name, param in model.named_parameters():
        if name not in skip:
            yield rename.get(name, name), w0.get(name, param.data)


def base_fingerprint(model: nn.Module) -> str:
    """A short fingerprint of the base model's weights: 16 hex digits of SHA-256 over, for each of
    ``base_weights(model)`` in name order, its name, shape and values rounded to float16.

    Equal weights give equal fingerprints on every device; rounding to float16 first makes the same
    base cast to float16, float32 or float64 keep one fingerprint, while another pretraining,
    vocabulary or architecture changes it.
    """
    digest = hashlib.sha256()
    for name, array in sorted(base_weights(model), key=lambda item: item[0]):
        host = backend.to_host(array)
        digest.update(f"{name}{tuple(host.shape)}".encode())
        with np.errstate(over="ignore"):  # |w| > 65504 rounds to inf: still a fingerprint
            digest.update(np.ascontiguousarray(host, dtype="<f2").tobytes())
    return digest.hexdigest()[:16]


def base_quantization(model: nn.Module) -> dict[str, Any] | None:
    """How the base's 4-bit layers are stored (QLoRA): ``{"format": "nf4", "blocksize": B, "double_quant": bool}``
    from its first quantised layer (``quantize_model`` gives every layer the same), None for a full-precision base.

    The fingerprint cannot tell two 4-bit bases apart (their packed weights are not parameters), so a QLoRA
    adapter records this beside it: the base it needs is the named model quantised this way.
    """
    for module in model.modules():  # found as ``accounting.stored_weights`` finds them: lora may not import quant
        if getattr(module, "is_quantized", False):
            quant = module.quant  # its packed weight (minilora.quant's NF4Tensor)
            return {"format": "nf4", "blocksize": int(quant.blocksize), "double_quant": quant.double is not None}
    return None


def base_record(model: nn.Module, base_model_name_or_path: str | None) -> dict[str, Any]:
    """What the weights file records about the base: name, config (a dataclass ``model.config``), fingerprint, and
    ``quantization`` when the base is 4-bit."""
    config = getattr(model, "config", None)
    as_dict = dataclasses.asdict(config) if dataclasses.is_dataclass(config) and not isinstance(config, type) else None
    record = {"name_or_path": base_model_name_or_path, "config": as_dict, "fingerprint": base_fingerprint(model)}
    quantization = base_quantization(model)
    return record if quantization is None else {**record, "quantization": quantization}


def _describe_quantization(quantization: dict[str, Any] | None) -> str:
    if quantization is None:
        return "full precision"
    double = "with" if quantization["double_quant"] else "without"
    return f"NF4, blocksize {quantization['blocksize']}, {double} double quantisation"


def _describe_base(record: dict[str, Any], other: dict[str, Any]) -> str:
    """``'skills' (weights 1a2b..., vocab_size=67)``: a base's name, fingerprint and the config fields
    in which it differs from ``other``."""
    name = f"{record['name_or_path']!r} " if record.get("name_or_path") else ""
    mine, theirs = record.get("config") or {}, other.get("config") or {}
    differ = [f"{key}={mine[key]!r}" for key in mine if key in theirs and mine[key] != theirs[key]]
    return f"{name}(weights {', '.join([record['fingerprint'], *differ])})"


def check_recorded_base(path: Path, metadata: dict[str, Any], model: nn.Module) -> None:
    """AdapterBaseMismatch naming both bases when ``metadata`` records a base model other than ``model``'s."""
    recorded = metadata.get("base_model")
    if recorded is None:  # saved by PEFT or by an older minilora: nothing to compare
        return
    if not isinstance(recorded, dict) or not isinstance(recorded.get("fingerprint"), str):
        raise ValueError(f"{path}: metadata base_model must be an object with a fingerprint string, got {recorded!r}")
    current = base_record(model, None)
    if "quantization" in recorded and recorded["quantization"] != current.get("quantization"):
        raise AdapterBaseMismatch(
            f"{path}: adapter made for a base stored as {_describe_quantization(recorded['quantization'])}, but "
            f"this model's base is {_describe_quantization(current.get('quantization'))}; quantise the base as "
            "recorded before loading (minilora.quant.quantize_model)"
        )
    if recorded["fingerprint"] != current["fingerprint"]:
        raise AdapterBaseMismatch(
            f"{path}: adapter made for another base model: trained on {_describe_base(recorded, current)} but this "
            f"model's base is {_describe_base(current, recorded)}; load it onto the base it was trained on "
            "(or call load_adapter(..., check_base=False) to load it anyway)"
        )
