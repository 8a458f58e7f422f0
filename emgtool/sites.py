"""Body-site vocabulary: channel labels → (site, side, region).

People label EMG channels in many ways: ``"EMG Biceps L"``, ``"L-Biceps"``,
``"biceps_left"``, ``"Tibialis anterior R"``, ``"TA-R"``, ``"EMG R APB"``,
``"Gastroc med R"``, or grid labels ``"Biceps L 01"`` … ``"Biceps L 64"``.
:func:`parse_label` turns each into a :class:`~emgtool.recording.Channel`
with a canonical site name, a side and one of the four regions of the
El Escorial / Awaji / Gold Coast criteria (bulbar, cervical, thoracic,
lumbosacral).  An unknown label keeps region ``"unknown"`` and is never
dropped.

The muscle table (:data:`MUSCLES`) is data, so users can move a muscle to
another region in a montage file (e.g. SCM or trapezius to ``bulbar``).
Region assignments follow ../shared/docs/domain.md section 3.

Examples
--------
>>> from emgtool.sites import parse_label
>>> c = parse_label("EMG R APB")
>>> (c.site, c.side, c.region)
('abductor_pollicis_brevis', 'R', 'cervical')
>>> parse_label("Biceps L 07").electrode
7
"""

from __future__ import annotations

import re
import tomllib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emgtool.errors import ConfigError, EmgtoolWarning
from emgtool.recording import Channel

__all__ = [
    "REGIONS",
    "MUSCLES",
    "Muscle",
    "parse_label",
    "parse_site",
    "assign_sites",
    "parse_sites_option",
    "load_montage",
    "unit_scale_to_uv",
]

REGIONS = ("bulbar", "cervical", "thoracic", "lumbosacral")


@dataclass(frozen=True)
class Muscle:
    """One row of the vocabulary."""

    site: str
    name: str
    region: str
    aliases: tuple[str, ...]
    nerve: str = ""
    roots: str = ""


