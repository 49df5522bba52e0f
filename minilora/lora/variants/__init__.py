"""LoRA variants, one module each, with PEFT's names so that every adapter file is one PEFT reads.

    dora    DoRA (Liu et al. 2024, arXiv 2402.09353): W' = m ⊙ (W0 + s·B A) / ‖W0 + s·B A‖  (``use_dora=True``)
    pissa   PiSSA and OLoRA initialisations: A, B from the top-r SVD (or QR) of W0, the base replaced by the
            residual; saved as a plain LoRA adapter of rank 2r on the original base
    lorafa  LoRA-FA (Zhang et al. 2023, arXiv 2308.03303): A frozen, only B trains; the memory saved, in bytes
    loraplus  LoRA+ (Hayou et al. 2024, arXiv 2402.12354): B at λ× A's learning rate, PEFT's parameter groups
    vera    VeRA (Kopiczko et al. 2024, arXiv 2310.11454): one frozen random pair A, B shared by all layers,
            trainable λ_d, λ_b per layer: h = W0 x + b + λ_b ⊙ B (λ_d ⊙ A x)  (PEFT's ``VeraConfig``)

This package's ``__init__`` imports nothing: ``lora.layer`` uses ``pissa``'s array functions, and ``dora``
builds on ``lora.layer``.
"""
