"""Every limit in one place, each with where it comes from.

Dialects and the gateway read these; the configuration can override the
per-app rate limits (see docs/configuration.md).
"""

from __future__ import annotations

# --- HTTP ---------------------------------------------------------------------------------
# Tencent Cloud API 3.0: POST with TC3 up to 10 MB, v1 POST 1 MB, GET 32 KB (PROTOCOLS 1.8).
MAX_BODY_BYTES = 10 * 1024 * 1024
TC3_MAX_POST_BYTES = 10 * 1024 * 1024
V1_MAX_POST_BYTES = 1024 * 1024
TC_MAX_GET_BYTES = 32 * 1024
# Request bodies of the other dialects are small JSON/protobuf objects; 1 MiB is generous.
SMALL_API_MAX_BODY_BYTES = 1024 * 1024

# --- WebSocket sessions ----------------------------------------------------------------------
MAX_WS_MESSAGE_BYTES = 64 * 1024       # one client message; larger -> close 1009
MAX_WS_WRITE_BUFFER = 1024 * 1024      # unread bytes queued to one client before it is cut off
SESSION_MESSAGES_PER_SECOND = 50.0     # per session; a burst of SESSION_MESSAGE_BURST is allowed
SESSION_MESSAGE_BURST = 100

# --- Clock windows (PROTOCOLS 1.3, 3.2, 4.2) -------------------------------------------------
TC_TIMESTAMP_TOLERANCE = 300           # Tencent Cloud API: 5 minutes either way
HUAWEI_DATE_TOLERANCE = 900            # Huawei API gateway: 15 minutes
LIVEKIT_JWT_LEEWAY = 60                # livekit protocol's token verifier

# --- Per-app rate limits, requests per second (documented vendor defaults) -------------------
# Tencent Cloud API 3.0 TRTC room actions: 20/s each (PROTOCOLS 1.7).
TENCENTCLOUD_RATE_LIMITS: dict[str, float] = {
    "DismissRoom": 20.0,
    "DismissRoomByStrRoomId": 20.0,
    "RemoveUser": 20.0,
    "RemoveUserByStrRoomId": 20.0,
}
# Tencent v4 REST: end_call 200/s, live_engine 200/s except get_room_list 10/s (PROTOCOLS 2.6, 2.7).
IMREST_RATE_LIMITS: dict[str, float] = {
    "call_engine_http_srv/end_call": 200.0,
    "call_engine_http_srv/get_call_info": 200.0,
    "live_engine_http_srv/destroy_room": 200.0,
    "live_engine_http_srv/create_room": 200.0,
    "live_engine_http_srv/get_room_info": 200.0,
    "live_engine_http_srv/update_room_info": 200.0,
    "live_engine_http_srv/get_room_list": 10.0,
}
# Huawei CloudRTC: no per-API figure is published; 100/s per app is our default.
HUAWEI_RATE_LIMITS: dict[str, float] = {"dismiss": 100.0, "batch-remove-users": 100.0}
# LiveKit: livekit-server has no RoomService rate limit; 100/s per app per method is ours.
LIVEKIT_RATE_LIMITS: dict[str, float] = {}
LIVEKIT_DEFAULT_RATE = 100.0

RATE_LIMIT_DEFAULTS: dict[str, dict[str, float]] = {
    "tencentcloud": TENCENTCLOUD_RATE_LIMITS,
    "imrest": IMREST_RATE_LIMITS,
    "huawei": HUAWEI_RATE_LIMITS,
    "livekit": LIVEKIT_RATE_LIMITS,
}
