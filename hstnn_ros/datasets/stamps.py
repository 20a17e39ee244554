"""Timestamps written as text (file names, stamps files, label CSVs, position tables): parsed exactly, never
through a float, so a nanosecond epoch stamp survives a round trip."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from hstnn_ros.datasets.errors import DatasetError

_NS = re.compile(r"^[0-9]{16,}$")  # integer nanoseconds (an epoch stamp in seconds has 10 digits)
_SECONDS = re.compile(r"^[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]{1,3})?$")


def parse_stamp(text: str, where: Path | str) -> int:
    """Nanoseconds of a stamp written as decimal seconds (``1631175418.452437``, also ``1.63e+09`` as
    ``numpy.savetxt`` writes) or as integer nanoseconds (digits only, >= 16 of them), exactly: ``Decimal``, never a
    float. Anything else (signs, NaN, digits finer than 1 ns) is refused naming ``where``."""
    if _NS.fullmatch(text):
        ns = int(text)
    elif _SECONDS.fullmatch(text):
        dec = Decimal(text).as_tuple()  # exact digits and exponent: no context rounding
        mantissa, shift = int("".join(map(str, dec.digits))), int(dec.exponent) + 9
        ns, rest = (mantissa * 10**shift, 0) if shift >= 0 else divmod(mantissa, 10**-shift)
        if rest:
            raise DatasetError(f"{where}: {text!r} has digits finer than 1 ns; round the stamp to nanoseconds")
    else:
        raise DatasetError(f"{where}: {text!r} is not a timestamp (decimal seconds or integer nanoseconds); "
                           "rename it or remove it from the folder")
    if ns >= 2**63:
        raise DatasetError(f"{where}: {text!r} is beyond year 2262 in nanoseconds; not a timestamp")
    return ns


def format_stamp(t_ns: int) -> str:
    """``t_ns`` as decimal seconds with 9 digits (exact)."""
    return f"{t_ns // 1_000_000_000}.{t_ns % 1_000_000_000:09d}"
