"""SQLAlchemy tables, one module per table."""

from app.models.base import Base
from app.models.blob import Blob
from app.models.idempotency import IdempotencyRecord
from app.models.image import Image, ThumbnailStatus
from app.models.thumbnail import Thumbnail

__all__ = ["Base", "Blob", "IdempotencyRecord", "Image", "Thumbnail", "ThumbnailStatus"]
