"""Digital Human Studio: author digital humans offline (faces, voices, animation, video)."""

__version__ = "0.1.0"
