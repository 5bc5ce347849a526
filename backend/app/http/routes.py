"""Every route path, written once.

The routers declare their routes with these names, and the code that looks at a path
before routing compares against the same ones: the body cap (which bodies stream), the
rate limiter (which limit a request counts against) and the auth middleware (where the
session cookie counts, and the token endpoint's client authentication)."""

from __future__ import annotations

from typing import Final

API_ROOT: Final = "/api/"  # every API version: none of them takes the session cookie
API: Final = "/api/v1"
STATIC: Final = "/static/"

# ---- accounts API -------------------------------------------------------------------
AUTH_REGISTER: Final = f"{API}/auth/register"
AUTH_LOGIN: Final = f"{API}/auth/login"
AUTH_TOKEN: Final = f"{API}/auth/token"
AUTH_ME: Final = f"{API}/auth/me"
API_KEYS: Final = f"{API}/auth/api-keys"
API_KEY: Final = f"{API_KEYS}/{{key_id}}"

# ---- images API ---------------------------------------------------------------------
IMAGES: Final = f"{API}/images"
IMAGES_UPLOAD: Final = f"{IMAGES}/upload"
IMAGES_BATCH: Final = f"{IMAGES}/batch"
# `image_id` is a convertor that leaves this router's fixed segments (upload, batch) alone.
IMAGE: Final = f"{IMAGES}/{{image_id:image_id}}"
IMAGE_FILE: Final = f"{IMAGES}/{{image_id}}/file"
IMAGE_THUMBNAIL: Final = f"{IMAGES}/{{image_id}}/thumbnail"

# ---- web pages ----------------------------------------------------------------------
PAGE_HOME: Final = "/"
PAGE_UPLOAD: Final = "/upload"
PAGE_LOGIN: Final = "/login"
PAGE_REGISTER: Final = "/register"
PAGE_LOGOUT: Final = "/logout"
IMAGE_PAGES: Final = "/i/"
PAGE_IMAGE: Final = f"{IMAGE_PAGES}{{image_id}}"
PAGE_IMAGE_PREVIEW: Final = f"{PAGE_IMAGE}/preview"
PAGE_IMAGE_TILE: Final = f"{PAGE_IMAGE}/tile"
PAGE_IMAGE_DELETE: Final = f"{PAGE_IMAGE}/delete"
PAGE_GALLERY: Final = "/gallery"
PAGE_GALLERY_MORE: Final = f"{PAGE_GALLERY}/more"
