"""Settings: the apps (tenants) with their credentials per dialect, limits and policies.

Loaded from TOML (`roomkeeper serve --config FILE.toml`) or built for dev mode.
Every key is documented in docs/configuration.md; an invalid file is refused at
start with a ConfigError naming the key and the reason.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .core.policy import DEFAULT_GIFT_CATALOGUE, AppRules, PolicyError
from .limits import MAX_WS_MESSAGE_BYTES, MAX_WS_WRITE_BUFFER, RATE_LIMIT_DEFAULTS

DEFAULT_TC_REGIONS = ("ap-beijing", "ap-guangzhou", "ap-mumbai", "ap-singapore")


class ConfigError(ValueError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"config error at {key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class TencentCloudCredential:
    secret_id: str
    secret_key: str


@dataclass(frozen=True)
class HuaweiCredential:
    ak: str
    sk: str
    project_id: str


@dataclass(frozen=True)
class LiveKitCredential:
    api_key: str
    api_secret: str


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    format: str            # "native" | "trtc" | "livekit"
    secret: str = ""       # native: HMAC secret; trtc: callback key; livekit: unused (the app's LiveKit key signs)
    api_key: str = ""      # livekit: which LiveKit API key signs (default: the app's first)
    timeout: float = 5.0
    max_attempts: int = 10


@dataclass
class AppConfig:
    sdkappid: int
    name: str = ""
    usersig_key: str = ""
    admins: tuple[str, ...] = ("administrator",)
    native_tokens: tuple[str, ...] = ()
    tc_credentials: tuple[TencentCloudCredential, ...] = ()
    tc_regions: tuple[str, ...] = DEFAULT_TC_REGIONS
    tc_room_not_exist_code: str = "FailedOperation.RoomNotExist"
    huawei_app_id: str = ""
    huawei_credentials: tuple[HuaweiCredential, ...] = ()
    huawei_tokens: tuple[str, ...] = ()
    livekit_credentials: tuple[LiveKitCredential, ...] = ()
    rules: AppRules = field(default_factory=AppRules)
    rate_limits: dict[str, dict[str, float]] = field(default_factory=dict)
    webhooks: tuple[WebhookConfig, ...] = ()

    def rate_limit(self, dialect: str, action: str, default: float | None = None) -> float | None:
        """Requests per second allowed for this action of this app (None: unlimited)."""
        own = self.rate_limits.get(dialect, {})
        if action in own:
            return own[action] or None
        return RATE_LIMIT_DEFAULTS.get(dialect, {}).get(action, default)


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 7580
    data_dir: str | None = None      # None: journal in memory only (dev without --data-dir)
    apps: list[AppConfig] = field(default_factory=list)
    max_ws_message: int = MAX_WS_MESSAGE_BYTES
    max_ws_write_buffer: int = MAX_WS_WRITE_BUFFER
    sweep_interval: float = 1.0
    dev: bool = False


# --- dev mode ------------------------------------------------------------------------------------

DEV_SDKAPPID = 1400000001
DEV_USERSIG_KEY = "roomkeeper-dev-usersig-key"
DEV_ADMIN = "administrator"
DEV_TC_SECRET_ID = "AKIDroomkeeperdev"
DEV_TC_SECRET_KEY = "roomkeeper-dev-secret-key"
DEV_HUAWEI_APP_ID = "roomkeeper-dev-app"
DEV_HUAWEI_AK = "RKDEVAK"
DEV_HUAWEI_SK = "roomkeeper-dev-sk"
DEV_HUAWEI_PROJECT = "roomkeeper-dev-project"
DEV_LIVEKIT_KEY = "devkey"
DEV_LIVEKIT_SECRET = "roomkeeper-dev-livekit-secret-0123456789"
DEV_NATIVE_TOKEN = "roomkeeper-dev-admin-token"
DEV_HUAWEI_TOKEN = "roomkeeper-dev-huawei-token"


def dev_app() -> AppConfig:
    return AppConfig(
        sdkappid=DEV_SDKAPPID,
        name="dev",
        usersig_key=DEV_USERSIG_KEY,
        admins=(DEV_ADMIN,),
        native_tokens=(DEV_NATIVE_TOKEN,),
        tc_credentials=(TencentCloudCredential(DEV_TC_SECRET_ID, DEV_TC_SECRET_KEY),),
        huawei_app_id=DEV_HUAWEI_APP_ID,
        huawei_credentials=(HuaweiCredential(DEV_HUAWEI_AK, DEV_HUAWEI_SK, DEV_HUAWEI_PROJECT),),
        huawei_tokens=(DEV_HUAWEI_TOKEN,),
        livekit_credentials=(LiveKitCredential(DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET),),
        rules=AppRules(gift_catalogue=dict(DEFAULT_GIFT_CATALOGUE)),
    )


def dev_settings(host: str = "127.0.0.1", port: int = 7580, data_dir: str | None = None) -> Settings:
    return Settings(host=host, port=port, data_dir=data_dir, apps=[dev_app()], dev=True)


def dev_banner(settings: Settings) -> str:
    a = settings.apps[0]
    return "\n".join(
        [
            f"roomkeeper dev server on http://{settings.host}:{settings.port} (WebSocket: /ws)",
            "dev credentials (fixed, for development only):",
            f"  SdkAppId {a.sdkappid}; UserSig key {a.usersig_key!r}; App admin {a.admins[0]!r}",
            f"  Tencent Cloud API 3.0: SecretId {DEV_TC_SECRET_ID!r}, SecretKey {DEV_TC_SECRET_KEY!r}",
            f"  Huawei CloudRTC: app_id {DEV_HUAWEI_APP_ID!r}, AK {DEV_HUAWEI_AK!r}, SK {DEV_HUAWEI_SK!r}, "
            f"project id {DEV_HUAWEI_PROJECT!r}, X-Auth-Token {DEV_HUAWEI_TOKEN!r}",
            f"  LiveKit: API key {DEV_LIVEKIT_KEY!r}, secret {DEV_LIVEKIT_SECRET!r}",
            f"  native API (/v1): Authorization: Bearer {DEV_NATIVE_TOKEN}",
        ]
    )


# --- TOML ---------------------------------------------------------------------------------------


class _Reader:
    """Typed access to one TOML table with key paths for error messages; unknown keys are errors."""

    def __init__(self, data: dict[str, Any], path: str) -> None:
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        self.used.add(name)
        if name not in self.data:
            if required:
                raise ConfigError(self.key(name), "is required")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise ConfigError(self.key(name), f"expected {'/'.join(k.__name__ for k in kinds)}, got a boolean")
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds):
            raise ConfigError(
                self.key(name), f"expected {'/'.join(k.__name__ for k in kinds)}, got {type(value).__name__}"
            )
        return value

    def text(self, name: str) -> str:
        """A required, non-empty string (ids and secrets)."""
        value: str = self.get(name, str, required=True)
        if not value:
            raise ConfigError(self.key(name), "must not be empty")
        return value

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        items = self.get(name, list, None)
        if items is None:
            return default
        for i, s in enumerate(items):
            if not isinstance(s, str) or not s:
                raise ConfigError(f"{self.key(name)}[{i}]", "expected a non-empty string")
        return tuple(items)

    def table(self, name: str) -> _Reader:
        return _Reader(self.get(name, dict, {}), self.key(name))

    def tables(self, name: str) -> list[_Reader]:
        items = self.get(name, list, [])
        out = []
        for i, t in enumerate(items):
            if not isinstance(t, dict):
                raise ConfigError(f"{self.key(name)}[{i}]", "expected a table")
            out.append(_Reader(t, f"{self.key(name)}[{i}]"))
        return out

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(self.key(unknown[0]), "unknown key")


def _seconds(r: _Reader, name: str, default: float | None) -> float | None:
    value = r.get(name, (float, int, str), default)
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, str):
        if value.lower() in ("off", "none", "disabled"):
            return None
        units = {"s": 1, "m": 60, "h": 3600}
        try:
            return float(value[:-1]) * units[value[-1]] if value[-1:] in units else float(value)
        except (ValueError, KeyError):
            raise ConfigError(r.key(name), f"expected seconds or a duration like '30m', got {value!r}") from None
    return float(value)


def _seconds_on(r: _Reader, name: str, default: float) -> float:
    """A duration that cannot be switched off."""
    value = _seconds(r, name, default)
    if value is None:
        raise ConfigError(r.key(name), "cannot be off")
    return value


def _rules(r: _Reader) -> AppRules:
    d = AppRules()
    gifts_table = r.get("gifts", dict, None)
    rules = AppRules(
        gift_catalogue=dict(gifts_table) if gifts_table is not None else dict(DEFAULT_GIFT_CATALOGUE),
        call_timeout=_seconds_on(r, "call_timeout", d.call_timeout),
        call_retention=_seconds(r, "call_retention", d.call_retention) or 0.0,
        keepalive=_seconds_on(r, "keepalive", d.keepalive),
        empty_room_timeout=_seconds(r, "empty_room_timeout", d.empty_room_timeout),
        owner_departed_timeout=_seconds(r, "owner_departed_timeout", d.owner_departed_timeout),
        owner_heartbeat_timeout=_seconds(r, "owner_heartbeat_timeout", d.owner_heartbeat_timeout),
        rejoin_lock=_seconds(r, "rejoin_lock", d.rejoin_lock) or 0.0,
        max_room_members=r.get("max_room_members", int, d.max_room_members),
    )
    r.done()
    try:
        rules.validate(prefix=r.path + ".")
    except PolicyError as e:
        raise ConfigError(e.key, e.reason) from None
    return rules


def _rate_limits(r: _Reader, dialect: str) -> dict[str, float]:
    out: dict[str, float] = {}
    known = RATE_LIMIT_DEFAULTS.get(dialect, {})
    for action in list(r.data):
        value = r.get(action, float)
        if value < 0:
            raise ConfigError(r.key(action), "must be >= 0 (0 means unlimited)")
        if known and action not in known:
            raise ConfigError(r.key(action), f"unknown action; known: {', '.join(sorted(known))}")
        out[action] = value
    return out


T = TypeVar("T")


def _checked(r: _Reader, value: T) -> T:
    """`value` read from table `r`, which must hold no other key."""
    r.done()
    return value


def _app(r: _Reader) -> AppConfig:
    sdkappid = r.get("sdkappid", int, required=True)
    if not 1 <= sdkappid <= 4_294_967_295:
        raise ConfigError(r.key("sdkappid"), "must be a positive 32-bit integer")
    app = AppConfig(
        sdkappid=sdkappid,
        name=r.get("name", str, ""),
        usersig_key=r.text("usersig_key"),
        admins=r.strings("admins", ("administrator",)),
        native_tokens=r.strings("native_tokens"),
    )
    limits: dict[str, dict[str, float]] = {}
    tc = r.table("tencentcloud")
    app.tc_credentials = tuple(
        _checked(c, TencentCloudCredential(c.text("secret_id"), c.text("secret_key")))
        for c in tc.tables("credentials")
    )
    app.tc_regions = tc.strings("regions", DEFAULT_TC_REGIONS)
    app.tc_room_not_exist_code = tc.get("room_not_exist_code", str, app.tc_room_not_exist_code)
    if app.tc_room_not_exist_code not in ("FailedOperation.RoomNotExist", "InvalidParameterValue.RoomId"):
        raise ConfigError(
            tc.key("room_not_exist_code"),
            "must be 'FailedOperation.RoomNotExist' or 'InvalidParameterValue.RoomId'",
        )
    limits["tencentcloud"] = _rate_limits(tc.table("rate_limits"), "tencentcloud")
    tc.done()
    im = r.table("imrest")
    limits["imrest"] = _rate_limits(im.table("rate_limits"), "imrest")
    im.done()
    hw = r.table("huawei")
    app.huawei_app_id = hw.get("app_id", str, "")
    app.huawei_credentials = tuple(
        _checked(c, HuaweiCredential(c.text("ak"), c.text("sk"), c.text("project_id")))
        for c in hw.tables("credentials")
    )
    app.huawei_tokens = hw.strings("tokens")
    limits["huawei"] = _rate_limits(hw.table("rate_limits"), "huawei")
    hw.done()
    lk = r.table("livekit")
    app.livekit_credentials = tuple(
        _checked(c, LiveKitCredential(c.text("api_key"), c.text("api_secret")))
        for c in lk.tables("credentials")
    )
    limits["livekit"] = _rate_limits(lk.table("rate_limits"), "livekit")
    lk.done()
    app.rate_limits = limits
    app.rules = _rules(r.table("rules"))
    hooks = []
    for h in r.tables("webhooks"):
        fmt = h.get("format", str, "native")
        if fmt not in ("native", "trtc", "livekit"):
            raise ConfigError(h.key("format"), "must be one of native, trtc, livekit")
        url = h.get("url", str, required=True)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(h.key("url"), "must be an http:// or https:// URL")
        hook = WebhookConfig(
            url=url, format=fmt, secret=h.get("secret", str, ""), api_key=h.get("api_key", str, ""),
            timeout=h.get("timeout", float, 5.0), max_attempts=h.get("max_attempts", int, 10),
        )
        if fmt in ("native", "trtc") and not hook.secret:
            raise ConfigError(h.key("secret"), f"is required for format {fmt!r}")
        if hook.max_attempts < 1:
            raise ConfigError(h.key("max_attempts"), "must be at least 1")
        if not 0 < hook.timeout <= 60:
            raise ConfigError(h.key("timeout"), "must be more than 0 and at most 60 seconds")
        if fmt == "livekit":
            keys = [c.api_key for c in app.livekit_credentials]
            if not keys:
                raise ConfigError(h.key("format"), "livekit webhooks are signed with the app's LiveKit key: "
                                  "add [apps.livekit] credentials")
            if hook.api_key and hook.api_key not in keys:
                raise ConfigError(h.key("api_key"), f"not one of the app's LiveKit API keys ({', '.join(keys)})")
        h.done()
        hooks.append(hook)
    app.webhooks = tuple(hooks)
    r.done()
    return app


def load_settings(path: str | Path) -> Settings:
    try:
        data = tomllib.loads(Path(path).read_text("utf-8"))
    except OSError as e:
        raise ConfigError(str(path), f"cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), f"not valid TOML: {e}") from None
    return settings_from_dict(data)


def settings_from_dict(data: dict[str, Any]) -> Settings:
    root = _Reader(data, "")
    srv = root.table("server")
    settings = Settings(
        host=srv.get("host", str, "127.0.0.1"),
        port=srv.get("port", int, 7580),
        data_dir=srv.get("data_dir", str, None),
        max_ws_message=srv.get("max_ws_message", int, MAX_WS_MESSAGE_BYTES),
        max_ws_write_buffer=srv.get("max_ws_write_buffer", int, MAX_WS_WRITE_BUFFER),
        sweep_interval=srv.get("sweep_interval", float, 1.0),
    )
    if not 0 <= settings.port <= 65535:
        raise ConfigError("server.port", "must be 0..65535")
    if not 1024 <= settings.max_ws_message <= 16 * 1024 * 1024:
        raise ConfigError("server.max_ws_message", "must be 1024..16777216 bytes")
    if not 64 * 1024 <= settings.max_ws_write_buffer <= 1024 * 1024 * 1024:
        raise ConfigError("server.max_ws_write_buffer", "must be 65536..1073741824 bytes")
    if not 0.05 <= settings.sweep_interval <= 60:
        raise ConfigError("server.sweep_interval", "must be 0.05..60 seconds")
    srv.done()
    apps = [_app(a) for a in root.tables("apps")]
    if not apps:
        raise ConfigError("apps", "at least one [[apps]] table is required")
    root.done()
    _check_unique(apps)
    settings.apps = apps
    return settings


def _check_unique(apps: list[AppConfig]) -> None:
    seen: dict[str, str] = {}

    def claim(kind: str, value: str, where: str) -> None:
        k = f"{kind}:{value}"
        if k in seen:
            shown = "" if "token" in kind else f" {value!r}"  # tokens are secrets: never in a message
            raise ConfigError(where, f"{kind}{shown} is already used at {seen[k]}")
        seen[k] = where

    # Each credential names exactly one app: a second use (in any app) is refused at its own key.
    for i, a in enumerate(apps):
        where = f"apps[{i}]"
        claim("sdkappid", str(a.sdkappid), f"{where}.sdkappid")
        for j, c in enumerate(a.tc_credentials):
            claim("tencentcloud secret_id", c.secret_id, f"{where}.tencentcloud.credentials[{j}].secret_id")
        if a.huawei_app_id:
            claim("huawei app_id", a.huawei_app_id, f"{where}.huawei.app_id")
        for j, h in enumerate(a.huawei_credentials):
            claim("huawei ak", h.ak, f"{where}.huawei.credentials[{j}].ak")
        for j, t in enumerate(a.huawei_tokens):
            claim("huawei token", t, f"{where}.huawei.tokens[{j}]")
        for j, lk in enumerate(a.livekit_credentials):
            claim("livekit api_key", lk.api_key, f"{where}.livekit.credentials[{j}].api_key")
        for j, t in enumerate(a.native_tokens):
            claim("native token", t, f"{where}.native_tokens[{j}]")