# Aliases are matched on normalised words (lower case, '-', '_', '.' → space).
# Longer aliases are tried first, so "rectus femoris" wins over "rf" etc.
MUSCLES: tuple[Muscle, ...] = (
    Muscle(
        "tongue",
        "Tongue (genioglossus)",
        "bulbar",
        ("tongue", "genioglossus", "gg"),
        "hypoglossal (XII)",
    ),
    Muscle("masseter", "Masseter", "bulbar", ("masseter", "mas"), "trigeminal (V3)"),
    Muscle(
        "suprahyoid",
        "Suprahyoid (digastric, mylohyoid)",
        "bulbar",
        ("suprahyoid", "digastric", "mylohyoid", "geniohyoid", "dig", "mh"),
        "V3 / VII / C1",
    ),
    Muscle(
        "facial",
        "Facial muscles",
        "bulbar",
        (
            "facial",
            "orbicularis oris",
            "orbicularis oculi",
            "frontalis",
            "mentalis",
            "nasalis",
            "zygomaticus",
            "buccinator",
            "oris",
            "oculi",
        ),
        "facial (VII)",
    ),
    Muscle(
        "sternocleidomastoid",
        "Sternocleidomastoid",
        "cervical",
        ("sternocleidomastoid", "scm", "sternomastoid"),
        "accessory (XI)",
        "C2-C3",
    ),
    Muscle(
        "trapezius",
        "Upper trapezius",
        "cervical",
        ("upper trapezius", "trapezius", "trap", "tra", "ut"),
        "accessory (XI)",
        "C3-C4",
    ),
    Muscle(
        "deltoid",
        "Deltoid",
        "cervical",
        ("deltoid", "deltoideus", "delt", "del"),
        "axillary",
        "C5-C6",
    ),
    Muscle(
        "biceps",
        "Biceps brachii",
        "cervical",
        ("biceps brachii", "biceps", "bic", "bb"),
        "musculocutaneous",
        "C5-C6",
    ),
    Muscle(
        "triceps",
        "Triceps brachii",
        "cervical",
        ("triceps brachii", "triceps", "tric", "tb"),
        "radial",
        "C6-C8",
    ),
    Muscle(
        "brachioradialis",
        "Brachioradialis",
        "cervical",
        ("brachioradialis", "br"),
        "radial",
        "C5-C6",
    ),
    Muscle(
        "flexor_carpi_radialis",
        "Flexor carpi radialis",
        "cervical",
        ("flexor carpi radialis", "fcr"),
        "median",
        "C6-C7",
    ),
    Muscle(
        "flexor_carpi_ulnaris",
        "Flexor carpi ulnaris",
        "cervical",
        ("flexor carpi ulnaris", "fcu"),
        "ulnar",
        "C7-T1",
    ),
    Muscle(
        "forearm_flexors",
        "Forearm flexors",
        "cervical",
        (
            "forearm flexors",
            "forearm flexor",
            "flexor digitorum superficialis",
            "flexor digitorum profundus",
            "flexors",
            "fds",
            "fdp",
        ),
        "median / ulnar",
        "C7-T1",
    ),
    Muscle(
        "extensor_carpi_radialis",
        "Extensor carpi radialis",
        "cervical",
        ("extensor carpi radialis", "ecr"),
        "radial",
        "C6-C7",
    ),
    Muscle(
        "extensor_digitorum",
        "Extensor digitorum (communis)",
        "cervical",
        ("extensor digitorum communis", "extensor digitorum", "edc", "ed"),
        "posterior interosseous",
        "C7-C8",
    ),
    Muscle(
        "forearm_extensors",
        "Forearm extensors",
        "cervical",
        ("forearm extensors", "forearm extensor", "extensor carpi ulnaris", "extensors", "ecu"),
        "radial",
        "C7-C8",
    ),
    Muscle(
        "first_dorsal_interosseous",
        "First dorsal interosseous",
        "cervical",
        ("first dorsal interosseous", "1st dorsal interosseous", "fdi", "1di"),
        "ulnar",
        "C8-T1",
    ),
    Muscle(
        "abductor_pollicis_brevis",
        "Abductor pollicis brevis",
        "cervical",
        ("abductor pollicis brevis", "apb", "thenar"),
        "median",
        "C8-T1",
    ),
    Muscle(
        "abductor_digiti_minimi",
        "Abductor digiti minimi (hand)",
        "cervical",
        ("abductor digiti minimi", "adm", "adq", "hypothenar"),
        "ulnar",
        "C8-T1",
    ),
    Muscle(
        "cervical_paraspinals",
        "Cervical paraspinals",
        "cervical",
        ("cervical paraspinals", "cervical paraspinal", "cervical psp", "psp c"),
        "dorsal rami",
        "C",
    ),
    # Plain "paraspinals" means thoracic (the usual EMG site, e.g. T10) unless a level says otherwise.
    Muscle(
        "thoracic_paraspinals",
        "Thoracic paraspinals",
        "thoracic",
        (
            "thoracic paraspinals",
            "thoracic paraspinal",
            "thoracic psp",
            "erector spinae",
            "paraspinals",
            "paraspinal",
            "tps",
            "psp t",
            "psp",
        ),
        "dorsal rami",
        "T",
    ),
    Muscle(
        "lumbar_paraspinals",
        "Lumbar paraspinals",
        "lumbosacral",
        (
            "lumbar paraspinals",
            "lumbar paraspinal",
            "lumbosacral paraspinals",
            "lumbar psp",
            "multifidus",
            "psp lumbar",
        ),
        "dorsal rami",
        "L",
    ),
    Muscle(
        "rectus_abdominis",
        "Rectus abdominis",
        "thoracic",
        ("rectus abdominis", "rectus abd", "abdominis", "abdomen", "ra"),
        "intercostal",
        "T7-T12",
    ),
    Muscle(
        "iliopsoas", "Iliopsoas", "lumbosacral", ("iliopsoas", "psoas", "ip"), "femoral", "L2-L3"
    ),
    Muscle(
        "vastus_lateralis",
        "Vastus lateralis",
        "lumbosacral",
        ("vastus lateralis", "vastus lat", "vl"),
        "femoral",
        "L2-L4",
    ),
    Muscle(
        "vastus_medialis",
        "Vastus medialis",
        "lumbosacral",
        ("vastus medialis", "vastus med", "vm", "vmo"),
        "femoral",
        "L2-L4",
    ),
    Muscle(
        "rectus_femoris",
        "Rectus femoris",
        "lumbosacral",
        ("rectus femoris", "rf"),
        "femoral",
        "L2-L4",
    ),
    Muscle(
        "quadriceps",
        "Quadriceps",
        "lumbosacral",
        ("quadriceps", "quads", "quad"),
        "femoral",
        "L2-L4",
    ),
    Muscle(
        "hamstrings",
        "Hamstrings",
        "lumbosacral",
        (
            "hamstrings",
            "hamstring",
            "hams",
            "biceps femoris",
            "semitendinosus",
            "semimembranosus",
            "bf",
            "st",
            "sm",
        ),
        "sciatic",
        "L5-S2",
    ),
    Muscle(
        "tibialis_anterior",
        "Tibialis anterior",
        "lumbosacral",
        ("tibialis anterior", "tib ant", "tibant", "ta"),
        "deep peroneal",
        "L4-L5",
    ),
    Muscle(
        "gastrocnemius_medial",
        "Gastrocnemius (medial head)",
        "lumbosacral",
        (
            "gastrocnemius medialis",
            "medial gastrocnemius",
            "gastrocnemius medial",
            "gastroc med",
            "med gastroc",
            "gastroc medial",
            "gasmed",
            "mg",
        ),
        "tibial",
        "S1-S2",
    ),
    Muscle(
        "gastrocnemius_lateral",
        "Gastrocnemius (lateral head)",
        "lumbosacral",
        (
            "gastrocnemius lateralis",
            "lateral gastrocnemius",
            "gastrocnemius lateral",
            "gastroc lat",
            "lat gastroc",
            "gastroc lateral",
            "gaslat",
            "gl",
            "lg",
        ),
        "tibial",
        "S1-S2",
    ),
    Muscle(
        "gastrocnemius",
        "Gastrocnemius",
        "lumbosacral",
        ("gastrocnemius", "gastroc", "gastro", "gcm", "gas", "calf"),
        "tibial",
        "S1-S2",
    ),
    Muscle("soleus", "Soleus", "lumbosacral", ("soleus", "sol"), "tibial", "S1-S2"),
    Muscle(
        "extensor_hallucis_brevis",
        "Extensor hallucis brevis",
        "lumbosacral",
        ("extensor hallucis brevis", "ehb"),
        "deep peroneal",
        "L5-S1",
    ),
    Muscle(
        "extensor_digitorum_brevis",
        "Extensor digitorum brevis",
        "lumbosacral",
        ("extensor digitorum brevis", "edb"),
        "deep peroneal",
        "L5-S1",
    ),
    Muscle(
        "abductor_hallucis",
        "Abductor hallucis",
        "lumbosacral",
        ("abductor hallucis", "abh", "ah"),
        "medial plantar (tibial)",
        "S1-S2",
    ),
    # "ADM" alone is the hand muscle; the foot one must say so.
    Muscle(
        "abductor_digiti_minimi_foot",
        "Abductor digiti minimi (foot)",
        "lumbosacral",
        (
            "abductor digiti minimi pedis",
            "abductor digiti minimi foot",
            "adm pedis",
            "adm foot",
            "adq pedis",
            "adq foot",
        ),
        "lateral plantar (tibial)",
        "S1-S2",
    ),
    Muscle(
        "gluteus_maximus",
        "Gluteus maximus",
        "lumbosacral",
        ("gluteus maximus", "glut max", "gmax"),
        "inferior gluteal",
        "L5-S2",
    ),
)

