"""Reads the records of an offline W&B run (`run-*.wandb`), the file `wandb sync` uploads.

wandb 0.31 keeps config and summary of an offline run only inside this log (no
config.yaml), so tests read it the way wandb's own reader did: a LevelDB-style log of
protobuf `Record`s in 32 KiB blocks.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32768
FILE_HEADER = 7  # ":W&B", magic 0xBEE1, version
RECORD_HEADER = 7  # crc32 (4), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[Any]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run log"
    records, pending, offset = [], b"", FILE_HEADER
    while offset + RECORD_HEADER <= len(data):
        room = BLOCK - offset % BLOCK
        if room < RECORD_HEADER:
            offset += room
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + RECORD_HEADER])
        chunk = data[offset + RECORD_HEADER : offset + RECORD_HEADER + length]
        offset += RECORD_HEADER + length
        if kind == 0 and length == 0:
            continue  # zero padding at the end of a block
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def run_contents(path: Path) -> dict[str, Any]:
    """Run identity, config, per-step history rows and the final summary of one run."""
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    run: dict[str, str] = {}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = {
                "group": record.run.run_group,
                "name": record.run.display_name,
                "project": record.run.project,
                "job_type": record.run.job_type,
            }
            config.update({i.key: json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
    return {"run": run, "config": config, "history": history, "summary": summary}


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)
