"""Train the retriever with Ray Train (`TorchTrainer`; gloo on CPU, NCCL on GPU).

    python jobs/train.py                                  # the base retriever: default config, 1 worker, local Ray
    python jobs/train.py --num-workers 2 --out runs/base
    python jobs/train.py --stage iat --init ideal/weights/base --out runs/iat     # Interaction Adaptation Tuning
    python jobs/train.py --stage iat --init ideal/weights/base --set iat.roles=llm --set dialog.llm=smollm2
    ray job submit --working-dir . -- python jobs/train.py --num-workers 4 --set train.use_gpu=true
    ray job submit --working-dir . -- python jobs/train.py --stage iat --init ideal/weights/base --set iat.use_gpu=true

IAT first runs simulated dialogs over the TRAINING scenes (OUT/interaction_texts/*.parquet, kept across runs),
then tunes from --init with L = λ·L_dis + (1−λ)·L_div (config section `iat`). Embeddings are gathered across
workers with their gradients (ideal.training.distributed.gather_with_grad), so the softmax over scenes and
L_div's pairs span the global batch, exactly as with one worker.

Checkpoints go to OUT/ray/<name>/ after every epoch; running the same command again resumes from the
last one; so does the run itself when it loses a worker (its process or its node), up to train.max_failures
times. The final weights are copied to OUT/final (model.safetensors + config.json), then evaluated statically on
the dev split next to the bag-of-labels floor.

The base retriever trains on the benchmark's train split plus `train.extra_scenes` new scenes described
`train.passes` times (`ideal.scenes.synthetic_train`, generated beside the benchmark on first use; val and dev are
never among them).
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import ray
import ray.train
import ray.train.torch
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from ideal import build
from ideal.config import config_from_dict, load_config
from ideal.encoders.scene import LabelBank
from ideal.evaluate import static_table
from ideal.training.interaction_texts import generate_interaction_texts, iat_arrays, read_interaction_texts
from ideal.scenes import load_synthetic
from ideal.scenes.synthetic import generate
from ideal.scenes.synthetic_train import training_set
from ideal.training.data import TrainArrays, build_train_arrays
from ideal.training.train import fit, save_checkpoint


def train_loop(config: dict) -> None:
    """Runs on every Ray Train worker: the plain `fit` loop with DDP and Ray checkpoints.

    prepare_model puts the model on this worker's device (ray.train.torch.get_device()); `fit` sends each
    batch to wherever the model is, so the same loop runs on CPU and GPU workers.
    """
    cfg = config_from_dict(config["cfg"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    arrays = TrainArrays.load(config["arrays"])

    def report(metrics, model, optimizer, state):
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if rank == 0:
                save_checkpoint(tmp, model, optimizer, cfg, state)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint)

    def run(resume_from):
        fit(cfg, arrays, resume_from=resume_from, rank=rank, world=world, prepare=ray.train.torch.prepare_model,
            report=report, stop_after_epoch=config.get("stop_after_epoch"), progress=rank == 0,
            stage=config.get("stage", "base"), init_from=config.get("init"))

    checkpoint = ray.train.get_checkpoint()  # the run's latest: after a lost worker, or a resubmitted job
    if checkpoint is None:
        run(None)
    else:
        with checkpoint.as_directory() as d:
            if rank == 0:
                epoch = json.loads((Path(d) / "state.json").read_text())["epoch"]
                print(f"resuming after epoch {epoch + 1} from {checkpoint.path}", flush=True)
            run(d)


def run_trainer(cfg, arrays_path: str, storage: Path, name: str, stop_after_epoch=None, stage: str = "base",
                init=None):
    """Fit on Ray Train; a run with the same storage/name resumes from its latest checkpoint."""
    tc = cfg.train if stage == "base" else cfg.iat
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={"cfg": cfg.to_dict(), "arrays": arrays_path, "stop_after_epoch": stop_after_epoch,
                           "stage": stage, "init": None if init is None else str(Path(init).resolve())},
        scaling_config=ScalingConfig(num_workers=tc.num_workers, use_gpu=tc.use_gpu),
        run_config=RunConfig(name=name, storage_path=str(storage.resolve()),
                             checkpoint_config=CheckpointConfig(num_to_keep=2),
                             failure_config=FailureConfig(max_failures=cfg.train.max_failures)),
    )
    return trainer.fit()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", help="YAML config file")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, repeatable; e.g. train.use_gpu=true (with --stage iat: iat.use_gpu=true)")
    ap.add_argument("--num-workers", type=int, help="Ray Train workers (= train.num_workers; with --stage iat, iat.num_workers)")
    ap.add_argument("--stage", default="base", choices=["base", "iat"], help="what to train")
    ap.add_argument("--init", help="IAT: the checkpoint folder to start from (e.g. ideal/weights/base)")
    ap.add_argument("--out", default=None, help="run folder (default runs/<stage>)")
    ap.add_argument("--name", default=None, help="Ray Train run name (default: the stage)")
    args = ap.parse_args(argv)
    if args.stage == "iat" and not args.init:
        ap.error("--stage iat needs --init CKPT (the retriever to adapt, e.g. ideal/weights/base)")
    section = "train" if args.stage == "base" else "iat"
    overrides = args.set + ([f"{section}.num_workers={args.num_workers}"] if args.num_workers else [])
    cfg = load_config(args.config, overrides)
    out = Path(args.out or f"runs/{args.stage}")
    out.mkdir(parents=True, exist_ok=True)

    root = generate(cfg.data.synthetic_root(), cfg.data.scenes, cfg.data.seed)
    points = cfg.scene_encoder.points_per_object if cfg.scene_encoder.use_points else 0
    tc = cfg.train  # IAT too asks its questions about these training scenes
    train_ds = training_set(root, cfg.data.scenes, cfg.data.seed, tc.extra_scenes, tc.passes, points)
    text = build.text_encoder(cfg.text_encoder)
    bank = LabelBank(text.embed_backbone)
    if args.stage == "iat":
        saved = json.loads((Path(args.init) / "config.json").read_text())
        base_cfg = config_from_dict({k: saved[k] for k in ("text_encoder", "scene_encoder") if k in saved})
        cfg.scene_encoder, cfg.text_encoder = base_cfg.scene_encoder, base_cfg.text_encoder  # the model being tuned
    arrays = build_train_arrays(train_ds, text, bank, cfg.scene_encoder, cfg.train.sources, cache_dir=Path("cache"))
    if args.stage == "iat":
        retriever = build.retriever(args.init, text)
        shards = generate_interaction_texts(train_ds, retriever, text, cfg, out / "interaction_texts")
        table = read_interaction_texts(shards)
        arrays = iat_arrays(arrays, table, text)
    arrays_path = str((out / "train_arrays.npz").resolve())
    arrays.save(arrays_path)
    print(f"training ({args.stage}) on {len(arrays.text_feats)} texts of {len(arrays.scene_ids)} scenes")

    ray.init(ignore_reinit_error=True)
    started = time.time()
    result = run_trainer(cfg, arrays_path, out / "ray", args.name or args.stage, stage=args.stage, init=args.init)
    print(f"training wall time {time.time() - started:.1f} s")
    final = out / "final"
    shutil.rmtree(final, ignore_errors=True)
    final.mkdir(parents=True)
    with result.checkpoint.as_directory() as d:
        for name in ("model.safetensors", "config.json", "state.json"):
            shutil.copy(Path(d) / name, final / name)
    print(f"final weights: {final}")

    if args.stage == "iat":
        return  # IAT is judged in dialog: python jobs/eval.py --iat-weights OUT/final
    # dev: where training choices are made (val is only reported, by jobs/eval.py)
    dev_ds = load_synthetic(root, "dev", points_per_object=points)
    table, results = static_table(dev_ds, text, final)
    print(f"static retrieval on dev ({len(dev_ds.scenes)} scenes)\n{table}")
    (out / "static_dev.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