_BY_SITE = {m.site: m for m in MUSCLES}
# (alias words, muscle), longest alias first.
_ALIASES = sorted(
    ((tuple(a.split()), m) for m in MUSCLES for a in (*m.aliases, m.site.replace("_", " "))),
    key=lambda t: (-len(" ".join(t[0])), t[0]),
)
_SIDE_WORDS = {
    "l": "L",
    "left": "L",
    "lt": "L",
    "sin": "L",
    "r": "R",
    "right": "R",
    "rt": "R",
    "dex": "R",
}
_NOISE_WORDS = {"emg", "semg", "hdemg", "hd", "ch", "chan", "channel", "m", "muscle", "musculus"}


# "(uV)", "[mV]": a unit in brackets, dropped; other bracketed text ("(L)") is kept.
_UNIT_BRACKETS = re.compile(
    r"[(\[]\s*(?:[uµμmn]?v|micro ?volts?|milli ?volts?|volts?)\s*[)\]]", re.I
)

# Words that name a muscle ambiguously; they need --sites or a montage.
_AMBIGUOUS = {"gm": "gastrocnemius medialis or gluteus maximus"}


def _words(label: str) -> list[str]:
    s = _UNIT_BRACKETS.sub(" ", label)
    s = re.sub(r"[()\[\]]", " ", s)
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", s)  # camelCase → words
    s = re.sub(r"[-_./:,;|]+", " ", s.lower())
    # "ta01" → "ta 01", but keep ordinals and "1di" whole ("1st dorsal interosseous").
    s = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])(?!(?:st|nd|rd|th|di)\b)", " ", s)
    return s.split()


