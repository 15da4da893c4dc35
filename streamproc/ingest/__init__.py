"""Ingestion: raw Kafka record bytes in, typed events or rejections out."""

from streamproc.ingest.decode import Decoded, Decoder, Rejection, Source, TimeBounds
from streamproc.records import Click, Feedback, InputEvent, Item, Purchase

__all__ = ["Click", "Decoded", "Decoder", "TimeBounds", "Feedback", "InputEvent", "Item", "Purchase", "Rejection", "Source"]
