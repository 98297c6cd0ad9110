"""Differentiable face recognisers and their registry."""

from .base import Recognizer, RecognizerCfg
from .registry import (
    create_recognizer,
    create_recognizers,
    describe_models,
    describe_recognizer,
    list_recognizers,
    register_recognizer,
)

__all__ = [
    "Recognizer",
    "RecognizerCfg",
    "create_recognizer",
    "create_recognizers",
    "describe_models",
    "describe_recognizer",
    "list_recognizers",
    "register_recognizer",
]