# Spinal levels ("T10", "L4", "C6") next to a paraspinal muscle name the level,
# not a side and an electrode number.
_PARASPINAL = re.compile(r"paraspin|psp|erector|multifid", re.I)
_LEVEL = re.compile(r"(?<![a-z])([ctls])(\d{1,2})(?![\d])", re.I)
_LEVEL_SITE = {
    "c": "cervical_paraspinals",
    "t": "thoracic_paraspinals",
    "l": "lumbar_paraspinals",
    "s": "lumbar_paraspinals",
}


def parse_label(label: str, *, warn: bool = False) -> Channel:
    """Parse one channel label into a :class:`Channel`.

    Parameters
    ----------
    label : str
        The channel label from the file.
    warn : bool
        Emit an :class:`~emgtool.errors.EmgtoolWarning` when the muscle is not recognised.
    """
    level_site = None
    text = label
    if _PARASPINAL.search(label):
        m = _LEVEL.search(_UNIT_BRACKETS.sub(" ", label))
        if m:
            level_site = _LEVEL_SITE[m.group(1).lower()]
            text = _UNIT_BRACKETS.sub(" ", label)
            text = text[: m.start()] + " " + text[m.end() :]
    words = _words(text)
    side = "n/a"
    electrode: int | None = None
    rest: list[str] = []
    for w in words:
        if w in _SIDE_WORDS:
            side = _SIDE_WORDS[w]
        elif w.isdigit():
            electrode = int(w)
        elif w not in _NOISE_WORDS:
            rest.append(w)
    # Re-attach single-letter words that are part of an alias ("psp t", "1di").
    site, region = "unknown", "unknown"
    for alias, m in _ALIASES:
        n = len(alias)
        for i in range(len(rest) - n + 1):
            if tuple(rest[i : i + n]) == alias:
                site, region = m.site, m.region
                break
        if site != "unknown":
            break
    if site == "unknown":
        # "ta" may have been eaten as nothing; also try the words joined ("tibant").
        joined = "".join(rest)
        for alias, m in _ALIASES:
            if "".join(alias) == joined and joined:
                site, region = m.site, m.region
                break
    if level_site and site in _LEVEL_SITE.values():
        site, region = level_site, _BY_SITE[level_site].region
    if site == "unknown" and warn:
        amb = [f"{w!r} may mean {_AMBIGUOUS[w]}" for w in rest if w in _AMBIGUOUS]
        warnings.warn(
            f"channel {label!r}: muscle not recognised{' (' + '; '.join(amb) + ')' if amb else ''}; "
            "kept with region 'unknown' (give --sites or --montage to name it)",
            EmgtoolWarning,
            stacklevel=2,
        )
    return Channel(label=label, site=site, side=side, region=region, electrode=electrode)


