from pathlib import Path

import pytest

from prosima.models.config import (
    VARIANT_METHOD,
    VARIANTS,
    ConfigError,
    config_from_dict,
    dump_yaml,
    load_config,
    undocumented_fields,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_every_field_is_documented():
    assert undocumented_fields() == []


@pytest.mark.parametrize("name", ["tiny", "encoder", "eval_encoder", "restore"])
def test_shipped_configs_load_and_round_trip(name, tmp_path):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    (tmp_path / "c.yaml").write_text(dump_yaml(cfg))
    assert load_config(tmp_path / "c.yaml") == cfg


def test_the_two_encoders_are_independent():
    sem, ev = load_config(CONFIGS / "encoder.yaml"), load_config(CONFIGS / "eval_encoder.yaml")
    assert sem.seed != ev.seed
    assert sem.encoder.kind != ev.encoder.kind
    assert (sem.encoder.objective, sem.encoder.views) != (ev.encoder.objective, ev.encoder.views)
    assert ev.encoder.views == "geometric"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variants_resolve_loss_weights_conditioning_and_attention(variant):
    cfg = config_from_dict({"variant": variant})
    rule = VARIANTS[variant]
    assert (cfg.loss.lambda1 > 0) == rule["perceptual"]
    assert (cfg.loss.lambda2 > 0) == rule["semantic"]
    assert cfg.fingerprint.use == rule["fingerprint"]
    assert cfg.generator.attention_blocks == rule["attention_blocks"]
    assert VARIANT_METHOD[variant].startswith("unet-" if not rule["attention_blocks"] else "prosima-")


def test_explicit_fields_beat_the_variant_and_paper_defaults_hold():
    cfg = config_from_dict(
        {"variant": "pixel", "loss": {"lambda1": 0.3}, "generator": {"attention_blocks": 1}}
    )
    assert cfg.loss.lambda1 == 0.3 and cfg.generator.attention_blocks == 1
    assert cfg.optim.lr == 1e-4 and cfg.optim.betas == [0.9, 0.999]


def test_overrides_and_errors(tmp_path):
    cfg = load_config(CONFIGS / "tiny.yaml", ["variant=pixel", "train.steps=7", "generator.channels=[4, 8]"])
    assert cfg.variant == "pixel" and cfg.train.steps == 7 and cfg.generator.channels == [4, 8]
    with pytest.raises(ConfigError, match="unknown field"):
        config_from_dict({"variant": "full", "trian": {}})
    with pytest.raises(ConfigError, match="integer"):
        config_from_dict({"variant": "full", "train": {"steps": "many"}})
    with pytest.raises(ConfigError, match="variant"):
        config_from_dict({"task": "restore"})
    with pytest.raises(ConfigError, match="unknown variant"):
        config_from_dict({"variant": "best"})
    with pytest.raises(ConfigError, match="restore"):
        config_from_dict({"task": "encoder", "variant": "full"})
    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"section\.field=value"):
        load_config(None, ["variant"])
