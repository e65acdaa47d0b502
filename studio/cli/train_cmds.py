"""``studio train face|attributes|distill`` and ``studio metrics face``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError

TRAIN_EPILOG = """\
presets: few (about 10-100 images: strong adaptive augmentation, frozen first discriminator
blocks), hundreds (about 100-2000 images), scratch (thousands, training from nothing).
Default: hundreds with --base, scratch without.

examples:
  studio train face --data data/faces --base models/face/default.safetensors --kimg 50 -o mine.safetensors
  studio train face --data data/synth --resolution 64 --preset scratch --kimg 500 -o synth64.safetensors
  studio train face --resume runs/20260101-120000-mine          (continue a stopped run)

Ctrl-C stops cleanly: a checkpoint is written, and --resume continues from it.
Several GPUs: torchrun --nproc_per_node=N -m studio.cli train face ...
"""


def register(subparsers: Any) -> None:
    train = subparsers.add_parser("train", help="train or fine-tune models (face GAN, attributes)",
                                  description="Train models on your own data.")
    tsub = train.add_subparsers(dest="train_command", metavar="WHAT", required=True)
    _register_train_face(tsub)
    _register_train_attributes(tsub)
    _register_train_distill(tsub)
    _register_train_encoder(tsub)
    from studio.cli.refine_cmds import register_train

    register_train(tsub)  # studio train refiner
    from studio.cli.personal_cmds import register_metrics_voice, register_train_voice

    register_train_voice(tsub)

    metrics = subparsers.add_parser("metrics", help="measure a model against a data set")
    msub = metrics.add_subparsers(dest="metrics_command", metavar="WHAT", required=True)
    m = msub.add_parser(
        "face", help="FD, precision/recall (and FID, attribute coverage) of a face model",
        description="Compare a face model's images with a folder of real ones. FD and "
        "precision/recall use the studio's fixed random-feature network (offline; compare "
        "studio models with each other). Standard FID needs pytorch-fid's Inception weights.")
    m.add_argument("--model", type=Path, required=True, help="face model (.safetensors)")
    m.add_argument("--data", type=Path, required=True, help="folder of real face images")
    m.add_argument("--n", type=int, default=1000, help="images per side (default 1000)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--truncation", type=float, default=1.0, metavar="PSI")
    m.add_argument("--inception", type=Path, metavar="PATH",
                   help="pytorch-fid weights pt_inception-2015-12-05-*.pth (default: look in "
                   "the models folders)")
    m.add_argument("--attributes", type=Path, metavar="PATH",
                   help="attribute model for coverage (default: models/metrics/attributes.safetensors)")
    m.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    m.add_argument("--json", action="store_true", help="print the result as JSON")
    m.set_defaults(func=cmd_metrics_face)
    register_metrics_voice(msub)


def _register_train_face(tsub: Any) -> None:
    from studio.train.config import AUGMENT_MODES, DEVICES, PRECISIONS, PRESETS

    p = tsub.add_parser(
        "face", help="train or fine-tune a face GAN (StyleGAN2 with adaptive augmentation)",
        description="Train a face model on a folder of face images (from studio ingest, "
        "studio synth-faces or any PNG/JPG folder), from scratch or fine-tuning a base model.",
        epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, metavar="DATASET_DIR", help="folder of training images")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--base", type=Path, metavar="MODEL", help="face model to fine-tune")
    src.add_argument("--resolution", type=int, metavar="R",
                     help="train from scratch at R px (default: the images' size)")
    p.add_argument("-o", "--output", type=Path, metavar="MODEL.safetensors",
                   help="where to write the trained model")
    p.add_argument("--preset", choices=sorted(PRESETS), help="settings for the data set size")
    p.add_argument("--channel-base", type=int, help="scratch: network width rule (default "
                   "16384 below 512 px; smaller trains faster on a CPU)")
    p.add_argument("--channel-max", type=int, help="scratch: most channels per layer (default 512)")
    p.add_argument("--latent-dim", type=int, help="scratch: size of z and w (default 512)")
    p.add_argument("--kimg", type=float, help="training length in thousands of images")
    p.add_argument("--batch", type=int, help="images per step")
    p.add_argument("--batch-gpu", type=int, help="micro-batch (gradient accumulation)")
    p.add_argument("--lr", type=float, help="learning rate of G and D")
    p.add_argument("--gamma", type=float, help="R1 weight (default: from resolution and batch)")
    p.add_argument("--pl-weight", type=float, help="path-length regularisation (default 0 = off)")
    p.add_argument("--aug", choices=AUGMENT_MODES, help="ada (default), fixed or none")
    p.add_argument("--aug-p", type=float, help="starting (or fixed) augmentation probability")
    p.add_argument("--target", type=float, help="ADA target for sign(D(real)) (default 0.6)")
    p.add_argument("--freeze-d", type=int, help="freeze the first N discriminator blocks")
    p.add_argument("--no-mirror", action="store_true", help="do not add mirrored images")
    p.add_argument("--name", help="model name (default: the output file's name)")
    p.add_argument("--license", help="licence of the trained model (default: the base model's)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=DEVICES)
    p.add_argument("--precision", choices=PRECISIONS, help="auto: bf16 on AMX CPUs and GPUs")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--checkpoint-every", type=int, metavar="IMAGES")
    p.add_argument("--preview-every", type=int, metavar="IMAGES")
    p.add_argument("--fd-samples", type=int, metavar="N",
                   help="images for the Fréchet distance at the end (0 = skip)")
    p.add_argument("--run-dir", type=Path, help="the run folder (default runs/<time>-<name>)")
    p.add_argument("--runs-root", type=Path, help="where new run folders go (default ./runs)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped run")
    p.set_defaults(func=cmd_train_face)


def _register_train_encoder(tsub: Any) -> None:
    p = tsub.add_parser(
        "encoder", help="fit a parameter encoder (renderer parameters -> w) to a face model",
        description="Fit the encoder that maps procedural renderer parameters to w for a "
        "frozen face generator (the default model's parametric controls and the refiner's "
        "training pairs use it). Resumable: run again with the same --run-dir and more "
        "--minutes. Writes RUN_DIR/encoder.safetensors; `studio controls build-default "
        "--encoder` puts it into the default model.")
    p.add_argument("--model", default="models/face/default.safetensors")
    p.add_argument("--run-dir", default="runs/encoder-fit")
    p.add_argument("--minutes", type=float, default=100.0, help="training minutes in all")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--pose-scale", type=float, default=0.4,
                   help="head pose spread the model was trained on (default 0.4)")
    p.set_defaults(func=cmd_train_encoder)


def cmd_train_encoder(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.jobs import Job
    from studio.train.encoder_fit import EncoderFitConfig, fit_encoder_job

    cfg = EncoderFitConfig(model=str(args.model), run_dir=str(args.run_dir),
                           minutes=args.minutes, batch=args.batch, pose_scale=args.pose_scale)
    result = run_job(Job("train encoder", fit_encoder_job, cfg))
    print(f"wrote {result['encoder']} ({result['steps']} steps, held-out loss "
          f"{result['val_loss']:.3f})")
    return 0


def _register_train_attributes(tsub: Any) -> None:
    p = tsub.add_parser(
        "attributes", help="train the attribute regressor on procedural faces",
        description="Train the small CNN that reads hair colour, glasses, smile, ... from "
        "face images, on a folder made by studio synth-faces. Used by studio metrics face "
        "to report a model's attribute coverage.")
    p.add_argument("--data", type=Path, required=True, help="folder from studio synth-faces")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.safetensors")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=64, help="input size in pixels (default 64)")
    p.add_argument("--limit", type=int, help="use at most this many faces")
    p.add_argument("--attributes", help="comma list (default: hair_color,hair_style,glasses,...)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train_attributes)


DISTILL_EPILOG = """\
A run lives in runs/distill-<time>/ (or --run-dir) and writes resumable checkpoints; Ctrl-C
stops cleanly. --resume continues a run with its own network settings; more --minutes
reopens a finished run. The settings marked "resumable" may change between sessions.

