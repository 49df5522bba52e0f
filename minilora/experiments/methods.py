"""What trains: the one registry of adaptation methods every command, experiment, benchmark and the demo go through.

A *method* turns a pretrained model into the model to train and says which of its numbers learn:

    none      nothing trains: the base model as it is (the "no fine-tuning" row)
    full      every weight W trains: |Θ| = D numbers
    lora      W = W0 + s·B A on ``target_modules`` (B: d×r, A: r×k), only A and B train: Σ r(d + k) numbers;
              s = lora_alpha / r, or lora_alpha / √r with rsLoRA (``use_rslora``)
    dora      LoRA with DoRA's magnitude: W' = m ⊙ (W0 + s·B A) / ‖W0 + s·B A‖, A, B and m (one per output) train
    pissa     LoRA started from W0's top-r SVD (olora: its QR), the base replaced by the residual W0 − s·B A
    lora-fa   LoRA with A frozen: only B trains (Σ r·d numbers), no optimizer state for A
    vera      W = W0 + diag(λ_b) B diag(λ_d) A with one frozen random pair A, B shared by all target modules:
              only λ_d (r) and λ_b (d) train per layer: Σ (r + d) numbers
    subspace  θ = θ0 + P z over all D weights (P: D×d, ``projection``), only z ∈ R^d trains (plus one scale per
              weight tensor with SAID, ``said``)
    adapter   bottleneck adapters h + W_up gelu(W_down h) (``bottleneck`` m) after attention and MLP (``placement``
              "houlsby") or after the MLP ("lin"): 2·d·m + m + d numbers each (``minilora.alternatives``)
    prefix    prefix-tuning: p = ``num_virtual_tokens`` learned keys and values per layer, p·L·2·C numbers
              (optionally trained through an MLP: ``prefix_projection``, ``encoder_hidden_size``)

Each is one ``Method`` entry knowing its *settings* (names and defaults), how to ``check`` them (a setting that does
not apply to the method is refused, once, here), how to ``prepare`` a model, and how many numbers then train.  A new
method (DoRA, VeRA, a 4-bit base) is one new entry.  ``apply_lora`` is called from here only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from minilora.nn import Module
from minilora.validation import is_int, is_real

__all__ = ["DEFAULT_TARGETS", "METHODS", "Method", "get_method"]

# Attention (the LoRA paper's W_q, W_v) and the MLP: on this 2-layer model, subtraction reaches
# 65-87% of full fine-tuning with q, v alone at r = 4 (1000 steps), and > 99% once the MLP is adapted too.
DEFAULT_TARGETS = ("q_proj", "v_proj", "fc_in", "fc_out")


@dataclass(frozen=True)
class Method:
    """One way to choose what trains: its ``settings`` (name → default) and how it prepares a model."""

    name: str
    help: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    _check: Callable[[dict[str, Any]], dict[str, Any]] = lambda s: s
    _prepare: Callable[[Module, dict[str, Any], int], Module] = lambda model, s, seed: model
    required: tuple[str, ...] = ()  # settings without a default (their default is None): they must be given
    trains: bool = True  # False: nothing is trained (the model is only evaluated)
    adapter: bool = False  # True: what it learns is saved as adapter files, not a whole model
    # files of its own (bottleneck adapters, prefix-tuning): save(model, folder, base) writes them and returns
    # ``weights_file``'s path; None: adapter files (``adapter``) or the whole model
    save: Callable[[Module, Any, str | None], Any] | None = None
    weights_file: str | None = None

    def check(self, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The method's settings with defaults filled in, as plain JSON values.

        A setting that does not apply to this method is a one-line ValueError naming it and the method
        ("r does not apply to method 'full'"); a required one (no default) must be given.
        """
        given = dict(settings or {})
        foreign = [k for k in given if k not in self.settings]
        if foreign:
            takes = ", ".join(self.settings) or "no settings"
            raise ValueError(f"{foreign[0]} does not apply to method {self.name!r} (it takes {takes})")
        filled = {k: given.get(k, default) for k, default in self.settings.items()}
        missing = [k for k in self.required if filled[k] is None]
        if missing:
            raise ValueError(f"method {self.name!r} needs {missing[0]}")
        return self._check(filled)

    def spec_fields(self, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The fields this method adds to a run spec: its checked settings."""
        return self.check(settings)

    def prepare(self, model: Module, settings: Mapping[str, Any] | None = None, seed: int = 0) -> Module:
        """The model to train: ``model`` with this method applied (its settings checked first; ``seed`` draws
        any new weights, e.g. LoRA's A).  May change ``model`` in place; subspace returns a wrapper."""
        return self._prepare(model, self.check(settings), seed)

    def trainable(self, model: Module) -> int:
        """How many numbers train in a prepared model (0 for "none")."""
        return model.num_parameters(trainable_only=True) if self.trains else 0


# --------------------------------------------------------------------------------------------- entries


def _prepare_full(model: Module, settings: dict[str, Any], seed: int) -> Module:
    return model.requires_grad_(True)


def _lora_config(settings: Mapping[str, Any]) -> Any:
    from minilora.lora import LoraConfig

    return LoraConfig(r=settings["r"], lora_alpha=settings["lora_alpha"], use_rslora=settings["use_rslora"],
                      target_modules=tuple(settings["target_modules"]),
                      init_lora_weights=settings["init_lora_weights"], use_dora=settings.get("use_dora", False))


def _check_lora(settings: dict[str, Any]) -> dict[str, Any]:
    targets = settings["target_modules"]
    targets = [targets] if isinstance(targets, str) else list(targets)
    config = _lora_config({**settings, "target_modules": targets})  # LoraConfig validates every value
    return {"r": config.r, "lora_alpha": settings["lora_alpha"] if settings["lora_alpha"] is None
            else config.lora_alpha,
            "use_rslora": config.use_rslora, "target_modules": list(config.target_modules),
            "init_lora_weights": config.init_lora_weights}


def _prepare_lora(model: Module, settings: dict[str, Any], seed: int) -> Module:
    from minilora.lora import apply_lora

    return apply_lora(model, _lora_config(settings), seed=seed)


def _lora_variant(name: str, text: str, fixed: dict[str, Any], freeze_a: bool = False) -> Method:
    """A LoRA method whose ``fixed`` LoraConfig fields are not settings (DoRA: use_dora=True; PiSSA: the init);
    ``freeze_a``: LoRA-FA, A stays as drawn and only B trains (``minilora.lora.variants.lorafa``)."""
    settings = {k: v for k, v in METHODS["lora"].settings.items() if k not in fixed}

    def check(given: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in _check_lora({**given, **fixed}).items() if k not in fixed}

    def prepare(model: Module, given: dict[str, Any], seed: int) -> Module:
        model = _prepare_lora(model, {**given, **fixed}, seed)
        if freeze_a:
            from minilora.lora.variants.lorafa import freeze_lora_A

            freeze_lora_A(model)
        return model

    return Method(name, text, settings, check, prepare, adapter=True)


def _check_loraplus(given: dict[str, Any]) -> dict[str, Any]:
    ratio = given["loraplus_lr_ratio"]
    if not is_real(ratio) or not ratio > 0 or ratio == float("inf"):
        raise ValueError(f"lora-plus: loraplus_lr_ratio must be a positive number, got {ratio!r}")
    lora = _check_lora({k: v for k, v in given.items() if k != "loraplus_lr_ratio"})
    return {**lora, "loraplus_lr_ratio": float(ratio)}


def _prepare_loraplus(model: Module, given: dict[str, Any], seed: int) -> Module:
    """LoRA whose B trains at ``loraplus_lr_ratio`` times A's learning rate: the model brings its optimizer groups
    (``train.make_optimizer`` uses ``model.optimizer_groups``)."""
    from minilora.lora.variants.loraplus import loraplus_param_groups

    ratio = given["loraplus_lr_ratio"]
    model = _prepare_lora(model, {k: v for k, v in given.items() if k != "loraplus_lr_ratio"}, seed)
    model.optimizer_groups = lambda lr, weight_decay: loraplus_param_groups(model, lr, ratio, weight_decay)
    return model


def _vera_config(settings: Mapping[str, Any], seed: int = 0) -> Any:
    from minilora.lora import VeraConfig

    targets = settings["target_modules"]
    return VeraConfig(r=settings["r"], d_initial=settings["d_initial"], projection_prng_key=seed,
                      target_modules=(targets,) if isinstance(targets, str) else tuple(targets))


def _check_vera(settings: dict[str, Any]) -> dict[str, Any]:
    config = _vera_config(settings)  # VeraConfig validates every value
    return {"r": config.r, "d_initial": config.d_initial, "target_modules": list(config.target_modules)}


def _prepare_vera(model: Module, settings: dict[str, Any], seed: int) -> Module:
    """``seed`` also seeds the shared projections (``projection_prng_key``): seed replicas differ in A and B."""
    from minilora.lora import apply_vera

    return apply_vera(model, _vera_config(settings, seed), seed=seed)


def _check_subspace(settings: dict[str, Any]) -> dict[str, Any]:
    from minilora.subspace import PROJECTIONS

    d, projection, said = settings["d"], settings["projection"], settings["said"]
    if not is_int(d) or d < 1:
        raise ValueError(f"subspace: d must be an integer >= 1, got {d!r}")
    if projection not in PROJECTIONS:
        raise ValueError(f"subspace: projection must be one of {sorted(PROJECTIONS)}, got {projection!r}")
    if not isinstance(said, bool):
        raise ValueError(f"subspace: said must be True or False, got {said!r}")  # noqa: TRY004 (a bad setting value)
    return {"d": int(d), "projection": projection, "said": said}


def _prepare_subspace(model: Module, settings: dict[str, Any], seed: int) -> Module:
    from minilora.subspace import SubspaceModel

    return SubspaceModel(model, settings["d"], projection=settings["projection"], seed=seed, said=settings["said"])


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("none", "no fine-tuning: evaluate the base model as it is", trains=False),
    Method("full", "full fine-tuning: every weight trains", _prepare=_prepare_full),
    Method("lora", "LoRA: W0 + s·B A on the target modules, only A and B train (rsLoRA: s = alpha/√r)",
           {"r": 4, "lora_alpha": None, "use_rslora": False, "target_modules": list(DEFAULT_TARGETS),
            "init_lora_weights": "gaussian"}, _check_lora, _prepare_lora, adapter=True),
    Method("subspace", "intrinsic dimension: θ = θ0 + P z, only z ∈ R^d trains (SAID: plus one scale per tensor)",
           {"d": None, "projection": "fastfood", "said": False}, _check_subspace, _prepare_subspace, required=("d",)),
)}


