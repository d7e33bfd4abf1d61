"""``python -m milvus_lite`` with a real Milvus's keepalive policy, for the test server.

pymilvus pings its channel every 10 s, idle or not. A Milvus cluster accepts that (its gRPC
servers permit a ping every 5 s, with or without calls in flight); Milvus Lite's server keeps
gRPC's default policy (at most one ping without data every 5 minutes) and answers the third idle
ping with GOAWAY "too many pings", which can fail a call that races it. Tests stand in for a
cluster, so their server takes the cluster's policy; the client's own retry of a reset connect
is tested on its own (tests/test_milvus.py).
"""

from __future__ import annotations

from typing import Any

import grpc

MILVUS_KEEPALIVE_POLICY = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5000),
    ("grpc.http2.max_ping_strikes", 0),  # 0: never count strikes
]

_server = grpc.server


def _server_with_policy(*args: Any, options: Any = (), **kwargs: Any) -> grpc.Server:
    return _server(*args, options=[*options, *MILVUS_KEEPALIVE_POLICY], **kwargs)


if __name__ == "__main__":
    grpc.server = _server_with_policy  # milvus_lite builds its server through grpc.server
    from milvus_lite.cmdline import main

    raise SystemExit(main())
