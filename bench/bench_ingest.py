"""Event ingestion speed on the real bags in ../shared/data: events/s per decoder (``StreamDecoder.decode`` per
message as recorded, from message objects and from CDR bytes; ``decode_many`` over the whole stream; and the codec in
bulk over the whole stream's concatenated payload, which shows its throughput without per-call overhead), each path
timed in interleaved pairs against its reference (bench/timing.py): per message against bulk (the share of the
codec's speed a message-by-message decoder keeps; target >= 0.75 on the evt3 bags), ``decode_many`` against per
message + concatenation (the same one batch; target: never slower). Then framing events/s, and for
dvs_msgs/EventArray the speed-up of the package's CDR decoder (StreamDecoder) over rosbags' deserialisation into
per-event objects (on a dvs bag written from real events with the package's writer/encoder; interleaved pairs).

The compiled (numba) kernels are warmed up before each timed region; their first-call cost is reported apart:
compiling (fresh numba cache) and loading from the cache, each in a new process.

Quick mode (``HSTNN_BENCH_QUICK=1``): 3 interleaved pairs (7 in full mode; framing: best of as many) and a smaller
dvs bag.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.timing import compare
from hstnn_ros.bags import BagReader, BagWriter, typestore
from hstnn_ros.perception import events as pev
from hstnn_ros.perception.events.enums import Encoding

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
QUICK = os.environ.get("HSTNN_BENCH_QUICK") == "1"
REPEATS = 3 if QUICK else 7


def _best(fn: Callable[[], Any]) -> tuple[float, Any]:  # (framing)
    """Best wall time of ``REPEATS`` calls after one untimed warm-up call (JIT compile or cache load)."""
    fn()
    best, out = float("inf"), None
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _bulk(msgs: list[Any]) -> Callable[[], pev.Decoded]:
    enc = Encoding(msgs[0].encoding)
    buf = np.concatenate([np.asarray(m.events, np.uint8) for m in msgs])
    if enc is Encoding.EVT3:
        return lambda: pev.decode_evt3(buf, pev.Evt3State())
    if enc is Encoding.LIBCAER_CMP:
        return lambda: pev.decode_libcaer_cmp(buf, 0, pev.LibcaerCmpState())
    if enc is Encoding.LIBCAER:
        return lambda: pev.decode_libcaer(buf, int(msgs[0].time_base))
    return lambda: pev.decode_mono(buf, int(msgs[0].time_base))


def _dvs(batch: pev.EventBatch, tmp: Path) -> dict[str, float]:
    """Write real events as dvs_msgs/EventArray (chunks of ~the driver's packet size), then decode both ways."""
    n_msgs = 40 if QUICK else 200
    chunks = np.array_split(np.arange(min(len(batch), n_msgs * 2500)), n_msgs)
    bag = tmp / "dvs"
    with BagWriter(bag, storage="mcap") as w:
        conn = w.add_connection("/dvs/events", "dvs_msgs/msg/EventArray")
        for c in chunks:
            part = batch.select(c)
            w.write(conn, int(part.t_ns[0]), pev.encode_dvs_event_array(part, frame_id="dvs"))
    with BagReader(bag) as r:
        raws = list(r.messages())
    ts = typestore()
    n = sum(len(c) for c in chunks)

    def numpy_path() -> int:
        dec = pev.StreamDecoder("dvs_msgs/msg/EventArray")
        return sum(len(dec.decode(m.msgtype, m.data)) for m in raws)

    def objects_path() -> int:
        total = 0
        for m in raws:
            msg = ts.deserialize_cdr(m.data, m.msgtype)
            ev = msg.events
            t = np.array([e.ts.sec * 1_000_000_000 + e.ts.nanosec for e in ev], np.int64)
            x = np.array([e.x for e in ev], np.uint16)
            total += len(t) + 0 * len(x)
        return total

    assert numpy_path() == objects_path() == n
    cmp = compare(objects_path, numpy_path, pairs=REPEATS, name_a="rosbags objects", name_b="package decoder")
    return {"events": n, "decoder_mev_s": n / cmp.b.median / 1e6, "rosbags_objects_mev_s": n / cmp.a.median / 1e6,
            "speedup": {"min": cmp.ratio.min, "median": cmp.ratio.median, "max": cmp.ratio.max},
            "timing": cmp.to_dict(), "report": cmp.report()}


_FIRST_CALL = """
import time
import numpy as np
from hstnn_ros.perception import events as pev
b = pev.EventBatch(np.arange(64, dtype=np.int64) * 5000, np.arange(64) % 30, np.arange(64) % 20, np.arange(64) % 2,
                   32, 24)
payloads = [pev.ENCODERS[e](b) for e in ("evt3", "libcaer_cmp", "libcaer")]
dvs = pev.encode_dvs_event_array(b)
t0 = time.perf_counter()
pev.decode_evt3(payloads[0][0], pev.Evt3State())
pev.decode_libcaer_cmp(payloads[1][0], payloads[1][1], pev.LibcaerCmpState())
pev.decode_libcaer(payloads[2][0], payloads[2][1])
pev.StreamDecoder().decode("dvs_msgs/msg/EventArray", dvs)
print(time.perf_counter() - t0)
"""


def _first_call() -> dict[str, float]:
    """Seconds for the first evt3, libcaer_cmp, libcaer and dvs (incl. stream checks) decodes in a new process: with an
    empty numba cache (compile) and again with that cache filled (load)."""
    root = Path(__file__).resolve().parents[1]
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache,
               "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
        for key in ("compile_s", "cached_s"):
            run = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True, text=True,
                                 check=True)
            out[key] = float(run.stdout.split()[-1])
    return out


