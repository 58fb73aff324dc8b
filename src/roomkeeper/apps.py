"""The app directory: find the tenant (and the secret) behind every kind of credential.

Each credential belongs to exactly one app (config checks uniqueness), so a
dialect that authenticated a request knows the only app it may act on.
"""

from __future__ import annotations

from .config import AppConfig, HuaweiCredential, Settings


class AppDirectory:
    def __init__(self, settings: Settings) -> None:
        self.apps: dict[int, AppConfig] = {a.sdkappid: a for a in settings.apps}
        self._tc: dict[str, tuple[AppConfig, str]] = {}
        self._hw_app: dict[str, AppConfig] = {}
        self._hw_ak: dict[str, tuple[AppConfig, HuaweiCredential]] = {}
        self._hw_token: dict[str, AppConfig] = {}
        self._lk: dict[str, tuple[AppConfig, str]] = {}
        self._native: dict[str, AppConfig] = {}
        for a in settings.apps:
            for c in a.tc_credentials:
                self._tc[c.secret_id] = (a, c.secret_key)
            if a.huawei_app_id:
                self._hw_app[a.huawei_app_id] = a
            for h in a.huawei_credentials:
                self._hw_ak[h.ak] = (a, h)
            for t in a.huawei_tokens:
                self._hw_token[t] = a
            for k in a.livekit_credentials:
                self._lk[k.api_key] = (a, k.api_secret)
            for t in a.native_tokens:
                self._native[t] = a

    def by_sdkappid(self, sdkappid: int) -> AppConfig | None:
        return self.apps.get(sdkappid)

    def tc_secret(self, secret_id: str) -> str | None:
        hit = self._tc.get(secret_id)
        return hit[1] if hit else None

    def tc_app(self, secret_id: str) -> AppConfig | None:
        hit = self._tc.get(secret_id)
        return hit[0] if hit else None

    def huawei_app(self, app_id: str) -> AppConfig | None:
        return self._hw_app.get(app_id)

    def huawei_credential(self, ak: str) -> tuple[AppConfig, HuaweiCredential] | None:
        return self._hw_ak.get(ak)

    def huawei_sk(self, ak: str) -> str | None:
        hit = self._hw_ak.get(ak)
        return hit[1].sk if hit else None

    def huawei_token_app(self, token: str) -> AppConfig | None:
        return self._hw_token.get(token)

    def livekit_secret(self, api_key: str) -> str | None:
        hit = self._lk.get(api_key)
        return hit[1] if hit else None

    def livekit_app(self, api_key: str) -> AppConfig | None:
        hit = self._lk.get(api_key)
        return hit[0] if hit else None

    def native_app(self, token: str) -> AppConfig | None:
        return self._native.get(token)
