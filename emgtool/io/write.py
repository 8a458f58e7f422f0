"""Writers: EDF/EDF+/BDF through edfio, and CSV in emgtool's documented dialect.

Used by ``emgtool simulate``, exports and the tests.  Each channel gets a
physical range from its own data (symmetric, with a small margin), so the
quantisation step is ``range / 65535`` (EDF, 16 bit) or ``range / 16777215``
(BDF, 24 bit).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from emgtool.recording import Recording

__all__ = ["write_edf", "write_csv", "physical_range_uv"]


def physical_range_uv(data: np.ndarray, margin: float = 1.02) -> tuple[float, float]:
    """Symmetric physical range covering ``data`` (µV); at least ±1 µV."""
    finite = data[np.isfinite(data)]
    peak = float(np.max(np.abs(finite))) if finite.size else 1.0
    peak = max(peak * margin, 1.0)
    # Round up to 3 significant digits so the 8-character EDF field holds it.
    exp = np.floor(np.log10(peak)) - 2
    peak = float(np.ceil(peak / 10**exp) * 10**exp)
    return (-peak, peak)


def edf_labels(labels: list[str]) -> list[str]:
    """Labels that fit EDF's 16-character field, unique, with a visible warning when cut.

    A cut label could name another muscle ("Thoracic paraspinals L" → "Thoracic paraspi"
    loses the side), so the side and electrode number are kept at the end.
    """
    import re
    import warnings

    from emgtool.errors import EmgtoolWarning

    out: list[str] = []
    for lab in labels:
        new = lab
        if len(lab) > 16:
            m = re.search(r"(\s+(?:[LR]|left|right))?(\s+\d+)?$", lab, flags=re.IGNORECASE)
            tail = m.group(0) if m else ""
            new = lab[: 16 - len(tail)].rstrip() + tail if len(tail) < 12 else lab[:16]
            new = new[:16]
        base, k = new, 2
        while new in out:
            suffix = f"~{k}"
            new = base[: 16 - len(suffix)] + suffix
            k += 1
        if new != lab:
            warnings.warn(
                f"EDF labels hold 16 characters: channel {lab!r} is written as {new!r}",
                EmgtoolWarning,
                stacklevel=3,
            )
        out.append(new)
    return out


def write_edf(
    path: str | Path,
    rec: Recording,
    *,
    annotations: Iterable[tuple[float, float, str]] = (),
    bdf: bool | None = None,
    patient: str | None = None,
    record_s: float = 1.0,
) -> None:
    """Write ``rec`` as EDF+ (or BDF+ if ``bdf`` or the suffix is ``.bdf``).

    Parameters
    ----------
    annotations : iterable of (onset_s, duration_s, text)
        Written as EDF+ annotations (shown by EDF viewers).
    patient : str, optional
        Patient identification field in EDF+ form (``"X X X X"`` if None, i.e. anonymous).
    record_s : float
        Data-record duration.  The recording is padded with its last value to a
        whole number of records only if needed; prefer lengths that divide evenly.
    """
    import edfio

    path = Path(path)
    if bdf is None:
        bdf = path.suffix.lower() == ".bdf"
    sig_cls = edfio.BdfSignal if bdf else edfio.EdfSignal
    dig = (-(2**23), 2**23 - 1) if bdf else (-32768, 32767)
    n_rec_samples = int(round(record_s * rec.fs))
    n = rec.n_samples
    pad = (-n) % n_rec_samples if n_rec_samples else 0
    labels = edf_labels([c.label for c in rec.channels])
    signals = []
    for i in range(rec.n_channels):
        x = rec.data[i].astype(np.float64)
        x = np.where(np.isfinite(x), x, 0.0)
        if pad:
            x = np.concatenate([x, np.full(pad, x[-1] if n else 0.0)])
        signals.append(
            sig_cls(
                x,
                rec.fs,
                label=labels[i],
                physical_dimension="uV",
                physical_range=physical_range_uv(x),
                digital_range=dig,
                transducer_type="AgAgCl electrode",
            )
        )
    anns = [
        edfio.EdfAnnotation(float(o), float(d) if d else None, str(t)) for o, d, t in annotations
    ]
    kwargs = {}
    if rec.start_time is not None:
        kwargs["starttime"] = rec.start_time.time().replace(microsecond=0)
    edf_cls = edfio.Bdf if bdf else edfio.Edf
    edf = edf_cls(signals, annotations=anns, data_record_duration=record_s, **kwargs)
    if patient is not None:
        edf.patient = edfio.Patient(name=patient.replace(" ", "_"))
    if rec.start_time is not None:
        try:
            edf.startdate = rec.start_time.date()
        except Exception:  # edfio refuses dates outside 1985-2084; keep its default
            pass
    edf.write(path)


def write_csv(
    path: str | Path, rec: Recording, *, time_column: bool = True, decimals: int = 3
) -> None:
    """Write ``rec`` as CSV: header ``time_s,<label> (uV),…``, one row per sample."""
    path = Path(path)
    header = (["time_s"] if time_column else []) + [f"{c.label} (uV)" for c in rec.channels]
    cols = [rec.data.T.astype(np.float64)]
    fmt = [f"%.{decimals}f"] * rec.n_channels
    if time_column:
        cols.insert(0, (np.arange(rec.first_sample, rec.stop_sample) / rec.fs)[:, None])
        fmt.insert(0, "%.6f")
    arr = np.hstack(cols)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(header) + "\n")
        np.savetxt(fh, arr, delimiter=",", fmt=fmt)
