"""Face: StyleGAN2 networks, the face model file, the render engine and the model registry.

Submodules import torch; this package itself stays light so that the model registry and the
command line can be imported quickly.
"""
