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

# --- websocket bridge (chibi_meta.bridge) --------------------------------------------------
