"""LoRA: low-rank adaptation (Hu et al. 2021, arXiv 2106.09685) for any ``nn.Module``.

    from minilora.lora import LoraConfig, apply_lora
    model = apply_lora(model, LoraConfig(r=4, target_modules=("q_proj", "v_proj")))
    # train: only lora_A / lora_B require grad;  then
    save_adapter(model, "runs/adapter")            # PEFT-format files, a few KB
    merge_lora(model)                              # W = W0 + (α/r)·B A: no inference latency

One job per file:  ``layer`` (LoraConfig, LoRALinear),  ``variants`` (DoRA, PiSSA / OLoRA, LoRA-FA, LoRA+, VeRA),
``inject`` (apply / merge / unmerge),  ``multi`` (several adapters: add, set, disable, delete, weighted),
``adapters`` (PEFT adapter files),  ``provenance`` (which base an adapter file belongs to),
``accounting`` (parameter counts),  ``analysis`` (what ΔW learns: subspace similarity, amplification).
"""

from minilora.lora.accounting import (
    GPT3_175B,
    LoraReport,
    LoraRow,
    ParameterCount,
    count_parameters,
    gpt3_lora_param_count,
    lora_param_count,
    lora_report,
)
from minilora.lora.adapters import (
    AdapterBaseMismatch,
    adapter_config,
    adapter_state_dict,
    load_adapter,
    read_adapter_config,
    save_adapter,
)
from minilora.lora.analysis import (
    amplification_factor,
    chance_similarity,
    projection_norm,
    singular_directions,
    subspace_similarity,
    subspace_similarity_grid,
)
from minilora.lora.inject import (
    apply_lora,
    find_targets,
    lora_layers,
    lora_parameters,
    merge_and_unload,
    merge_lora,
    unmerge_lora,
)
from minilora.lora.layer import DEFAULT_ADAPTER, LoraAdapter, LoraConfig, LoRALinear, lora_scaling
from minilora.lora.multi import (
    active_adapters,
    adapter_configs,
    add_adapter,
    add_weighted_adapter,
    delete_adapter,
    disable_adapter,
    set_adapter,
)
from minilora.lora.variants.dora import DoraLinear
from minilora.lora.variants.vera import (
    VeraConfig,
    VeraLinear,
    apply_vera,
    init_vera_projections,
    merge_vera,
    unmerge_vera,
    vera_layers,
    vera_param_count,
    vera_parameters,
)

__all__ = [
    "LoraConfig", "LoRALinear", "lora_scaling", "DoraLinear", "LoraAdapter", "DEFAULT_ADAPTER",
    "add_adapter", "set_adapter", "active_adapters", "adapter_configs", "disable_adapter", "delete_adapter",
    "add_weighted_adapter",
    "apply_lora", "find_targets", "lora_layers", "lora_parameters", "merge_lora", "unmerge_lora", "merge_and_unload",
    "save_adapter", "load_adapter", "adapter_config", "adapter_state_dict", "read_adapter_config",
    "AdapterBaseMismatch",
    "ParameterCount", "count_parameters", "LoraRow", "LoraReport", "lora_report", "lora_param_count",
    "GPT3_175B", "gpt3_lora_param_count",
    "subspace_similarity", "subspace_similarity_grid", "chance_similarity", "amplification_factor",
    "singular_directions", "projection_norm",
    "VeraConfig", "VeraLinear", "apply_vera", "init_vera_projections", "merge_vera", "unmerge_vera", "vera_layers",
    "vera_param_count", "vera_parameters",
]
