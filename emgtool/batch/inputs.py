"""Find the recordings of a batch: files, folders, globs and BIDS datasets.

A BIDS dataset (a folder with ``dataset_description.json`` or ``sub-*``
folders) is searched for ``sub-*/[ses-*/]emg/*_emg.{edf,bdf}``; the sites of
each recording come from its sibling ``*_channels.tsv`` (column
``target_muscle``).  Other folders are searched recursively for EDF/BDF files.

Examples
--------
>>> from emgtool.batch.inputs import entities
>>> entities("sub-07_ses-2_task-rest_emg.edf")
{'sub': '07', 'ses': '2', 'task': 'rest'}
"""

from __future__ import annotations

import csv
import glob
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from emgtool.errors import EmgtoolError, EmgtoolWarning

__all__ = ["Item", "discover", "entities", "bids_montage", "folder_name"]

#: Suffixes searched for inside folders (explicit files may be of any readable type).
FOLDER_SUFFIXES = (".edf", ".bdf")
_GLOB_CHARS = set("*?[")
_ENTITY = re.compile(r"(?:^|_)([a-zA-Z]+)-([a-zA-Z0-9]+)")


@dataclass
class Item:
    """One recording to analyse.

    Attributes
    ----------
    path : Path
        Absolute path of the recording.
    subject, session : str
        From BIDS entities (``sub-``, ``ses-``) in the name or the parent
        folders; otherwise the subject is the file stem and the session is "".
    input_kwargs : dict
        Reader options for this file (e.g. ``montage`` from a BIDS channels.tsv).
    """

    path: Path
    subject: str
    session: str = ""
    input_kwargs: dict = field(default_factory=dict)


def entities(name: str) -> dict[str, str]:
    """BIDS key-value entities of a file name (``sub-01_ses-a_emg.edf`` → sub, ses)."""
    stem = name.split(".", 1)[0]
    return {k: v for k, v in _ENTITY.findall(stem)}


def _subject_session(path: Path) -> tuple[str, str]:
    ents = entities(path.name)
    for part in reversed(path.parent.parts[-3:]):
        # BIDS folders sub-XX/ses-YY carry the entities when the name does not.
        for k, v in entities(part).items():
            ents.setdefault(k, v)
    subject = ents.get("sub") or ents.get("subject") or path.stem
    session = ents.get("ses") or ents.get("session") or ents.get("visit") or ""
    return subject, session


def _is_bids_root(folder: Path) -> bool:
    if (folder / "dataset_description.json").is_file():
        return True
    return any(p.is_dir() for p in folder.glob("sub-*/emg")) or any(
        p.is_dir() for p in folder.glob("sub-*/ses-*/emg")
    )


def _channels_tsv(rec: Path) -> Path | None:
    # sub-01_ses-1_task-rest_emg.edf → sub-01_ses-1_task-rest_channels.tsv
    stem = rec.name.split(".", 1)[0]
    if stem.endswith("_emg"):
        cand = rec.with_name(stem[: -len("_emg")] + "_channels.tsv")
        if cand.is_file():
            return cand
    return None