examples:
  studio train distill --run-dir runs/distill-main --resolution 64 --channel-base 4096 \\
      --channel-max 256 --batch 8 --minutes 57 --map-minutes 3.5
  studio train distill --resume runs/distill-main --minutes 150 --pose-scale 0.4 \\
      --adv-weight 0.03 --lr-decay-minutes 20
  studio train distill --grow runs/distill-main --run-dir runs/distill-128 --resolution 128
"""


def _register_train_distill(tsub: Any) -> None:
    p = tsub.add_parser(
        "distill", help="distil the procedural face renderer into a face GAN (the default model)",
        description="Teach a StyleGAN2 generator the procedural renderer by regression "
        "(params -> encoder -> synthesis, L1), then fit its mapping network; cheap enough "
        "for a CPU. Makes models/face/default.safetensors.",
        epilog=DISTILL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="models/face/default.safetensors", metavar="MODEL",
                   help="the face model to write (default models/face/default.safetensors)")
    p.add_argument("--resolution", type=int, help="image size in px (default 64; with --grow, "
                   "the new run's size)")
    p.add_argument("--minutes", type=float, default=60.0,
                   help="reconstruction minutes, summed over the sessions of a run (default 60)")
    p.add_argument("--map-minutes", type=float, default=4.0,
                   help="mapping-fit minutes (default 4)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run")
    p.add_argument("--grow", metavar="RUN_DIR",
                   help="start --run-dir at --resolution from this (smaller) run's checkpoint")
    p.add_argument("--run-dir", help="folder for a new run (default runs/distill-<time>)")
    p.add_argument("--batch", type=int, help="images per step (default 16; resumable)")
    p.add_argument("--channel-base", type=int, help="network width rule (default 4096)")
    p.add_argument("--channel-max", type=int, help="most channels per layer (default 256)")
    p.add_argument("--z-dim", type=int, help="size of z (default 256)")
    p.add_argument("--w-dim", type=int, help="size of w (default 256)")
    p.add_argument("--mapping-layers", type=int, help="mapping network depth (default 4)")
    p.add_argument("--lr", type=float, help="learning rate (default 2e-3; resumable)")
    p.add_argument("--beta1", type=float, help="Adam beta1 (default 0.9; resumable)")
    p.add_argument("--fresh-ratio", type=float, help="new renders per trained image, the rest "
                   "is replay (default 1; resumable)")
    p.add_argument("--pose-scale", type=float, help="scale head pose and gaze of the training "
                   "faces (default 1; resumable)")
    p.add_argument("--lr-decay-minutes", type=float, help="cosine-decay the lr to 0.1x over "
                   "the last N minutes (default 0; resumable)")
    p.add_argument("--adv-weight", type=float, help="weight of the patch discriminator's "
                   "loss (default 0: L1 only; resumable)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    p.add_argument("--seed", type=int, help="random seed of a new run (default 0)")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    p.add_argument("--no-samples", action="store_true",
                   help="do not write the <out>_samples.png grid at the end")
    p.set_defaults(func=cmd_train_distill)


# --------------------------------------------------------------------------- handlers


def _face_config(args: argparse.Namespace) -> Any:
    from studio.train.config import TrainConfig

    if args.output is not None and args.output.suffix.lower() != ".safetensors":
        raise StudioError("the output must be a .safetensors file", args.output)
    common = {
        "kimg": args.kimg, "output": str(args.output) if args.output else None,
        "threads": args.threads, "checkpoint_every": args.checkpoint_every,
        "preview_every": args.preview_every, "fd_samples": args.fd_samples,
        "device": args.device, "precision": args.precision, "license": args.license,
        "name": args.name,
    }
    if args.resume is not None:
        from studio.train.loop import resume_config

        fixed = {"data": args.data, "base": args.base, "resolution": args.resolution,
                 "preset": args.preset, "batch": args.batch, "batch_gpu": args.batch_gpu,
                 "lr": args.lr, "gamma": args.gamma, "aug": args.aug, "seed": args.seed,
                 "freeze_d": args.freeze_d, "run_dir": args.run_dir,
                 "channel_base": args.channel_base, "channel_max": args.channel_max,
                 "latent_dim": args.latent_dim}
        given = [k for k, v in fixed.items() if v is not None]
        if given:
            raise StudioError("--resume continues a run with its own settings; drop "
                              + ", ".join("--" + k.replace("_", "-") for k in given))
        return resume_config(args.resume, **common)
    if args.data is None:
        raise StudioError("train face needs --data DATASET_DIR (or --resume RUN_DIR)")
    if args.output is None:
        raise StudioError("train face needs -o MODEL.safetensors")
    preset = args.preset or ("hundreds" if args.base else "scratch")
    name = args.name or args.output.stem
    values = {
        **common, "name": name, "data": str(args.data),
        "base": str(args.base) if args.base else None, "resolution": args.resolution,
        "batch": args.batch, "batch_gpu": args.batch_gpu, "r1_gamma": args.gamma,
        "pl_weight": args.pl_weight, "augment": args.aug, "aug_p": args.aug_p,
        "ada_target": args.target, "freeze_d": args.freeze_d, "seed": args.seed,
        "run_dir": str(args.run_dir) if args.run_dir else None,
        "runs_root": str(args.runs_root) if args.runs_root else None,
    }
    if args.lr is not None:
        values["lr_g"] = values["lr_d"] = args.lr
    scratch = {"channel_base": args.channel_base, "channel_max": args.channel_max,
               "z_dim": args.latent_dim, "w_dim": args.latent_dim}
    if args.base is not None and any(v is not None for v in scratch.values()):
        raise StudioError("--channel-base, --channel-max and --latent-dim are for training from "
                          "scratch; a base model brings its own network")
    values.update(scratch)
    if args.no_mirror:
        values["mirror"] = False
    try:
        return TrainConfig.from_preset(preset, **values).validated()
    except TypeError as exc:
        raise StudioError(f"invalid training settings ({exc})") from None


def cmd_train_face(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.jobs import Job
    from studio.train.loop import train_face_job

    cfg = _face_config(args)
    result = run_job(Job("train face", train_face_job, cfg))
    print(f"wrote {result.model} ({result.images_seen} images seen; run folder {result.run_dir})")
    card = result.model.with_suffix(".md")
    if card.exists():
        print(f"model card {card}, samples {result.model.with_name(result.model.stem + '.samples.png')}")
    if result.metrics:
        print("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items()))
    return 0


def cmd_train_attributes(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.jobs import Job
    from studio.train.evaluate import train_attributes_job

    if args.output.suffix.lower() != ".safetensors":
        raise StudioError("the output must be a .safetensors file", args.output)
    if args.steps < 1 or args.batch < 1 or not 16 <= args.size <= 512:
        raise StudioError("--steps and --batch must be 1 or more, --size between 16 and 512")
    attrs = tuple(a.strip() for a in args.attributes.split(",") if a.strip()) \
        if args.attributes else None
    result = run_job(Job("train attributes", train_attributes_job, args.data, args.output,
                         attributes=attrs, steps=args.steps, batch=args.batch, size=args.size,
                         seed=args.seed, limit=args.limit))
    print(f"wrote {result['model']}")
    for k, v in result.items():
        if k != "model":
            print(f"  {k}: {v:.4g}")
    return 0


def cmd_metrics_face(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.jobs import Job
    from studio.train.evaluate import face_metrics_job

    result = run_job(Job("metrics face", face_metrics_job, args.model, args.data, args.n,
                         seed=args.seed, truncation_psi=args.truncation, inception=args.inception,
                         attributes=args.attributes, device=args.device))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.model}: {result['n_fake']} generated vs {result['n_real']} real images")
    print(f"  FD (random features) {result['fd']:.4f}")
    print(f"  precision {result['precision']:.3f}  recall {result['recall']:.3f}")
    if "fid" in result:
        print(f"  FID (Inception) {result['fid']:.3f}")
    else:
        print("  FID: no Inception weights (pass --inception pt_inception-2015-12-05-*.pth)")
    for key, title in (("coverage", "model"), ("coverage_data", "data")):
        if key in result:
            print(f"  attribute coverage ({title}):")
            for attr, shares in result[key].items():
                parts = ", ".join(f"{k} {v:.2f}" for k, v in shares.items() if v or k == "mean")
                print(f"    {attr}: {parts}")
    return 0


def distill_settings(args: argparse.Namespace) -> Any:
    """The :class:`~studio.train.distill.DistillConfig` that ``args`` ask for."""
    from studio.train.distill import distill_config

    if not Path(args.out).suffix.lower() == ".safetensors":
        raise StudioError("the output must be a .safetensors file", args.out)
    for name in ("minutes", "map_minutes"):
        if getattr(args, name) < 0:
            raise StudioError(f"--{name.replace('_', '-')} must be 0 or more")
    for name in ("resolution", "batch", "channel_base", "channel_max", "z_dim", "w_dim",
                 "mapping_layers", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise StudioError(f"--{name.replace('_', '-')} must be 1 or more")
    if args.resolution is not None and (args.resolution < 8 or args.resolution & (args.resolution - 1)):
        raise StudioError(f"--resolution must be a power of two, 8 or more (got {args.resolution})")
    settings = {k: getattr(args, k) for k in (
        "batch", "channel_base", "channel_max", "z_dim", "w_dim", "mapping_layers", "lr",
        "beta1", "fresh_ratio", "pose_scale", "lr_decay_minutes", "adv_weight", "seed")}
    if args.fp32:
        settings["bf16"] = False
    return distill_config(out=args.out, minutes=args.minutes, map_minutes=args.map_minutes,
                          resume=args.resume, grow=args.grow, run_dir=args.run_dir,
                          resolution=args.resolution, **settings)


def cmd_train_distill(args: argparse.Namespace) -> int:
    import torch

    from studio.cli.progress import run_job
    from studio.core.jobs import Job
    from studio.train.distill import distill_job, write_samples

    cfg = distill_settings(args)
    torch.set_num_threads(args.threads)
    result = run_job(Job("train distill", distill_job, cfg))
    print(f"wrote {result['model']} (run folder {result['run_dir']})")
    training = result["training"]
    print(f"  {training['steps']} steps, {training['images_seen']} images seen, "
          f"{training['minutes']} min, reconstruction loss {training['final_recon_loss']}, "
          f"mapping swd {training['final_mapping_swd']}")
    if not args.no_samples:
        out = Path(result["model"])
        png = out.with_name(out.stem + "_samples.png")
        diversity = write_samples(out, png)
        print(f"samples {png}: " + ", ".join(f"{k} {v:.3f}" for k, v in diversity.items()))
    return 0