def _share(cmp: Any) -> dict[str, float]:
    """The per-pair ratio ``time of the reference (B) / time of the path (A)`` as min / median / max: the path's
    speed as a share of the reference's (1 = as fast)."""
    return {"min": 1 / cmp.ratio.max, "median": 1 / cmp.ratio.median, "max": 1 / cmp.ratio.min}


def main() -> dict:
    """Measure and print; returns the numbers."""
    out: dict[str, Any] = {"quick": QUICK, "decoders": {}}
    biggest: pev.EventBatch | None = None
    pev.warm_up()
    for bag in sorted((DATA / "bags").iterdir()):
        with BagReader(bag) as r:
            raws = list(r.messages())
            msgs = [r.deserialize(m) for m in raws]

        def per_message(msgs: list[Any] = msgs) -> list[pev.EventBatch]:
            dec = pev.StreamDecoder()
            return [dec.decode(m) for m in msgs]

        def per_cdr(raws: list[Any] = raws) -> list[pev.EventBatch]:
            dec = pev.StreamDecoder()
            return [dec.decode(m.msgtype, m.data) for m in raws]

        def one_batch(msgs: list[Any] = msgs) -> pev.EventBatch:
            return pev.EventBatch.concat(per_message(msgs))

        batch = one_batch()
        bulk = _bulk(msgs)
        n_bulk = len(bulk().t_ns)
        c_msg = compare(per_message, bulk, pairs=REPEATS, name_a="decode per message", name_b="codec bulk")
        c_cdr = compare(per_cdr, bulk, pairs=REPEATS, name_a="decode per message (CDR)", name_b="codec bulk")
        c_many = compare(lambda msgs=msgs: pev.StreamDecoder().decode_many(msgs), one_batch, pairs=REPEATS,
                         name_a="decode_many", name_b="per message + concat")
        row = {"encoding": msgs[0].encoding, "events": len(batch), "messages": len(msgs),
               "events_per_message": len(batch) / len(msgs),
               "per_message_mev_s": len(batch) / c_msg.a.median / 1e6,
               "per_message_cdr_mev_s": len(batch) / c_cdr.a.median / 1e6,
               "decode_many_mev_s": len(batch) / c_many.a.median / 1e6,
               "bulk_mev_s": n_bulk / c_msg.b.median / 1e6,
               "per_message_share_of_bulk": _share(c_msg), "per_message_cdr_share_of_bulk": _share(c_cdr),
               "decode_many_over_per_message_time": {"min": c_many.ratio.min, "median": c_many.ratio.median,
                                                     "max": c_many.ratio.max},
               "per_message_overhead_us": (c_msg.a.median / len(msgs) - c_msg.b.median / len(msgs)) * 1e6,
               "timings": [c.to_dict() for c in (c_msg, c_cdr, c_many)]}
        out["decoders"][bag.name] = row
        print(f"{bag.name:28s} {row['encoding']:12s} {row['events']:8d} ev ({row['events_per_message']:.0f} ev/msg)  "
              f"Mev/s (medians): per-message {row['per_message_mev_s']:5.1f}  per-message CDR "
              f"{row['per_message_cdr_mev_s']:5.1f}  decode_many {row['decode_many_mev_s']:5.1f}  bulk "
              f"{row['bulk_mev_s']:5.1f}")
        def fmt(d: dict[str, float]) -> str:
            return f"min {d['min']:.3g} / median {d['median']:.3g} / max {d['max']:.3g}"

        print(f"  per-message speed as a share of the codec's bulk speed ({REPEATS} interleaved pairs): objects "
              f"{fmt(row['per_message_share_of_bulk'])}, CDR bytes {fmt(row['per_message_cdr_share_of_bulk'])}")
        print(c_msg.report())
        print(c_many.report())
        if biggest is None or len(batch) > len(biggest):
            biggest = batch
    assert biggest is not None
    edges = pev.split_interval(int(biggest.t_ns[0]), int(biggest.t_ns[-1]) + 1, 9)
    t_fr, _ = _best(lambda: pev.events_to_frames(biggest, edges))
    out["framing_mev_s"] = len(biggest) / t_fr / 1e6
    print(f"framing (9 bins, {biggest.width}x{biggest.height} -> 240x180): {out['framing_mev_s']:.1f} Mev/s")
    with tempfile.TemporaryDirectory() as tmp:
        out["dvs_msgs"] = _dvs(biggest, Path(tmp))
    d = out["dvs_msgs"]
    print(f"dvs_msgs/EventArray ({d['events']} events): package decoder {d['decoder_mev_s']:.1f} Mev/s vs rosbags "
          f"objects {d['rosbags_objects_mev_s']:.2f} Mev/s (medians)")
    print(d.pop("report"))
    out["first_call"] = _first_call()
    print(f"kernels' first call (evt3, libcaer_cmp, libcaer, dvs): compile {out['first_call']['compile_s']:.2f} s, "
          f"from numba's cache {out['first_call']['cached_s']:.3f} s (not in the timings above)")
    return out


if __name__ == "__main__":
    main()
