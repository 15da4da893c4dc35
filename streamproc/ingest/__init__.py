"""Ingestion: raw Kafka record bytes in, typed events or rejections out."""

from streamproc.ingest.decode import Decoder, Rejection, Source
from streamproc.ingest.events import Click, Feedback, InputEvent, Item, Purchase

__all__ = ["Click", "Decoder", "Feedback", "InputEvent", "Item", "Purchase", "Rejection", "Source"]
