"""The scaling study: compute (FLOPs) of both generator families per preset, from their configs alone.

:mod:`handx.scaling.flops` counts training and sampling FLOPs of the diffusion denoiser, the FSQ tokenizer and the
prefix LM analytically; ``tests/test_flops.py`` checks every preset against :mod:`torch.utils.flop_counter`.
"""
