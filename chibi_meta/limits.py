"""Every limit chibi_meta enforces, with its default, in one place.

docs/limits.md is the table users read; tests/test_limits.py checks that every
constant here appears there with the same value. Change both together.
"""

from __future__ import annotations

# --- requests and generation -------------------------------------------------------------
MAX_SEED = 2**32 - 1  # seeds are integers in [0, MAX_SEED]
MAX_COUNT = 100_000  # avatars per `generate`/`export` command
MAX_TRUNCATION = 2.0  # truncation psi in [0, MAX_TRUNCATION]

# --- data --------------------------------------------------------------------------------
MAX_IMAGE_BYTES = 32 * 1024 * 1024  # one input image file
MAX_IMAGE_PIXELS = 4096 * 4096  # decoded size of one input image (decompression-bomb guard)
MIN_IMAGE_SIDE = 32  # smaller images are skipped as "tiny"
MAX_ASPECT_RATIO = 2.0  # longer/shorter side; beyond it an image is skipped as "oddly shaped"
MAX_LABELS_BYTES = 64 * 1024 * 1024  # a labels CSV/JSON file

# --- models ------------------------------------------------------------------------------
MAX_CHECKPOINT_BYTES = 512 * 1024 * 1024  # a safetensors file we agree to open
MAX_SAFETENSORS_HEADER = 1024 * 1024  # its JSON header

# --- avatar packaging (chibi_meta.avatar) --------------------------------------------------
MAX_BASE_MESH_BYTES = 16 * 1024 * 1024  # an artist's base mesh GLB (--base-mesh)
MAX_BASE_MESH_JSON_BYTES = 4 * 1024 * 1024  # its glTF JSON chunk
MAX_BASE_MESH_VERTICES = 65_536  # vertices over all its primitives
MAX_BASE_MESH_NODES = 1024  # nodes (bones + meshes)

# --- websocket bridge (chibi_meta.bridge) --------------------------------------------------
WS_MAX_MESSAGE_BYTES = 64 * 1024  # one client message (text or binary frame); past it the server closes with 1009
WS_MAX_ID_CHARS = 128  # the client-chosen request id
WS_MAX_IN_FLIGHT = 32  # unanswered generate requests on one connection
WS_RATE_PER_S = 200  # messages per second per connection (token bucket refill rate)
WS_RATE_BURST = 400  # token bucket size: messages one connection may send at once
WS_MAX_STRIKES = 200  # consecutive rate-limited messages before the server closes the connection (1008)
WS_MAX_CONNECTIONS = 1024  # open websocket connections per server process; past it HTTP 503
WS_MAX_QUEUE_FRAMES = 8  # incoming frames buffered per connection before TCP backpressure
WS_WRITE_LIMIT = 512 * 1024  # outgoing bytes buffered per connection before sends wait
WS_HELLO_TIMEOUT_S = 10.0  # time to send the token in `hello` when no Authorization header came
WS_PING_INTERVAL_S = 20.0  # keepalive ping interval
WS_PING_TIMEOUT_S = 20.0  # a pong must arrive within this, else the connection is closed
WS_OPEN_TIMEOUT_S = 10.0  # opening handshake
WS_CLOSE_TIMEOUT_S = 10.0  # closing handshake
BATCH_MAX_SIZE = 8  # textures per generator forward pass (8, not 32: docs/limits.md)
PACK_THREADS = 1  # threads packing avatars (1, not 2: packing holds the GIL; docs/limits.md)
BATCH_MAX_WAIT_MS = 4.0  # how long the first queued request waits for company
QUEUE_MAX = 256  # generation jobs admitted and not finished (all connections); past it `busy` at once
CACHE_MEMORY_BYTES = 256 * 1024 * 1024  # in-memory LRU of finished assets
CACHE_DISK_BYTES = 4 * 1024 * 1024 * 1024  # optional on-disk cache (--cache-dir), oldest evicted first
SERVER_MALLOC_ARENAS = 2  # glibc malloc arenas of `serve` (unless MALLOC_ARENA_MAX is set): peak RSS -70 MB
SHUTDOWN_GRACE_S = 30.0  # on SIGTERM/SIGINT: time to finish work in flight before closing connections
