"""The methods LoRA was built to beat: bottleneck adapters (Houlsby et al. 2019, Lin et al. 2020) and
prefix-tuning (Li & Liang 2021), each working on any model with the GPT's module names and hooks."""

from minilora.alternatives.bottleneck import (
    PLACEMENTS,
    AdaptedModule,
    AdapterConfig,
    BottleneckAdapter,
    adapter_layers,
    adapter_param_count,
    apply_adapters,
)
from minilora.alternatives.files import (
    ALT_CONFIG_NAME,
    ALT_WEIGHTS_NAME,
    apply_alternative,
    load_alternative,
    save_alternative,
)
from minilora.alternatives.prefix import (
    PrefixConfig,
    PrefixEncoder,
    apply_prefix,
    materialize_prefix,
    prefix_attentions,
    prefix_cost,
    prefix_param_count,
)

__all__ = [
    "ALT_CONFIG_NAME", "ALT_WEIGHTS_NAME", "PLACEMENTS", "AdaptedModule", "AdapterConfig", "BottleneckAdapter",
    "PrefixConfig", "PrefixEncoder", "adapter_layers", "adapter_param_count", "apply_adapters", "apply_alternative",
    "apply_prefix", "load_alternative", "materialize_prefix", "prefix_attentions", "prefix_cost",
    "prefix_param_count", "save_alternative",
]
