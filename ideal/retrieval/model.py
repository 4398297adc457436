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

    @property
    def object_level(self) -> bool:
        """Whether the scene side is a vector per object (late interaction) rather than one per scene."""
        return self.scene_encoder.object_level

    def encode_text_features(self, feats: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.text_head(feats), dim=-1)

    def forward(self, text_feats, scene_batch):
        return self.encode_text_features(text_feats), self.scene_encoder(scene_batch)


def load_model(path: str | Path, text_dim: int = 384) -> tuple[RetrievalModel, Config]:
    """A checkpoint folder (model.safetensors + config.json) -> (model in eval mode, its encoder config).
    FileNotFoundError when a file is missing; FormatError naming the file when one cannot be read as the model."""
    from ..scenes.types import FormatError

    path = Path(path)
    for name in ("model.safetensors", "config.json"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path}: not a retriever checkpoint (no {name})")
    try:
        saved = json.loads((path / "config.json").read_text(encoding="utf-8"))
        if not isinstance(saved, dict):
            raise ValueError(f"a JSON object expected, got {type(saved).__name__}")
        # the model is defined by its encoder sections; the rest records how it was trained
        sections = {k: v for k, v in saved.items() if k in ("text_encoder", "scene_encoder")}
        if isinstance(sections.get("scene_encoder"), dict):
            # written before these keys existed: one pooled vector per scene, plain attention
            sections["scene_encoder"] = {"output": "scene", "relation_bias": False, **sections["scene_encoder"]}
        cfg = config_from_dict(sections)
        model = RetrievalModel(cfg, text_dim)
    except (ValueError, TypeError, KeyError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FormatError(path / "config.json", "", f"not a retriever config ({e})") from None
    try:
        model.load_state_dict(load_file(path / "model.safetensors"))
    except Exception as e:  # safetensors' own error type, or a state dict that does not fit the model
        raise FormatError(path / "model.safetensors", "", f"not this retriever's weights "
                          f"({type(e).__name__}: {str(e)[:200]})") from None
    return model.eval(), cfg
