"""asyncotp: Erlang/OTP's actors and supervision trees on asyncio."""

from .actors import *  # noqa: F403 - the top level re-exports the public namespaces
from .actors import __all__ as _actors_all

__all__ = _actors_all
__version__ = "0.1.0"
