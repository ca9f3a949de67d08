"""The extension SDK: what an extension author imports. No Qt (children never pay for it).

>>> from symphony.sdk import Extension
>>> extension = Extension()
>>> @extension.request("echo", idempotent=True)
... def echo(ctx):
...     return ctx.params
>>> extension.capabilities()["methods"]
{'echo': {'idempotent': True, 'stream': False}}

Run a folder with ``python -m symphony.sdk.runner <folder> --fd N`` (see
:mod:`symphony.sdk.runner`); the protocol underneath is :mod:`symphony.protocol`.
"""

from __future__ import annotations

from symphony.protocol.errors import (
    DeadlineExceededError,
    InvalidParamsError,
    ProtocolError,
    RequestCancelledError,
    RequestError,
)
from symphony.sdk.extension import (
    Extension,
    MethodSpec,
    ProgressReporter,
    Reply,
    RequestContext,
)

__all__ = [
    "DeadlineExceededError",
    "Extension",
    "InvalidParamsError",
    "MethodSpec",
    "ProgressReporter",
    "ProtocolError",
    "Reply",
    "RequestCancelledError",
    "RequestContext",
    "RequestError",
]
