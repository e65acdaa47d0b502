"""Training loops as jobs: the face GAN (StyleGAN2 with adaptive augmentation), its quality
metrics, and the attribute regressor used to check what a model covers.

No Qt here (rule 1). Long work is a job (rule 3): :func:`train_face_job` yields
:class:`~studio.core.jobs.Progress` events, honours cancel and pause, and writes resumable
checkpoints (rule 6) loaded with ``torch.load(weights_only=True)`` (rule 5).
"""

from studio.train.config import PRESETS, TrainConfig

__all__ = ["PRESETS", "TrainConfig", "train_face_job"]


def __getattr__(name: str):  # torch-heavy modules load on first use
    if name == "train_face_job":
        from studio.train.loop import train_face_job

        return train_face_job
    raise AttributeError(name)
