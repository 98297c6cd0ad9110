from .config import Config  # noqa
