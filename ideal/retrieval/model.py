"""The retriever's trainable model and its checkpoint format: a folder with model.safetensors and config.json
(written by `ideal.training.train.save_checkpoint`; shipped ones in ideal/weights/, see `ideal.checkpoints`)."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..config import Config, config_from_dict
from ..encoders.scene import SceneEncoder


class RetrievalModel(nn.Module):
    """The trainable parts of the retriever: the scene encoder and the text projection head."""

    def __init__(self, cfg: Config, text_dim: int = 384):
        super().__init__()
        self.scene_encoder = SceneEncoder(cfg.scene_encoder, text_dim, text_dim)
        self.text_head = nn.Linear(text_dim, text_dim)
        with torch.no_grad():  # identity: before training, the text side is the plain sentence embedding
            self.text_head.weight.copy_(torch.eye(text_dim))
            self.text_head.bias.zero_()

    def encode_text_features(self, feats: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.text_head(feats), dim=-1)

    def forward(self, text_feats, scene_batch):
        return self.encode_text_features(text_feats), self.scene_encoder(scene_batch)


def load_model(path: str | Path, text_dim: int = 384) -> tuple[RetrievalModel, Config]:
    path = Path(path)
    for name in ("model.safetensors", "config.json"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path}: not a retriever checkpoint (no {name})")
    saved = json.loads((path / "config.json").read_text())
    # the model is defined by its encoder sections; the rest records how it was trained
    cfg = config_from_dict({k: v for k, v in saved.items() if k in ("text_encoder", "scene_encoder")})
    model = RetrievalModel(cfg, text_dim)
    model.load_state_dict(load_file(path / "model.safetensors"))
    return model.eval(), cfg
