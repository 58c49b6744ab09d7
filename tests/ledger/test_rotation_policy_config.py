"""``[rotation]`` in zhengyin.toml: maximum key ages per seal and per CA, with overrides; anything
misspelt or out of range is refused with the setting named (a policy silently not applied is
no policy)."""

from __future__ import annotations

import pytest

from ledger.config import DEFAULT_CA_MAX_AGE_DAYS, DEFAULT_SEAL_MAX_AGE_DAYS, ConfigError, load_settings


def _settings(tmp_path, text: str, environ: dict | None = None):
    (tmp_path / "zhengyin.toml").write_text(text, encoding="utf-8")
    return load_settings(tmp_path, environ=environ or {})


def test_defaults(tmp_path):
    policy = load_settings(tmp_path, environ={}).rotation
    assert (policy.seal_max_age_days, policy.ca_max_age_days) == (DEFAULT_SEAL_MAX_AGE_DAYS, DEFAULT_CA_MAX_AGE_DAYS)
    assert policy.seal_limit("35010000000001") == 365 and policy.ca_limit("root") == policy.ca_limit("issuing")


def test_file_overrides_and_environment(tmp_path):
    policy = _settings(tmp_path, '[rotation]\nseal_max_age_days = 180\nca_max_age_days = 3650\n'
                                 '[rotation.seals]\n"35010000000002" = 30\n[rotation.ca]\nissuing = 730\n').rotation
    assert policy.seal_limit("35010000000001") == 180 and policy.seal_limit("35010000000002") == 30
    assert policy.ca_limit("root") == 3650 and policy.ca_limit("issuing") == 730
    hash(policy)  # settings stay hashable
    env = {"ZHENGYIN_ROTATION_SEAL_MAX_AGE_DAYS": "90", "ZHENGYIN_ROTATION_CA_MAX_AGE_DAYS": "1000"}
    policy = load_settings(tmp_path, environ=env).rotation
    assert policy.seal_limit("35010000000001") == 90 and policy.ca_limit("root") == 1000
    assert policy.seal_limit("35010000000002") == 30  # a seal's own limit still wins


@pytest.mark.parametrize(("text", "environ", "message"), [
    ("[rotation]\nseal_max_age = 30\n", {}, "unknown setting"),
    ("[rotation]\nseal_max_age_days = 0\n", {}, "seal_max_age_days must be from 1"),
    ("[rotation]\nca_max_age_days = 12.5\n", {}, "whole number"),
    ("[rotation]\nca_max_age_days = true\n", {}, "whole number"),
    ("[rotation]\nseal_max_age_days = 40000\n", {}, "from 1 to"),
    ("[rotation.seals]\nofficial = 30\n", {}, "14-digit esID"),
    ('[rotation.seals]\n"35010000000002" = "soon"\n', {}, "rotation.seals.35010000000002"),
    ("[rotation.ca]\nintermediate = 30\n", {}, "root and issuing"),
    ("rotation = 5\n", {}, "must be a table"),
    ("", {"ZHENGYIN_ROTATION_SEAL_MAX_AGE_DAYS": "a year"}, "whole number"),
])
def test_bad_policy_is_refused_with_the_setting_named(tmp_path, text, environ, message):
    with pytest.raises(ConfigError, match=message):
        _settings(tmp_path, text, environ)
