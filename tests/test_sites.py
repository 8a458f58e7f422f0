"""Body-site vocabulary: label forms, every listed muscle, HD grids, montages, --sites, unknown labels."""

from __future__ import annotations

import warnings

import pytest

from emgtool.errors import ConfigError, EmgtoolWarning
from emgtool.recording import Recording
from emgtool.sites import (
    MUSCLES,
    REGIONS,
    assign_sites,
    load_montage,
    parse_label,
    parse_sites_option,
    unit_scale_to_uv,
)


def _psr(label):
    c = parse_label(label)
    return (c.site, c.side, c.region)


# The label forms named in the foundation issue (item 4).
@pytest.mark.parametrize(
    "label, expected",
    [
        ("EMG Biceps L", ("biceps", "L", "cervical")),
        ("L-Biceps", ("biceps", "L", "cervical")),
        ("biceps_left", ("biceps", "L", "cervical")),
        ("Tibialis anterior R", ("tibialis_anterior", "R", "lumbosacral")),
        ("TA-R", ("tibialis_anterior", "R", "lumbosacral")),
        ("EMG R APB", ("abductor_pollicis_brevis", "R", "cervical")),
        ("Gastroc med R", ("gastrocnemius_medial", "R", "lumbosacral")),
        ("Biceps L 01", ("biceps", "L", "cervical")),
        # more spellings people use
        ("Right TA", ("tibialis_anterior", "R", "lumbosacral")),
        ("tibialis_anterior_right", ("tibialis_anterior", "R", "lumbosacral")),
        ("RightTA", ("tibialis_anterior", "R", "lumbosacral")),
        ("GastrocMedR", ("gastrocnemius_medial", "R", "lumbosacral")),
        ("biceps.l", ("biceps", "L", "cervical")),
        ("Lt FDI", ("first_dorsal_interosseous", "L", "cervical")),
        ("Deltoid (L)", ("deltoid", "L", "cervical")),
        ("Biceps L (uV)", ("biceps", "L", "cervical")),
        ("TA R [mV]", ("tibialis_anterior", "R", "lumbosacral")),
        ("T10 paraspinal L", ("thoracic_paraspinals", "L", "thoracic")),
        ("PSP-T R", ("thoracic_paraspinals", "R", "thoracic")),
        ("Tib ant L", ("tibialis_anterior", "L", "lumbosacral")),
        ("Rectus abd R", ("rectus_abdominis", "R", "thoracic")),
        ("Vastus lat L", ("vastus_lateralis", "L", "lumbosacral")),
        ("Biceps femoris L", ("hamstrings", "L", "lumbosacral")),
        ("Tongue", ("tongue", "n/a", "bulbar")),
    ],
)
def test_label_forms(label, expected):
    assert _psr(label) == expected