METHODS.update((m.name, m) for m in (
    _lora_variant("dora", "DoRA: m ⊙ (W0 + s·B A) / ‖W0 + s·B A‖, A, B and the magnitudes m train", {"use_dora": True}),
    _lora_variant("pissa", "PiSSA: LoRA from W0's top-r SVD, the base replaced by the residual",
                  {"init_lora_weights": "pissa"}),
    _lora_variant("olora", "OLoRA: LoRA from W0's QR, the base replaced by the residual",
                  {"init_lora_weights": "olora"}),
    _lora_variant("lora-fa", "LoRA-FA: LoRA with A frozen, only B trains", {}, freeze_a=True),
    Method("lora-plus", "LoRA+: LoRA with B trained at loraplus_lr_ratio times A's learning rate",
           {**METHODS["lora"].settings, "loraplus_lr_ratio": 16.0}, _check_loraplus, _prepare_loraplus, adapter=True),
    Method("vera", "VeRA: one frozen random pair A, B shared by all target modules, only λ_d and λ_b train",
           {"r": 256, "d_initial": 0.1, "target_modules": list(DEFAULT_TARGETS)}, _check_vera, _prepare_vera,
           adapter=True),
))


def get_method(name: str) -> Method:
    """The registry entry of ``name``; a ValueError lists the known methods."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
    return METHODS[name]


# -- H2: the alternatives LoRA was built to beat (minilora.alternatives), saved as files of their own --------------


def _check_adapter(given: dict[str, Any]) -> dict[str, Any]:
    from minilora.alternatives import AdapterConfig

    config = AdapterConfig(given["bottleneck"], given["placement"])  # validates every value
    return {"bottleneck": int(config.bottleneck), "placement": config.placement}


def _check_prefix(given: dict[str, Any]) -> dict[str, Any]:
    from minilora.alternatives import PrefixConfig

    config = PrefixConfig(given["num_virtual_tokens"], given["prefix_projection"], given["encoder_hidden_size"])
    return {"num_virtual_tokens": int(config.num_virtual_tokens), "prefix_projection": config.prefix_projection,
            "encoder_hidden_size": int(config.encoder_hidden_size)}


def _alternative(name: str) -> dict[str, Any]:
    """The Method fields of an alternative: ``apply_alternative`` with the method's name, ``save_alternative``, and
    the weights file it writes."""

    def prepare(model: Module, settings: dict[str, Any], seed: int) -> Module:
        from minilora.alternatives import apply_alternative

        return apply_alternative(model, name, settings, seed=seed)

    def save(model: Module, folder: Any, base: str | None) -> Any:
        from minilora.alternatives import save_alternative

        return save_alternative(model, folder, base)

    return {"_prepare": prepare, "save": save, "weights_file": "alternative_model.safetensors"}  # ALT_WEIGHTS_NAME


METHODS.update((m.name, m) for m in (
    Method("adapter", "bottleneck adapters: h + W_up gelu(W_down h) after attention and MLP (houlsby) or after the "
           "MLP (lin), only the adapters train", {"bottleneck": 16, "placement": "houlsby"}, _check_adapter,
           **_alternative("adapter")),
    Method("prefix", "prefix-tuning: p learned keys and values before every layer's attention (optionally through "
           "an MLP), only the prefixes train", {"num_virtual_tokens": 8, "prefix_projection": False,
                                                 "encoder_hidden_size": 64}, _check_prefix,
           **_alternative("prefix")),
))


# -- H3: QLoRA, LoRA on a 4-bit NF4 base (minilora.quant) ----------------------------------------------------------


def _check_qlora(given: dict[str, Any]) -> dict[str, Any]:
    from minilora.quant import BLOCKSIZES

    blocksize, double_quant = given["blocksize"], given["double_quant"]
    if not is_int(blocksize) or blocksize not in BLOCKSIZES:
        raise ValueError(f"qlora: blocksize must be one of {', '.join(map(str, BLOCKSIZES))}, got {blocksize!r}")
    if not isinstance(double_quant, bool):
        raise ValueError(f"qlora: double_quant must be True or False, got {double_quant!r}")  # noqa: TRY004
    if given["init_lora_weights"] in ("pissa", "olora"):  # they rewrite W0, which is stored in 4 bits here
        raise ValueError(f"qlora: init_lora_weights={given['init_lora_weights']!r} changes the base weight, which "
                         "QLoRA stores in 4 bits; use 'gaussian' or True")
    lora = _check_lora({k: v for k, v in given.items() if k not in ("blocksize", "double_quant")})
    return {**lora, "blocksize": int(blocksize), "double_quant": double_quant}


def _prepare_qlora(model: Module, given: dict[str, Any], seed: int) -> Module:
    """QLoRA: every Linear but the head stored in NF4 (``quantize_model``), then LoRA on the target modules.

    The adapter it saves (PEFT's files, as LoRA's) was trained on the *quantised* base: load it onto
    ``quantize_model(base, blocksize=..., double_quant=...)`` to get the model that was trained (on the
    full-precision base it computes a slightly different function)."""
    from minilora.quant import quantize_model

    quantize_model(model, blocksize=given["blocksize"], double_quant=given["double_quant"])
    return _prepare_lora(model, {k: v for k, v in given.items() if k not in ("blocksize", "double_quant")}, seed)


METHODS.update((m.name, m) for m in (
    Method("qlora", "QLoRA: LoRA on a frozen 4-bit NF4 base (every Linear but the head), only A and B train",
           {**METHODS["lora"].settings, "blocksize": 64, "double_quant": True}, _check_qlora, _prepare_qlora,
           adapter=True),
))
