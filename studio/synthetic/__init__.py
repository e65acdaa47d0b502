"""Procedural faces with labelled attributes: the default training data of the face GAN.

No face dataset ships with the studio, so the default GAN learns from stylised, shaded
avatar faces rendered here. :mod:`params` defines the labelled parameters,
:mod:`renderer` draws them in batches with torch, :mod:`dataset` writes image folders
with labels as a job.
"""

from studio.synthetic.params import (
    PARAM_NAMES,
    PARAM_SPECS,
    VOCABULARIES,
    Uniform,
    default_params,
    params_to_vector,
    sample_params,
    vector_to_params,
)

__all__ = [
    "PARAM_NAMES",
    "PARAM_SPECS",
    "VOCABULARIES",
    "Uniform",
    "default_params",
    "params_to_vector",
    "sample_params",
    "vector_to_params",
]
