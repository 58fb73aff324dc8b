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
# RemoveUser / RemoveUserByStrRoomId: at most 10 UserIds per request (PROTOCOLS 1.7).
TC_MAX_REMOVE_USER_IDS = 10
# Request bodies of the other dialects are small JSON/protobuf objects; 1 MiB is generous.
SMALL_API_MAX_BODY_BYTES = 1024 * 1024
# Huawei CloudRTC batch-remove-users: the API reference gives no maximum for user_ids; ours.
HUAWEI_MAX_REMOVE_USER_IDS = 100
# The native API's remove-users: at most 1000 user_ids per request (ours, docs/api/native.md).
NATIVE_MAX_REMOVE_USER_IDS = 1000
# The native API's listings (audit log, webhook deliveries): at most 1000 rows per page (ours).
LISTING_MAX_PAGE = 1000

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
# Tencent v4 REST field sizes. TUILiveKit create_room / update_room_info (PROTOCOLS 2.7):
# RoomId up to 48 bytes, RoomName 100, CoverURL 200, Notice 100, at most 3 Category values;
# get_room_list returns at most 20 rooms per page. CallId: the vendor gives no maximum; the
# ids are UUIDs (36 bytes) and the WebSocket protocol takes up to 64, so 64 bytes is ours.
IMREST_MAX_CALL_ID_BYTES = 64
LIVE_ROOM_ID_MAX_BYTES = 48
LIVE_ROOM_NAME_MAX_BYTES = 100
LIVE_COVER_URL_MAX_BYTES = 200
LIVE_NOTICE_MAX_BYTES = 100
LIVE_MAX_CATEGORIES = 3
LIVE_ROOM_LIST_MAX_COUNT = 20
# Huawei CloudRTC: no per-API figure is published; 100/s per app is our default.
HUAWEI_RATE_LIMITS: dict[str, float] = {"dismiss": 100.0, "batch-remove-users": 100.0}
# LiveKit: livekit-server has no RoomService rate limit; 100/s per app per method is ours.
LIVEKIT_RATE_LIMITS: dict[str, float] = {}
LIVEKIT_DEFAULT_RATE = 100.0

# --- LiveKit RoomService (docs/api/livekit.md) ------------------------------------------------
# livekit-server defaults: a room nobody joined closes after 300 s, a room whose last
# participant left closes 20 s later; CreateRoom's 0 means "use the default".
LIVEKIT_DEFAULT_EMPTY_TIMEOUT = 300
LIVEKIT_DEFAULT_DEPARTURE_TIMEOUT = 20
# livekit-server limit.max_metadata_size default: room metadata up to 64,000 bytes (UTF-8).
LIVEKIT_MAX_METADATA_BYTES = 64_000
# A RoomService request is one small protobuf/JSON message.
LIVEKIT_MAX_BODY_BYTES = SMALL_API_MAX_BODY_BYTES

RATE_LIMIT_DEFAULTS: dict[str, dict[str, float]] = {
    "tencentcloud": TENCENTCLOUD_RATE_LIMITS,
    "imrest": IMREST_RATE_LIMITS,
    "huawei": HUAWEI_RATE_LIMITS,
    "livekit": LIVEKIT_RATE_LIMITS,
}

# --- Webhook delivery (docs/webhooks.md) -------------------------------------------------------
# Retries: 2 s after the first failure, doubling, at most 10 minutes apart; the number of
# attempts is per endpoint (`max_attempts`, default 10: about 17 minutes of retries).
# TRTC itself retries for one minute (PROTOCOLS 1.9); ours is longer on purpose.
WEBHOOK_RETRY_BASE = 2.0
WEBHOOK_RETRY_MAX = 600.0
WEBHOOK_POLL_INTERVAL = 1.0            # the delivery task looks for due rows at least this often
WEBHOOK_CONCURRENCY = 16               # requests in flight at once, all endpoints together
WEBHOOK_BATCH = 200                    # rows taken per delivery pass
WEBHOOK_RETENTION = 7 * 86400.0        # delivered / failed rows are kept this long for the API