def parse_site(
    text: str, label: str | None = None, regions: dict[str, str] | None = None
) -> Channel:
    """Parse a user-given site name (``"Biceps L"``) for the channel ``label``.

    Raises :class:`~emgtool.errors.ConfigError` if the muscle is unknown, because
    a site the user typed must be understood exactly.
    """
    ch = parse_label(text)
    if ch.site == "unknown":
        raise ConfigError(
            f"unknown site {text!r}; known muscles: " + ", ".join(m.site for m in MUSCLES)
        )
    region = (regions or {}).get(ch.site, ch.region)
    return Channel(
        label=label or text, site=ch.site, side=ch.side, region=region, electrode=ch.electrode
    )


def parse_sites_option(text: str) -> list[str]:
    """Split a ``--sites "Biceps L,Biceps R,…"`` option into names."""
    items = [s.strip() for s in text.split(",")]
    if not items or any(not s for s in items):
        raise ConfigError(f"--sites: empty name in {text!r}; expected e.g. 'Biceps L,Biceps R'")
    return items


def assign_sites(
    labels: Sequence[str],
    sites: Sequence[str] | str | None = None,
    *,
    montage: dict | None = None,
    warn: bool = True,
) -> tuple[Channel, ...]:
    """Channels for ``labels``: parsed from the labels, or from ``sites`` / a montage.

    ``sites`` gives one site per channel, in channel order (a comma-separated
    string is accepted).  ``montage`` is the dict returned by
    :func:`load_montage`; it maps labels to sites and may move muscles to
    other regions.
    """
    if isinstance(sites, str):
        sites = parse_sites_option(sites)
    if sites is not None:
        if len(sites) != len(labels):
            raise ConfigError(
                f"--sites lists {len(sites)} sites but the recording has {len(labels)} channels "
                f"({', '.join(labels)})"
            )
        return tuple(parse_site(s, lab) for s, lab in zip(sites, labels, strict=True))
    if montage is not None:
        regions = montage.get("regions", {})
        mapping = montage.get("channels", {})
        out = []
        for lab in labels:
            if lab in mapping:
                out.append(parse_site(mapping[lab], lab, regions))
            else:
                ch = parse_label(lab, warn=warn)
                if ch.site in regions:
                    ch = Channel(
                        ch.label, ch.site, ch.side, regions[ch.site], ch.unit, ch.electrode
                    )
                out.append(ch)
        return tuple(out)
    return tuple(parse_label(lab, warn=warn) for lab in labels)


def load_montage(path: str | Path) -> dict:
    """Read a TOML montage file.

    Format::

        [channels]            # channel label in the file = site
        "EMG1" = "Biceps L"
        "EMG2" = "Tibialis anterior R"

        [regions]             # optional: move a muscle to another region
        sternocleidomastoid = "bulbar"
    """
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: montage file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a valid TOML montage: {e}") from None
    channels = doc.get("channels", {})
    regions = doc.get("regions", {})
    if not isinstance(channels, dict) or not all(isinstance(v, str) for v in channels.values()):
        raise ConfigError(f"{path}: [channels] must map channel labels to site names")
    for site, region in regions.items():
        if site not in _BY_SITE:
            raise ConfigError(f"{path}: [regions] names unknown muscle {site!r}")
        if region not in REGIONS:
            raise ConfigError(f"{path}: region {region!r} for {site!r} is not one of {REGIONS}")
    return {"channels": channels, "regions": regions}


_UNITS = {
    "uv": 1.0,
    "µv": 1.0,
    "μv": 1.0,
    "microvolt": 1.0,
    "microvolts": 1.0,
    "mv": 1e3,
    "millivolt": 1e3,
    "millivolts": 1e3,
    "v": 1e6,
    "volt": 1e6,
    "volts": 1e6,
    "nv": 1e-3,
}


def unit_scale_to_uv(unit: str) -> float:
    """Factor that converts values in ``unit`` to µV (``"mV"`` → 1000)."""
    key = unit.strip().lower()
    if key not in _UNITS:
        raise ConfigError(f"unknown unit {unit!r}; expected one of uV, mV, V")
    return _UNITS[key]


def muscle(site: str) -> Muscle | None:
    """The vocabulary entry of a canonical site name, or None."""
    return _BY_SITE.get(site)
