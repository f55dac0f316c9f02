"""Type aliases for the gRPC edge."""

from __future__ import annotations

from typing import Any

import grpc

# A servicer's context; the message types are the method's own, checked by the stubs.
RpcContext = grpc.aio.ServicerContext[Any, Any]
