"""SQLAlchemy tables, one module per table."""

from app.models.api_key import ApiKey
from app.models.base import Base
from app.models.blob import Blob
from app.models.idempotency import IdempotencyRecord
from app.models.image import Image, ThumbnailStatus
from app.models.thumbnail import Thumbnail
from app.models.user import User
from app.models.web_session import WebSession

__all__ = [
    "ApiKey",
    "Base",
    "Blob",
    "IdempotencyRecord",
    "Image",
    "Thumbnail",
    "ThumbnailStatus",
    "User",
    "WebSession",
]
