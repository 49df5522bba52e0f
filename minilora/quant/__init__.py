"""Quantisation: NF4 (QLoRA's 4-bit NormalFloat), the frozen 4-bit linear layer, and what they save.

``nf4``         the code table derived from N(0, 1) quantiles, blockwise absmax quantisation, double quantisation
``linear4bit``  ``Linear4bit`` (a frozen ``nn.Linear`` stored in NF4), ``quantize_model``, merging onto a 4-bit base
``report``      the numbers: bits per parameter, resident bytes, quantisation error, NF4 against a uniform 4-bit code

A layer-4 package beside ``lora``: it knows modules, not adapters; ``experiments.methods`` composes the two (QLoRA).
"""

from minilora.quant.linear4bit import (
    Linear4bit,
    merge_and_requantize,
    quantize_model,
    quantized_layers,
    stored_bytes,
)
from minilora.quant.nf4 import (
    BLOCKSIZES,
    DYNAMIC_CODE,
    NF4_CODE,
    DoubleQuant,
    NF4Tensor,
    create_dynamic_map,
    create_normal_map,
    dequantize_nf4,
    double_quantize,
    quantize_nf4,
)

__all__ = ["BLOCKSIZES", "DYNAMIC_CODE", "NF4_CODE", "DoubleQuant", "Linear4bit", "NF4Tensor", "create_dynamic_map",
           "create_normal_map", "dequantize_nf4", "double_quantize", "merge_and_requantize", "quantize_model",
           "quantize_nf4", "quantized_layers", "stored_bytes"]
