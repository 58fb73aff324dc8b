"""Configuration (docs/configuration.md): the example file loads; every refusal names its key and reason."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from roomkeeper.config import (
    DEV_ADMIN,
    DEV_HUAWEI_AK,
    DEV_HUAWEI_APP_ID,
    DEV_HUAWEI_PROJECT,
    DEV_HUAWEI_SK,
    DEV_LIVEKIT_KEY,
    DEV_LIVEKIT_SECRET,
    DEV_SDKAPPID,
    DEV_TC_SECRET_ID,
    DEV_TC_SECRET_KEY,
    DEV_USERSIG_KEY,
    ConfigError,
    dev_banner,
    dev_settings,
    load_settings,
    settings_from_dict,
)
from roomkeeper.core.policy import DEFAULT_GIFT_CATALOGUE, AppRules
from roomkeeper.limits import RATE_LIMIT_DEFAULTS

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "roomkeeper.example.toml"
MINIMAL: dict[str, Any] = {"apps": [{"sdkappid": 1400000009, "usersig_key": "k"}]}


def with_(**paths: Any) -> dict[str, Any]:
    """MINIMAL with some keys set, e.g. with_(**{"apps.0.rules.keepalive": 1})."""
    data = copy.deepcopy(MINIMAL)
    for path, value in paths.items():
        node: Any = data
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[parts[-1]] = value
    return data


def refused(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        settings_from_dict(data)
    assert str(e.value) == f"config error at {e.value.key}: {e.value.reason}"
    return e.value


# --- what loads --------------------------------------------------------------------------------------


def test_the_documented_example_loads() -> None:
    s = load_settings(EXAMPLE)
    assert (s.host, s.port, s.data_dir, s.dev) == ("0.0.0.0", 7580, "/var/lib/roomkeeper", False)
    first, second = s.apps
    assert first.sdkappid == 1400123456 and second.sdkappid == 1400654321
    assert first.admins == ("administrator", "ops-bot") and second.admins == ("administrator",)
    assert first.tc_credentials[0].secret_id == "AKIDexampleexampleexample"
    assert first.tc_regions == ("ap-guangzhou", "ap-singapore")
    assert first.huawei_credentials[0].project_id == "replace-with-the-project-id"
    assert first.rules.owner_departed_timeout == 600 and first.rules.owner_heartbeat_timeout is None
    assert first.rate_limit("imrest", "live_engine_http_srv/get_room_list") == 10
    assert first.webhooks[0].format == "native"
    assert second.rules.empty_room_timeout is None and second.rules.keepalive == 60
    assert second.webhooks[0].api_key == "APIstaging"


def test_the_example_documents_every_key_of_the_reader() -> None:
    text = EXAMPLE.read_text()
    doc = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    for key in ["host", "port", "data_dir", "max_ws_message", "max_ws_write_buffer", "sweep_interval", "sdkappid",
                "name", "usersig_key", "admins", "native_tokens", "regions", "room_not_exist_code", "secret_id",
                "secret_key", "app_id", "tokens", "ak", "sk", "project_id", "api_key", "api_secret", "call_timeout",
                "call_retention", "keepalive", "empty_room_timeout", "owner_departed_timeout",
                "owner_heartbeat_timeout", "rejoin_lock", "max_room_members", "gifts", "url", "format", "secret",
                "timeout", "max_attempts", "rate_limits"]:
        assert key in text, key
        assert f"`{key}`" in doc, key


def test_minimal_app_gets_the_defaults() -> None:
    s = settings_from_dict(MINIMAL)
    assert (s.host, s.port, s.data_dir) == ("127.0.0.1", 7580, None)
    app = s.apps[0]
    assert app.rules == AppRules()
    assert app.rules.gift_catalogue == DEFAULT_GIFT_CATALOGUE
    assert app.admins == ("administrator",) and app.native_tokens == () and app.tc_credentials == ()
    assert app.rate_limit("tencentcloud", "DismissRoom") == RATE_LIMIT_DEFAULTS["tencentcloud"]["DismissRoom"]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(45, 45.0), (45.5, 45.5), ("45", 45.0), ("45s", 45.0), ("2m", 120.0), ("1h", 3600.0), ("0.5m", 30.0)],
)
def test_durations(value: object, seconds: float) -> None:
    rules = settings_from_dict(with_(**{"apps.0.rules.call_retention": value})).apps[0].rules
    assert rules.call_retention == seconds


@pytest.mark.parametrize("off", ["off", "none", "disabled", "OFF"])
def test_timers_that_can_be_off(off: str) -> None:
    rules = settings_from_dict(with_(**{"apps.0.rules.empty_room_timeout": off})).apps[0].rules
    assert rules.empty_room_timeout is None


def test_rate_limit_zero_means_unlimited() -> None:
    app = settings_from_dict(with_(**{"apps.0.tencentcloud.rate_limits.DismissRoom": 0})).apps[0]
    assert app.rate_limit("tencentcloud", "DismissRoom") is None
    assert app.rate_limit("tencentcloud", "RemoveUser") == 20


def test_dev_settings_carry_the_documented_credentials() -> None:
    s = dev_settings()
    assert (s.host, s.port, s.dev) == ("127.0.0.1", 7580, True)
    (app,) = s.apps
    assert (app.sdkappid, app.usersig_key, app.admins) == (DEV_SDKAPPID, DEV_USERSIG_KEY, (DEV_ADMIN,))
    assert (DEV_SDKAPPID, DEV_USERSIG_KEY, DEV_ADMIN) == (1400000001, "roomkeeper-dev-usersig-key", "administrator")
    assert (app.tc_credentials[0].secret_id, app.tc_credentials[0].secret_key) == (
        "AKIDroomkeeperdev", "roomkeeper-dev-secret-key") == (DEV_TC_SECRET_ID, DEV_TC_SECRET_KEY)
    hw = app.huawei_credentials[0]
    assert (app.huawei_app_id, hw.ak, hw.sk, hw.project_id) == (
        "roomkeeper-dev-app", "RKDEVAK", "roomkeeper-dev-sk", "roomkeeper-dev-project") == (
        DEV_HUAWEI_APP_ID, DEV_HUAWEI_AK, DEV_HUAWEI_SK, DEV_HUAWEI_PROJECT)
    lk = app.livekit_credentials[0]
    assert (lk.api_key, lk.api_secret) == ("devkey", "roomkeeper-dev-livekit-secret-0123456789") == (
        DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET)
    banner = dev_banner(s)
    for value in ("1400000001", DEV_USERSIG_KEY, DEV_TC_SECRET_KEY, DEV_HUAWEI_SK, DEV_LIVEKIT_SECRET, DEV_ADMIN):
        assert value in banner


# --- refusals name the key -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key", "reason"),
    [
        # unknown keys, at every level
        ({**MINIMAL, "colour": "blue"}, "colour", "unknown key"),
        (with_(**{"server.hots": "x"}), "server.hots", "unknown key"),
        (with_(**{"apps.0.usersig": "k"}), "apps[0].usersig", "unknown key"),
        (with_(**{"apps.0.rules.keep_alive": 5}), "apps[0].rules.keep_alive", "unknown key"),
        (with_(**{"apps.0.tencentcloud.region": "x"}), "apps[0].tencentcloud.region", "unknown key"),
        (with_(**{"apps.0.tencentcloud.credentials": [{"secret_id": "a", "secret_key": "b", "x": 1}]}),
         "apps[0].tencentcloud.credentials[0].x", "unknown key"),
        (with_(**{"apps.0.webhooks": [{"url": "https://x", "secret": "s", "retries": 1}]}),
         "apps[0].webhooks[0].retries", "unknown key"),
        (with_(**{"apps.0.tencentcloud.rate_limits.FlyRoom": 5}), "apps[0].tencentcloud.rate_limits.FlyRoom",
         "unknown action"),
        # wrong types
        (with_(**{"server.port": "7580"}), "server.port", "expected int, got str"),
        (with_(**{"server.port": True}), "server.port", "got a boolean"),
        (with_(**{"server.host": 127}), "server.host", "expected str"),
        (with_(**{"server.sweep_interval": "1s"}), "server.sweep_interval", "expected float"),
        ({"server": [], **MINIMAL}, "server", "expected dict, got list"),
        ({"apps": {"sdkappid": 1}}, "apps", "expected list"),
        ({"apps": [5]}, "apps[0]", "expected a table"),
        (with_(**{"apps.0.sdkappid": "1400000009"}), "apps[0].sdkappid", "expected int"),
        (with_(**{"apps.0.admins": "administrator"}), "apps[0].admins", "expected list"),
        (with_(**{"apps.0.admins": ["ok", 5]}), "apps[0].admins[1]", "non-empty string"),
        (with_(**{"apps.0.native_tokens": [""]}), "apps[0].native_tokens[0]", "non-empty string"),
        (with_(**{"apps.0.rules.max_room_members": 1.5}), "apps[0].rules.max_room_members", "expected int"),
        (with_(**{"apps.0.rules.call_timeout": [30]}), "apps[0].rules.call_timeout", "expected float/int/str"),
        (with_(**{"apps.0.rules.call_timeout": "soon"}), "apps[0].rules.call_timeout", "duration"),
        (with_(**{"apps.0.rules.call_timeout": ""}), "apps[0].rules.call_timeout", "duration"),
        (with_(**{"apps.0.rules.call_timeout": "off"}), "apps[0].rules.call_timeout", "cannot be off"),
        (with_(**{"apps.0.rules.keepalive": "off"}), "apps[0].rules.keepalive", "cannot be off"),
        (with_(**{"apps.0.rules.gifts": {"rose": "5"}}), "apps[0].rules.gifts.rose", "non-negative integer"),
        (with_(**{"apps.0.rules.gifts": {"rose": 1.5}}), "apps[0].rules.gifts.rose", "non-negative integer"),
        (with_(**{"apps.0.rules.gifts": {"rose": True}}), "apps[0].rules.gifts.rose", "non-negative integer"),
        (with_(**{"apps.0.tencentcloud.rate_limits.DismissRoom": "fast"}),
         "apps[0].tencentcloud.rate_limits.DismissRoom", "expected float"),
        # missing or empty
        ({}, "apps", "at least one"),
        ({"apps": []}, "apps", "at least one"),
        ({"apps": [{"usersig_key": "k"}]}, "apps[0].sdkappid", "is required"),
        ({"apps": [{"sdkappid": 1}]}, "apps[0].usersig_key", "is required"),
        ({"apps": [{"sdkappid": 1, "usersig_key": ""}]}, "apps[0].usersig_key", "must not be empty"),
        (with_(**{"apps.0.tencentcloud.credentials": [{"secret_id": "a"}]}),
         "apps[0].tencentcloud.credentials[0].secret_key", "is required"),
        (with_(**{"apps.0.huawei.credentials": [{"ak": "a", "sk": "", "project_id": "p"}]}),
         "apps[0].huawei.credentials[0].sk", "must not be empty"),
        (with_(**{"apps.0.livekit.credentials": [{"api_key": "k"}]}),
         "apps[0].livekit.credentials[0].api_secret", "is required"),
        (with_(**{"apps.0.webhooks": [{"format": "native", "secret": "s"}]}), "apps[0].webhooks[0].url",
         "is required"),
        (with_(**{"apps.0.webhooks": [{"url": "https://x", "format": "native"}]}), "apps[0].webhooks[0].secret",
         "is required"),
        # out of range
        (with_(**{"server.port": 70000}), "server.port", "0..65535"),
        (with_(**{"server.max_ws_message": 0}), "server.max_ws_message", "1024..16777216"),
        (with_(**{"server.max_ws_write_buffer": 10}), "server.max_ws_write_buffer", "65536.."),
        (with_(**{"server.sweep_interval": 0}), "server.sweep_interval", "0.05..60"),
        (with_(**{"apps.0.sdkappid": 0}), "apps[0].sdkappid", "positive 32-bit"),
        (with_(**{"apps.0.sdkappid": 2**32}), "apps[0].sdkappid", "positive 32-bit"),
        (with_(**{"apps.0.rules.call_timeout": 1}), "apps[0].rules.call_timeout", "between 5 and 600 seconds, got 1"),
        (with_(**{"apps.0.rules.call_timeout": "11m"}), "apps[0].rules.call_timeout", "between 5 and 600"),
        (with_(**{"apps.0.rules.keepalive": 2}), "apps[0].rules.keepalive", "between 5 and 3600"),
        (with_(**{"apps.0.rules.empty_room_timeout": "5m"}), "apps[0].rules.empty_room_timeout",
         "between 600 and 86400"),
        (with_(**{"apps.0.rules.empty_room_timeout": "25h"}), "apps[0].rules.empty_room_timeout", "86400"),
        (with_(**{"apps.0.rules.owner_departed_timeout": "1m"}), "apps[0].rules.owner_departed_timeout",
         "between 120 and 43200"),
        (with_(**{"apps.0.rules.owner_heartbeat_timeout": "13h"}), "apps[0].rules.owner_heartbeat_timeout",
         "43200"),
        (with_(**{"apps.0.rules.rejoin_lock": -1}), "apps[0].rules.rejoin_lock", "0 and 604800"),
        (with_(**{"apps.0.rules.rejoin_lock": "8d"}), "apps[0].rules.rejoin_lock", "duration"),
        (with_(**{"apps.0.rules.call_retention": -5}), "apps[0].rules.call_retention", "negative"),
        (with_(**{"apps.0.rules.max_room_members": -1}), "apps[0].rules.max_room_members", "negative"),
        (with_(**{"apps.0.rules.gifts": {"rose": -1}}), "apps[0].rules.gifts.rose", "non-negative"),
        (with_(**{"apps.0.tencentcloud.rate_limits.DismissRoom": -1}), "apps[0].tencentcloud.rate_limits.DismissRoom",
         ">= 0"),
        (with_(**{"apps.0.tencentcloud.room_not_exist_code": "ResourceNotFound"}),
         "apps[0].tencentcloud.room_not_exist_code", "FailedOperation.RoomNotExist"),
        (with_(**{"apps.0.webhooks": [{"url": "ftp://x", "secret": "s"}]}), "apps[0].webhooks[0].url", "http"),
        (with_(**{"apps.0.webhooks": [{"url": "https://x", "format": "xml", "secret": "s"}]}),
         "apps[0].webhooks[0].format", "native, trtc, livekit"),
        (with_(**{"apps.0.webhooks": [{"url": "https://x", "secret": "s", "max_attempts": 0}]}),
         "apps[0].webhooks[0].max_attempts", "at least 1"),
        (with_(**{"apps.0.webhooks": [{"url": "https://x", "secret": "s", "timeout": 0}]}),
         "apps[0].webhooks[0].timeout", "more than 0"),
        (with_(**{"apps.0.webhooks": [{"url": "https://x", "format": "livekit"}]}),
         "apps[0].webhooks[0].format", "LiveKit"),
    ],
)
def test_invalid_settings_name_the_key_and_the_reason(data: dict[str, Any], key: str, reason: str) -> None:
    e = refused(data)
    assert e.key == key
    assert reason in e.reason


def two_apps(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {"apps": [{"sdkappid": 1400000001, "usersig_key": "a", **first},
                     {"sdkappid": 1400000002, "usersig_key": "b", **second}]}


@pytest.mark.parametrize(
    ("first", "second", "key", "what"),
    [
        ({}, {"sdkappid": 1400000001}, "apps[1].sdkappid", "sdkappid"),
        ({"tencentcloud": {"credentials": [{"secret_id": "AKID1", "secret_key": "x"}]}},
         {"tencentcloud": {"credentials": [{"secret_id": "AKID1", "secret_key": "y"}]}},
         "apps[1].tencentcloud.credentials[0].secret_id", "tencentcloud secret_id"),
        ({"huawei": {"app_id": "hw"}}, {"huawei": {"app_id": "hw"}}, "apps[1].huawei.app_id", "huawei app_id"),
        ({"huawei": {"credentials": [{"ak": "AK", "sk": "1", "project_id": "p"}]}},
         {"huawei": {"credentials": [{"ak": "AK", "sk": "2", "project_id": "q"}]}},
         "apps[1].huawei.credentials[0].ak", "huawei ak"),
        ({"huawei": {"tokens": ["t1"]}}, {"huawei": {"tokens": ["t2", "t1"]}}, "apps[1].huawei.tokens[1]",
         "huawei token"),
        ({"livekit": {"credentials": [{"api_key": "K", "api_secret": "s"}]}},
         {"livekit": {"credentials": [{"api_key": "K", "api_secret": "t"}]}},
         "apps[1].livekit.credentials[0].api_key", "livekit api_key"),
        ({"native_tokens": ["tok"]}, {"native_tokens": ["tok"]}, "apps[1].native_tokens[0]", "native token"),
    ],
)
def test_credentials_belong_to_one_app(first: dict[str, Any], second: dict[str, Any], key: str, what: str) -> None:
    e = refused(two_apps(first, second))
    assert e.key == key
    assert e.reason.startswith(what) and "already used at apps[0]" in e.reason


def test_a_duplicate_token_is_not_printed() -> None:
    e = refused(two_apps({"native_tokens": ["very-secret-token"]}, {"native_tokens": ["very-secret-token"]}))
    assert "very-secret-token" not in str(e)


def test_a_credential_used_twice_in_one_app_is_refused() -> None:
    e = refused(with_(**{"apps.0.livekit.credentials": [{"api_key": "K", "api_secret": "a"},
                                                        {"api_key": "K", "api_secret": "b"}]}))
    assert e.key == "apps[0].livekit.credentials[1].api_key"


def test_files_that_cannot_be_read_or_parsed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path / "missing.toml")
    assert e.value.key.endswith("missing.toml") and "cannot read" in e.value.reason
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport = 1\n")
    with pytest.raises(ConfigError) as e:
        load_settings(bad)
    assert e.value.key == str(bad) and "not valid TOML" in e.value.reason
