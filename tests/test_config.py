"""ideal/config.py: defaults, then a YAML file, then `a.b=value` overrides; strings coerced to each field's type;
unknown keys refused by name; to_dict and config_from_dict are inverses (also through JSON, as checkpoints save it)."""
import json

import pytest

from ideal.config import Config, DialogConfig, config_from_dict, load_config


def test_defaults():
    assert load_config() == Config()
    assert load_config(None, []) == Config()


def test_file_then_overrides(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("dialog:\n  rounds: 3\n  beta: 1.5\n  memory: coarse\n"
                    "train:\n  sources: [scanrefer]\n  use_gpu: true\ndata:\n  root: data/mine\n")
    cfg = load_config(path, ["dialog.rounds=7", "iat.lam=0.5"])
    assert (cfg.dialog.rounds, cfg.dialog.beta, cfg.dialog.memory) == (7, 1.5, "coarse")  # the override wins
    assert cfg.train.sources == ("scanrefer",) and cfg.train.use_gpu is True and cfg.data.root == "data/mine"
    assert cfg.iat.lam == 0.5
    assert cfg.dialog.lambda1 == DialogConfig().lambda1  # the rest keeps its default
    assert load_config(str(path)) == load_config(path, [])
    (tmp_path / "empty.yaml").write_text("")
    assert load_config(tmp_path / "empty.yaml") == Config()


def test_a_file_value_given_as_a_string_is_coerced_too(tmp_path):
    path = tmp_path / "quoted.yaml"
    path.write_text("dialog:\n  rounds: '4'\n  cot: 'no'\ntrain:\n  sources: 'nr3d,sr3d'\n")
    cfg = load_config(path)
    assert (cfg.dialog.rounds, cfg.dialog.cot, cfg.train.sources) == (4, False, ("nr3d", "sr3d"))


@pytest.mark.parametrize("override, get, expected", [
    ("dialog.rounds=8", lambda c: c.dialog.rounds, 8),
    (" dialog.rounds = 8 ", lambda c: c.dialog.rounds, 8),
    ("dialog.tau=0.2", lambda c: c.dialog.tau, 0.2),
    ("dialog.tau=1", lambda c: c.dialog.tau, 1.0),
    ("dialog.density_eps=1e-8", lambda c: c.dialog.density_eps, 1e-8),
    ("index.ivf_threshold=-1", lambda c: c.index.ivf_threshold, -1),
    ("dialog.memory=coarse", lambda c: c.dialog.memory, "coarse"),
    ("dialog.llm_model=a=b", lambda c: c.dialog.llm_model, "a=b"),  # split at the first '='
    ("dialog.llm=http://localhost:8000/v1", lambda c: c.dialog.llm, "http://localhost:8000/v1"),
    ("dialog.llm=none", lambda c: c.dialog.llm, None),
    ("dialog.llm=null", lambda c: c.dialog.llm, None),
    ("data.root=", lambda c: c.data.root, None),
    ("train.sources=scanrefer,nr3d", lambda c: c.train.sources, ("scanrefer", "nr3d")),
    ("train.sources=sr3d,", lambda c: c.train.sources, ("sr3d",)),
    ("train.sources=", lambda c: c.train.sources, ()),
    *[(f"scene_encoder.use_points={v}", lambda c: c.scene_encoder.use_points, True)
      for v in ("true", "True", "1", "yes")],
    *[(f"dialog.compose={v}", lambda c: c.dialog.compose, False) for v in ("false", "FALSE", "0", "no")],
])
def test_an_override_is_coerced_to_the_fields_type(override, get, expected):
    value = get(load_config(None, [override]))
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("override, error", [
    ("dialog.bogus=1", r"override: unknown config key 'dialog.bogus'; DialogConfig has \[.*'alpha'"),
    ("dialog.Rounds=1", "unknown config key 'dialog.Rounds'"),
    ("bogus.rounds=1", "override: unknown config section 'bogus' in 'bogus.rounds'"),
    ("rounds=1", r"unknown config key 'rounds'; Config has \['data', 'dialog'"),
    ("dialog.rounds", "override 'dialog.rounds': expected section.key=value"),
    ("dialog.rounds=five", "override: dialog.rounds: invalid literal for int"),
    ("dialog.rounds=2.5", "override: dialog.rounds: invalid literal for int"),
    ("dialog.tau=fast", "override: dialog.tau: could not convert string to float"),
    ("train.use_gpu=maybe", "override: train.use_gpu: expected true/false, got 'maybe'"),
])
def test_a_bad_override_names_the_key(override, error):
    with pytest.raises(ValueError, match=error):
        load_config(None, [override])


def test_a_bad_file_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("dialog:\n  roundz: 3\n")
    with pytest.raises(ValueError, match=f"{path}: unknown config key 'dialog.roundz'"):
        load_config(path)
    path.write_text("dialog:\n  rounds: many\n")
    with pytest.raises(ValueError, match=f"{path}: dialog.rounds: invalid literal"):
        load_config(path)
    path.write_text("- dialog.rounds=3\n")
    with pytest.raises(ValueError, match=f"{path}: expected a mapping of config sections"):
        load_config(path)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize("override, error", [
    ("dialog.rounds.x=1", r"override: 'dialog.rounds.x': dialog.rounds is a value, not a config section"),
    ("dialog.rounds.x.y=1", r"'dialog.rounds.x.y': dialog.rounds is a value"),
    ("to_dict.x=1", r"override: unknown config section 'to_dict' in 'to_dict.x'"),  # a method, not a section
    ("dialog.__class__.x=1", r"unknown config section '__class__'"),
])
def test_a_key_below_a_leaf_names_the_key(override, error):
    with pytest.raises(ValueError, match=error):
        load_config(None, [override])


def test_a_key_below_a_leaf_in_a_file_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("dialog:\n  rounds:\n    x: 1\n")
    with pytest.raises(ValueError, match=f"{path}: 'dialog.rounds.x': dialog.rounds is a value"):
        load_config(path)


@pytest.mark.parametrize("set_section", [lambda: config_from_dict({"dialog": 5}),
                                         lambda: config_from_dict({"dialog": "rounds=3"}),
                                         lambda: config_from_dict({"dialog": [1]}),
                                         lambda: load_config(None, ["dialog=3"]),
                                         lambda: load_config(None, ["dialog="])],
                         ids=["dict", "dict-str", "dict-list", "override", "override-empty"])
def test_a_section_is_not_a_value(set_section):
    with pytest.raises(ValueError, match=r"'dialog' is a config section, not a value \(got .*\); "
                                         r"set its keys, e.g. dialog.rounds"):
        set_section()


def test_a_section_given_in_a_file_as_a_value_names_the_file(tmp_path):
    path = tmp_path / "flat.yaml"
    path.write_text("train: 5\n")
    with pytest.raises(ValueError, match=f"{path}: 'train' is a config section, not a value"):
        load_config(path)


def test_an_empty_section_changes_nothing(tmp_path):
    path = tmp_path / "commented.yaml"
    path.write_text("dialog:\n  # rounds: 3\ntrain: {}\n")
    assert load_config(path) == Config()
    assert config_from_dict({"dialog": None, "train": {}}) == Config()


@pytest.mark.parametrize("d, error", [
    ({"dialog": {"rounds": 2.5}}, r"config: dialog.rounds: expected an integer, got 2.5 \(float\)"),
    ({"dialog": {"rounds": [1]}}, r"config: dialog.rounds: expected an integer, got \[1\] \(list\)"),
    ({"dialog": {"rounds": True}}, r"dialog.rounds: expected an integer, got True \(bool\)"),
    ({"dialog": {"rounds": None}}, r"dialog.rounds: expected an integer, got None \(NoneType\)"),
    ({"dialog": {"tau": True}}, r"dialog.tau: expected a number, got True \(bool\)"),
    ({"dialog": {"tau": [0.1]}}, r"dialog.tau: expected a number, got \[0.1\] \(list\)"),
    ({"dialog": {"tau": 10 ** 400}}, r"dialog.tau: int too large to convert to float"),
    ({"dialog": {"cot": 1}}, r"dialog.cot: expected true/false, got 1 \(int\)"),
    ({"dialog": {"cot": None}}, r"dialog.cot: expected true/false, got None"),
    ({"dialog": {"memory": 5}}, r"dialog.memory: expected a string, got 5 \(int\)"),
    ({"dialog": {"memory": None}}, r"dialog.memory: expected a string, got None"),
    ({"dialog": {"llm": 5}}, r"dialog.llm: expected a string or null, got 5 \(int\)"),
    ({"dialog": {"llm": ["http://h/v1"]}}, r"dialog.llm: expected a string or null, got \['http://h/v1'\]"),
    ({"train": {"sources": 5}}, r"train.sources: expected a list, got 5 \(int\)"),
    ({"train": {"sources": {"a": 1}}}, r"'train.sources.a': train.sources is a value, not a config section"),
    ({"train": {"sources": {}}}, r"train.sources: expected a list, got \{\} \(dict\)"),
])
def test_a_value_of_the_wrong_type_names_the_key_and_the_type(d, error):
    with pytest.raises(ValueError, match=error):
        config_from_dict(d)


def test_a_file_value_of_the_wrong_type_names_the_file(tmp_path):
    path = tmp_path / "typed.yaml"
    for text, error in [("dialog:\n  rounds: 2.5\n", "dialog.rounds: expected an integer, got 2.5"),
                        ("dialog:\n  rounds: [1]\n", r"dialog.rounds: expected an integer, got \[1\]"),
                        ("dialog:\n  cot: 2\n", "dialog.cot: expected true/false, got 2"),
                        ("iat:\n  tune: 1\n", "iat.tune: expected a string, got 1")]:
        path.write_text(text)
        with pytest.raises(ValueError, match=f"{path}: {error}"):
            load_config(path)


def test_values_of_the_right_type_from_a_file(tmp_path):
    path = tmp_path / "typed.yaml"
    # an int is a float; `1e-3` is a string in YAML 1.1 and parsed; `yes` is a YAML bool; null/~ is None
    path.write_text("dialog:\n  tau: 1\n  beta: 2.0\n  cot: yes\n  llm: ~\niat:\n  lr: 1e-3\n"
                    "train:\n  sources: []\ndata:\n  root: null\n")
    cfg = load_config(path)
    assert cfg.dialog.tau == 1.0 and type(cfg.dialog.tau) is float and cfg.dialog.beta == 2.0
    assert cfg.dialog.cot is True and cfg.dialog.llm is None and cfg.data.root is None
    assert cfg.iat.lr == 1e-3 and cfg.train.sources == ()


@pytest.mark.parametrize("null", ["null", "none", "None", "NULL", ""])
def test_null_clears_an_optional_field_set_before(tmp_path, null):
    assert load_config(None, ["data.root=x", f"data.root={null}"]).data.root is None
    assert load_config(None, ["dialog.llm=http://h/v1", f"dialog.llm={null}"]).dialog.llm is None
    path = tmp_path / "root.yaml"
    path.write_text("data:\n  root: data/mine\n")
    assert load_config(path, [f"data.root={null}"]).data.root is None
    assert config_from_dict({"data": {"root": "x"}}).data.root == "x"
    assert config_from_dict({"data": {"root": None}}).data.root is None


def test_null_is_a_string_for_a_field_that_is_not_optional():
    assert load_config(None, ["dialog.memory=null"]).dialog.memory == "null"  # refused later by its user, not here
    with pytest.raises(ValueError, match="dialog.rounds: invalid literal for int"):
        load_config(None, ["dialog.rounds=null"])


def test_to_dict_and_config_from_dict_are_inverses():
    cfg = load_config(None, ["dialog.rounds=3", "dialog.llm=http://h/v1", "train.sources=nr3d", "iat.tune=all",
                             "scene_encoder.use_points=true", "data.root=data/x"])
    d = cfg.to_dict()
    assert d["dialog"]["rounds"] == 3 and d["train"]["sources"] == ("nr3d",) and d["data"]["root"] == "data/x"
    assert set(d) == {"data", "text_encoder", "scene_encoder", "train", "index", "dialog", "iat"}
    assert config_from_dict(d) == cfg
    assert config_from_dict(json.loads(json.dumps(d))) == cfg  # tuples come back from JSON lists
    assert config_from_dict(Config().to_dict()) == Config()
    assert config_from_dict({}) == Config()
    partial = config_from_dict({"dialog": {"rounds": 2}})
    assert partial.dialog.rounds == 2 and partial.train == Config().train
    with pytest.raises(ValueError, match="config: unknown config key 'dialog.bogus'"):
        config_from_dict({"dialog": {"bogus": 1}})


def test_to_dict_is_a_copy():
    cfg = Config()
    cfg.to_dict()["dialog"]["rounds"] = 99
    assert cfg.dialog.rounds == DialogConfig().rounds
