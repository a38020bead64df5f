"""The output guard: every writer passes what it writes through :func:`guard`, which fails closed.

It looks for token-shaped material (JWTs, bearer/basic credentials, token-bearing query keys, AWS signature
parameters, PEM private keys, cloud access keys). It only knows shapes, so writers must already have replaced
secrets by keyed fingerprints (``fp:...``), which the guard accepts.
"""

from __future__ import annotations

from typing import TypeVar

from apitrail.errors import SecretLeakError
from apitrail.trace.secrets import shapes_in

T = TypeVar("T", str, bytes)


def guard(output: T, where: str = "output") -> T:
    """Return ``output`` unchanged, or raise SecretLeakError naming the kinds found (never the material)."""
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
    kinds = sorted(set(shapes_in(text)))
    if kinds:
        raise SecretLeakError(f"refusing to write {where}: it contains token-shaped material ({', '.join(kinds)})")
    return output


__all__ = ["guard"]