# Every muscle the issue lists, by full name and by abbreviation.
@pytest.mark.parametrize(
    "label, site, region",
    [
        ("Tongue", "tongue", "bulbar"),
        ("Genioglossus", "tongue", "bulbar"),
        ("Masseter R", "masseter", "bulbar"),
        ("Orbicularis oris L", "facial", "bulbar"),
        ("Frontalis R", "facial", "bulbar"),
        ("Facial L", "facial", "bulbar"),
        ("SCM L", "sternocleidomastoid", "cervical"),
        ("Sternocleidomastoid R", "sternocleidomastoid", "cervical"),
        ("Upper trapezius R", "trapezius", "cervical"),
        ("Trapezius L", "trapezius", "cervical"),
        ("Deltoid R", "deltoid", "cervical"),
        ("Biceps brachii L", "biceps", "cervical"),
        ("Triceps L", "triceps", "cervical"),
        ("Brachioradialis R", "brachioradialis", "cervical"),
        ("FCR L", "flexor_carpi_radialis", "cervical"),
        ("Flexor carpi radialis L", "flexor_carpi_radialis", "cervical"),
        ("FCU R", "flexor_carpi_ulnaris", "cervical"),
        ("ECR R", "extensor_carpi_radialis", "cervical"),
        ("Extensor carpi radialis longus R", "extensor_carpi_radialis", "cervical"),
        ("EDC L", "extensor_digitorum", "cervical"),
        ("Forearm flexors L", "forearm_flexors", "cervical"),
        ("Forearm extensors R", "forearm_extensors", "cervical"),
        ("FDI R", "first_dorsal_interosseous", "cervical"),
        ("First dorsal interosseous L", "first_dorsal_interosseous", "cervical"),
        ("APB L", "abductor_pollicis_brevis", "cervical"),
        ("ADM R", "abductor_digiti_minimi", "cervical"),
        ("Thoracic paraspinals L", "thoracic_paraspinals", "thoracic"),
        ("Rectus abdominis R", "rectus_abdominis", "thoracic"),
        ("Iliopsoas L", "iliopsoas", "lumbosacral"),
        ("Vastus lateralis R", "vastus_lateralis", "lumbosacral"),
        ("VM L", "vastus_medialis", "lumbosacral"),
        ("Rectus femoris L", "rectus_femoris", "lumbosacral"),
        ("Quadriceps R", "quadriceps", "lumbosacral"),
        ("Hamstrings R", "hamstrings", "lumbosacral"),
        ("Tibialis anterior L", "tibialis_anterior", "lumbosacral"),
        ("Gastrocnemius medialis R", "gastrocnemius_medial", "lumbosacral"),
        ("MG L", "gastrocnemius_medial", "lumbosacral"),
        ("Gastroc lat L", "gastrocnemius_lateral", "lumbosacral"),
        ("Lateral gastrocnemius R", "gastrocnemius_lateral", "lumbosacral"),
        ("Gastrocnemius L", "gastrocnemius", "lumbosacral"),
        ("Soleus R", "soleus", "lumbosacral"),
        ("EHB L", "extensor_hallucis_brevis", "lumbosacral"),
        ("Extensor hallucis brevis R", "extensor_hallucis_brevis", "lumbosacral"),
        ("Abductor hallucis L", "abductor_hallucis", "lumbosacral"),
        ("AH R", "abductor_hallucis", "lumbosacral"),
        # "ADM" alone is the hand muscle; the foot one is named as such
        ("ADM foot R", "abductor_digiti_minimi_foot", "lumbosacral"),
        ("Abductor digiti minimi pedis L", "abductor_digiti_minimi_foot", "lumbosacral"),
        ("Gluteus maximus R", "gluteus_maximus", "lumbosacral"),
    ],
)
def test_every_listed_muscle(label, site, region):
    c = parse_label(label)
    assert (c.site, c.region) == (site, region)


@pytest.mark.parametrize(
    "label, expected",
    [
        ("T10 paraspinal L", ("thoracic_paraspinals", "L", "thoracic")),
        ("Paraspinal T10 R", ("thoracic_paraspinals", "R", "thoracic")),
        ("PSP L", ("thoracic_paraspinals", "L", "thoracic")),  # plain paraspinals: thoracic
        ("Erector spinae R", ("thoracic_paraspinals", "R", "thoracic")),
        # "L4" is a level here, not the left side and electrode 4
        ("L4 paraspinal R", ("lumbar_paraspinals", "R", "lumbosacral")),
        ("Paraspinal L4 R", ("lumbar_paraspinals", "R", "lumbosacral")),
        ("L5 PSP (uV) R", ("lumbar_paraspinals", "R", "lumbosacral")),
        ("Lumbar paraspinals L", ("lumbar_paraspinals", "L", "lumbosacral")),
        ("Multifidus L", ("lumbar_paraspinals", "L", "lumbosacral")),
        ("C6 PSP L", ("cervical_paraspinals", "L", "cervical")),
        ("Cervical paraspinals R", ("cervical_paraspinals", "R", "cervical")),
    ],
)
def test_paraspinal_levels(label, expected):
    c = parse_label(label)
    assert (c.site, c.side, c.region) == expected
    assert c.electrode is None
    # outside paraspinal labels a letter+digit stays side + electrode
    assert parse_label("Biceps L1").electrode == 1
    assert parse_label("Paraspinal L 03").electrode == 3


def test_vocabulary_table_is_consistent():
    sites = [m.site for m in MUSCLES]
    assert len(sites) == len(set(sites))
    assert all(m.region in REGIONS for m in MUSCLES)
    # each muscle is found by its own canonical name and by each of its aliases
    for m in MUSCLES:
        assert parse_label(m.site.replace("_", " ") + " L").site == m.site
        for alias in m.aliases:
            got = parse_label(alias + " R").site
            assert got == m.site, (alias, got)


