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
IMAGE_EXIF: Final = f"{IMAGES}/{{image_id}}/exif"

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
# The library's pages (issue 16). An owner's private image is shown through the page
# paths, which take the session cookie (the API never does).
PAGE_IMAGE_FILE: Final = f"{PAGE_IMAGE}/file"
PAGE_IMAGE_THUMBNAIL: Final = f"{PAGE_IMAGE}/thumbnail"
PAGE_IMAGE_EDIT: Final = f"{PAGE_IMAGE}/edit"
PAGE_IMAGE_ALBUM: Final = f"{PAGE_IMAGE}/album"
PAGE_GALLERY_ALBUM: Final = f"{PAGE_GALLERY}/album"
PAGE_GALLERY_DELETE: Final = f"{PAGE_GALLERY}/delete"
PAGE_GALLERY_VISIBILITY: Final = f"{PAGE_GALLERY}/visibility"
PAGE_GALLERY_EXPIRY: Final = f"{PAGE_GALLERY}/expiry"
PAGE_ALBUMS: Final = "/albums"
ALBUM_PAGES: Final = "/a/"
PAGE_ALBUM: Final = f"{ALBUM_PAGES}{{album_id}}"
PAGE_ALBUM_MORE: Final = f"{PAGE_ALBUM}/more"
PAGE_ALBUM_DOWNLOAD: Final = f"{PAGE_ALBUM}/download"
PAGE_ALBUM_EDIT: Final = f"{PAGE_ALBUM}/edit"
PAGE_ALBUM_COVER: Final = f"{PAGE_ALBUM}/cover"
PAGE_ALBUM_REMOVE: Final = f"{PAGE_ALBUM}/remove"
PAGE_ALBUM_DELETE: Final = f"{PAGE_ALBUM}/delete"

# ---- albums API ---------------------------------------------------------------------
ALBUMS: Final = f"{API}/albums"
ALBUM: Final = f"{ALBUMS}/{{album_id}}"
ALBUM_IMAGES: Final = f"{ALBUM}/images"
ALBUM_IMAGE: Final = f"{ALBUM_IMAGES}/{{image_id}}"
ALBUM_DOWNLOAD: Final = f"{ALBUM}/download"

# ---- library API (tags; search is GET /images) --------------------------------------
TAGS: Final = f"{API}/tags"
