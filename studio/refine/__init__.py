"""Diffusion refiners: polish a GAN frame (or any image) with a diffusion model.

Two backends behind one interface (:class:`studio.refine.base.Refiner`):

- the studio's default refiner (:mod:`studio.refine.pixel`): a pixel-space diffusers
  ``UNet2DModel`` conditioned on the frame upsampled to the output size (concatenated to the
  noisy input), predicting the residual over that upsampled frame; DDIM or DPM-Solver++;
- the user's Stable Diffusion 1.x (:mod:`studio.refine.sd`): img2img (SDEdit) from a
  diffusers folder or a single ``.safetensors`` checkpoint, loaded offline.

:mod:`studio.refine.job` runs either as a job with per-step progress and cancel; the CLI, the
GUI and the renderer all refine through it. No Qt here.
"""