def test_hd_grid_labels():
    chans = assign_sites([f"Biceps L {i:02d}" for i in range(1, 65)])
    assert {c.site_key for c in chans} == {("biceps", "L")}
    assert [c.electrode for c in chans] == list(range(1, 65))
    assert parse_label("Gastroc med R 7").electrode == 7
    assert parse_label("Biceps L").electrode is None


def test_unknown_label_kept_with_warning():
    with pytest.warns(EmgtoolWarning, match="Gizmo 3"):
        chans = assign_sites(["Biceps L", "Gizmo 3"])
    assert len(chans) == 2
    assert (chans[1].label, chans[1].site, chans[1].region) == ("Gizmo 3", "unknown", "unknown")
    # the ambiguous "GM" (gastrocnemius medialis or gluteus maximus) needs an explicit mapping
    with pytest.warns(EmgtoolWarning, match="gluteus maximus"):
        (gm,) = assign_sites(["GM R"])
    assert gm.site == "unknown" and gm.side == "R"
    # also through Recording.from_array, which every reader uses
    with pytest.warns(EmgtoolWarning):
        rec = Recording.from_array([[0.0] * 10, [0.0] * 10], fs=1000, labels=["TA L", "aux"])
    assert rec.channels[1].region == "unknown"


def test_known_labels_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmgtoolWarning)
        assign_sites(["Biceps L", "TA R", "Tongue"])


def test_sites_option_overrides_labels():
    chans = assign_sites(["EMG1", "EMG2", "EMG3"], "Biceps L, Tibialis anterior R,SCM L")
    assert [(c.label, c.site, c.side, c.region) for c in chans] == [
        ("EMG1", "biceps", "L", "cervical"),
        ("EMG2", "tibialis_anterior", "R", "lumbosacral"),
        ("EMG3", "sternocleidomastoid", "L", "cervical"),
    ]
    assert parse_sites_option("Biceps L,TA R") == ["Biceps L", "TA R"]


def test_sites_option_errors():
    with pytest.raises(ConfigError, match="2 sites but the recording has 3 channels"):
        assign_sites(["a", "b", "c"], ["Biceps L", "Biceps R"])
    with pytest.raises(ConfigError, match="empty name"):
        parse_sites_option("Biceps L,,TA R")
    with pytest.raises(ConfigError, match="unknown site 'Wibble L'"):
        assign_sites(["a"], ["Wibble L"])


def test_montage_overrides_labels_and_moves_scm_to_bulbar(tmp_path):
    path = tmp_path / "montage.toml"
    path.write_text(
        '[channels]\n"EMG1" = "SCM L"\n"EMG2" = "Tongue"\n"EMG3" = "Biceps R"\n\n'
        '[regions]\nsternocleidomastoid = "bulbar"\ntrapezius = "bulbar"\n',
        encoding="utf-8",
    )
    montage = load_montage(path)
    chans = assign_sites(["EMG1", "EMG2", "EMG3", "Upper trapezius L", "SCM R"], montage=montage)
    got = [(c.label, c.site, c.side, c.region) for c in chans]
    assert got == [
        ("EMG1", "sternocleidomastoid", "L", "bulbar"),
        ("EMG2", "tongue", "n/a", "bulbar"),
        ("EMG3", "biceps", "R", "cervical"),
        # labels not in [channels] are parsed, and the region move applies to them too
        ("Upper trapezius L", "trapezius", "L", "bulbar"),
        ("SCM R", "sternocleidomastoid", "R", "bulbar"),
    ]
    # without the montage SCM stays cervical
    assert parse_label("SCM R").region == "cervical"


def test_montage_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_montage(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[channels\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a valid TOML"):
        load_montage(bad)
    bad.write_text('[regions]\nsternocleidomastoid = "brain"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="region 'brain'"):
        load_montage(bad)
    bad.write_text('[regions]\nwibble = "bulbar"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown muscle 'wibble'"):
        load_montage(bad)
    bad.write_text('[channels]\n"EMG1" = "Wibble"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown site"):
        assign_sites(["EMG1"], montage=load_montage(bad))


def test_unit_scale():
    assert unit_scale_to_uv("uV") == 1.0
    assert unit_scale_to_uv("µV") == 1.0
    assert unit_scale_to_uv("mV") == 1000.0
    assert unit_scale_to_uv("V") == 1e6
    with pytest.raises(ConfigError, match="unknown unit"):
        unit_scale_to_uv("furlong")
