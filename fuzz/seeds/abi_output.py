#!/usr/bin/env python3
"""Writes the abi_output seeds: MessagePack responses as the SDK's `rmp_serde::to_vec_named`
encodes them (ABI v1, docs/plugin-abi.md). Run once from fuzz/seeds/; no dependencies."""
import os
import struct


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v < 2**64:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b if len(b) < 256 else b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, (list, tuple)):
        head = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return head + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        head = bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))
        return head + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(v)


record = {
    "timestamp": "2024-06-03T00:00:00.000000000Z",
    "level": "INFO",
    "trader_id": "SAMPLE-007",
    "component": "RiskEngine",
    "message": "Trading state: HALTED",
    "order": {"client_order_id": "O-1", "qty": 0.5, "filled": 3, "tags": ["a", None, True, -7]},
}
seeds = {
    "empty-map": {},
    "records": {"records": [record, {"message": "x"}]},
    "metrics": {"metrics": [
        {"name": "orders_total", "kind": "counter", "value": 1.0, "labels": {"side": "BUY"}},
        {"name": "latency", "kind": "histogram", "value": 0.012},
        {"name": "open", "kind": "gauge_add", "value": -1.0},
    ]},
    "alerts": {"alerts": [
        {"name": "WsDown", "status": "firing", "severity": "critical",
         "labels": {"venue": "BINANCE"}, "annotations": {"summary": "ws down"}},
        {"name": "WsDown", "status": "resolved", "fingerprint": "abcd"},
    ]},
    "logs": {"logs": [{"level": "warn", "message": "slow batch"}, {"level": "trace", "message": ""}]},
    "error": {"error": "bad config", "records": [], "future_key": 1},
    "everything": {
        "records": [record],
        "metrics": [{"name": "g", "kind": "gauge", "value": 2.5}],
        "alerts": [{"name": "A", "status": "firing"}],
        "logs": [{"level": "error", "message": "m"}],
        "error": None,
    },
}
os.makedirs("abi_output", exist_ok=True)
for name, value in seeds.items():
    with open(f"abi_output/{name}.msgpack", "wb") as f:
        f.write(pack(value))
# serde also accepts a struct as an array of its fields, in order.
with open("abi_output/array-form.msgpack", "wb") as f:
    f.write(pack([[record], [], [], [{"level": "info", "message": "hi"}], None]))