def bids_montage(channels_tsv: str | Path) -> dict | None:
    """Montage dict (see :func:`emgtool.sites.load_montage`) from a BIDS channels.tsv.

    ``target_muscle`` names the muscle; when it has no side, the side comes
    from a ``side``/``laterality`` column or from the channel name.  Rows whose
    muscle is not recognised are left to label parsing, with a warning.
    Returns None when the file has no usable ``target_muscle``.
    """
    from emgtool.sites import parse_label

    path = Path(channels_tsv)
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise EmgtoolError(f"{path}: cannot read channels table: {e}") from None
    if not rows or "name" not in rows[0] or "target_muscle" not in rows[0]:
        return None
    mapping: dict[str, str] = {}
    for row in rows:
        name = (row.get("name") or "").strip()
        muscle = (row.get("target_muscle") or "").strip()
        if not name or not muscle or muscle.lower() == "n/a":
            continue
        if (row.get("type") or "EMG").strip().upper() not in ("EMG", ""):
            continue
        parsed = parse_label(muscle)
        if parsed.site == "unknown":
            warnings.warn(
                f"{path.name}: target_muscle {muscle!r} of channel {name!r} not recognised; "
                "the channel name is used instead",
                EmgtoolWarning,
                stacklevel=2,
            )
            continue
        if parsed.side == "n/a":
            side = (row.get("side") or row.get("laterality") or "").strip()
            side = {"left": "L", "l": "L", "right": "R", "r": "R"}.get(side.lower(), "")
            if not side:
                side = parse_label(name).side
            if side in ("L", "R"):
                muscle = f"{muscle} {side}"
        mapping[name] = muscle
    return {"channels": mapping, "regions": {}} if mapping else None


def _bids_items(root: Path) -> list[Item]:
    items = []
    for pattern in ("sub-*/emg/*_emg.*", "sub-*/ses-*/emg/*_emg.*"):
        for p in sorted(root.glob(pattern)):
            if p.suffix not in FOLDER_SUFFIXES or not p.is_file():
                continue  # BIDS forbids upper-case extensions
            subject, session = _subject_session(p)
            kw = {}
            tsv = _channels_tsv(p)
            if tsv is not None:
                montage = bids_montage(tsv)
                if montage is not None:
                    kw["montage"] = montage
            items.append(Item(p.resolve(), subject, session, kw))
    return items


def _folder_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in FOLDER_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def discover(inputs: list[str | Path], *, exclude: Path | None = None) -> list[Item]:
    """Items for the batch inputs (files, folders, globs, BIDS roots), deduplicated by path.

    Parameters
    ----------
    inputs : list of str or Path
    exclude : Path, optional
        A folder whose contents are never inputs (the output folder).

    Raises
    ------
    EmgtoolError
        If an input does not exist or nothing was found at all.
    """
    found: dict[Path, Item] = {}
    excl = exclude.resolve() if exclude is not None else None

    def add(item: Item) -> None:
        if excl is not None and item.path.is_relative_to(excl):
            return
        found.setdefault(item.path, item)

    def add_file(p: Path) -> None:
        s, ses = _subject_session(p)
        kw = {}
        tsv = _channels_tsv(p)
        if tsv is not None and (m := bids_montage(tsv)) is not None:
            kw["montage"] = m
        add(Item(p.resolve(), s, ses, kw))

    for raw in inputs:
        text = str(raw)
        if any(c in _GLOB_CHARS for c in text) and not Path(text).exists():
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise EmgtoolError(f"{text}: no file matches this pattern")
            paths = [Path(m) for m in matches]
        else:
            paths = [Path(text)]
        for p in paths:
            if p.is_dir():
                if _is_bids_root(p):
                    for it in _bids_items(p):
                        add(it)
                else:
                    for f in _folder_files(p):
                        add_file(f)
            elif p.is_file():
                add_file(p)
            else:
                raise EmgtoolError(f"{p}: no such file or folder")
    if not found:
        raise EmgtoolError(
            "no recordings found in "
            + ", ".join(str(i) for i in inputs)
            + f" (folders are searched for {', '.join(FOLDER_SUFFIXES)})"
        )
    return sorted(found.values(), key=lambda it: str(it.path))


def folder_name(item: Item, sha256: str) -> str:
    """Readable, unique per-file folder name: subject, session, stem and a short content hash."""
    stem = item.path.name.split(".", 1)[0]
    parts = []
    if "sub-" not in stem:
        if item.subject and item.subject != stem:
            parts.append(f"sub-{item.subject}")
        if item.session:
            parts.append(f"ses-{item.session}")
    parts.append(stem)
    parts.append(sha256[:10])
    name = "_".join(parts)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)[:150]
