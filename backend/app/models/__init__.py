"""SQLAlchemy tables, one module per table."""

from app.models.album import Album, AlbumImage
from app.models.api_key import ApiKey
from app.models.base import Base
from app.models.blob import Blob
from app.models.exif import ImageExif
from app.models.idempotency import IdempotencyRecord
from app.models.image import Image, TagsStatus, ThumbnailStatus, Visibility
from app.models.tag import ImageTag, TagSource
from app.models.thumbnail import Thumbnail
from app.models.user import User
from app.models.web_session import WebSession

__all__ = [
    "Album",
    "AlbumImage",
    "ApiKey",
    "Base",
    "Blob",
    "IdempotencyRecord",
    "Image",
    "ImageExif",
    "ImageTag",
    "TagSource",
    "TagsStatus",
    "Thumbnail",
    "ThumbnailStatus",
    "User",
    "Visibility",
    "WebSession",
]
