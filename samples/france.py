"""Deterministic sample of the SSMSI regional and departmental files (same format as published).

18 regions with their real INSEE codes, 2–3 real départements per region (43 in all), the 18
published indicators with their real names and units of count (17 at département level:
"Usage de stupéfiants (AFD)" is published by region only), years 2016–2024. Rates start near
the national levels of 2016 and follow the indicator's broad trend (rising for violence, sexual
violence and fraud, falling for vehicle thefts, a 2020 lockdown dip for thefts and burglaries),
with a fixed-seed multiplicative noise per département. Regional rows are the sums of the
sample's départements, so the département–région check agrees exactly on the sample.

The files are written exactly like the real ones: UTF-8 with BOM, `;`, every field quoted,
decimal comma in ``taux_pour_mille`` (per 1,000 inhabitants, per 1,000 dwellings for burglary).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 20250314
YEARS = list(range(2016, 2025))

REGIONAL_FILE = "donnee-reg-sample.csv"
DEPARTMENTAL_FILE = "donnee-dep-sample.csv"

#: (indicator, unit of count, rate per 100k in 2016, yearly growth, 2020 factor, regional only)
INDICATORS: list[tuple[str, str, float, float, float, bool]] = [
    ("Homicides", "Victime", 1.3, 0.00, 1.00, False),
    ("Tentatives d'homicides", "Victime", 3.5, 0.05, 0.95, False),
    ("Coups et blessures volontaires", "Victime", 350.0, 0.05, 0.97, False),
    ("Coups et blessures volontaires intrafamiliaux", "Victime", 160.0, 0.09, 1.05, False),
    ("Autres coups et blessures volontaires", "Victime", 190.0, 0.02, 0.90, False),
    ("Violences sexuelles", "Victime", 55.0, 0.10, 0.95, False),
    ("Vols avec armes", "Infraction", 18.0, -0.06, 0.85, False),
    ("Vols violents sans arme", "Infraction", 160.0, -0.05, 0.80, False),
    ("Vols sans violence contre des personnes", "Victime entendue", 1100.0, -0.02, 0.75, False),
    ("Cambriolages de logement", "Infraction", 380.0, -0.03, 0.82, False),
    ("Vols de véhicules", "Véhicule", 230.0, -0.04, 0.88, False),
    ("Vols dans les véhicules", "Véhicule", 450.0, -0.05, 0.85, False),
    ("Vols d'accessoires sur véhicules", "Véhicule", 140.0, -0.04, 0.90, False),
    ("Destructions et dégradations volontaires", "Infraction", 930.0, -0.01, 0.90, False),
    ("Escroqueries", "Victime", 400.0, 0.06, 1.00, False),
    ("Trafic de stupéfiants", "Mis en cause", 35.0, 0.02, 1.05, False),
    ("Usage de stupéfiants", "Mis en cause", 250.0, 0.03, 1.10, False),
    ("Usage de stupéfiants (AFD)", "Mis en cause", 0.0, 0.0, 1.00, True),
]

#: region code → [(département code, population 2016)]: real codes, rounded populations.
DEPARTEMENTS: dict[str, list[tuple[str, int]]] = {
    "01": [("971", 395_000)],
    "02": [("972", 376_000)],
    "03": [("973", 270_000)],
    "04": [("974", 853_000)],
    "06": [("976", 256_000)],
    "11": [("75", 2_190_000), ("93", 1_606_000), ("78", 1_431_000)],
    "24": [("45", 675_000), ("37", 605_000), ("18", 305_000)],
    "27": [("21", 533_000), ("25", 538_000), ("89", 338_000)],
    "28": [("76", 1_255_000), ("14", 694_000), ("50", 497_000)],
    "32": [("59", 2_605_000), ("62", 1_470_000), ("80", 571_000)],
    "44": [("67", 1_120_000), ("57", 1_045_000), ("51", 569_000)],
    "52": [("44", 1_380_000), ("49", 810_000), ("85", 670_000)],
    "53": [("35", 1_050_000), ("29", 907_000), ("56", 750_000)],
    "75": [("33", 1_550_000), ("64", 670_000), ("87", 375_000)],
    "76": [("31", 1_335_000), ("34", 1_120_000), ("66", 470_000)],
    "84": [("69", 1_820_000), ("38", 1_250_000), ("63", 650_000)],
    "93": [("13", 2_010_000), ("06", 1_080_000), ("83", 1_050_000)],
    "94": [("2A", 155_000), ("2B", 175_000)],
}
_FAST_GROWING = {"973": 0.025, "976": 0.030}
_BURGLARY = "Cambriolages de logement"


def _quote(values: list[str]) -> str:
    return ";".join(f'"{v}"' for v in values)


def _rate_text(nombre: int, base: int) -> str:
    return f"{(nombre / base * 1000.0) if base else 0.0:.7f}".replace(".", ",")


def generate() -> tuple[list[list[str]], list[list[str]]]:
    """Rows (as text fields) of the regional and departmental files."""
    rng = np.random.default_rng(SEED)
    dep_rows: list[list[str]] = []
    region_totals: dict[tuple[str, int, str], list[int]] = {}
    # a fixed level factor per département and per (département, indicator)
    dep_factor = {d: float(rng.lognormal(0.0, 0.25)) for ds in DEPARTEMENTS.values() for d, _ in ds}
    for year in YEARS:
        t = year - YEARS[0]
        millesime = min(year, 2022)
        for name, unit, rate16, growth, covid, regional_only in INDICATORS:
            for region, deps in DEPARTEMENTS.items():
                for dep, pop16 in deps:
                    pop = int(round(pop16 * (1.0 + _FAST_GROWING.get(dep, 0.003)) ** min(t, 6)))
                    log = int(round(pop * (0.32 if dep in _FAST_GROWING else 0.52)))
                    if name == "Usage de stupéfiants (AFD)":
                        # fixed fines for drug use exist since September 2020
                        rate = 0.0 if year < 2020 else 40.0 * (1.0 + 0.9 * (year - 2020)) ** 0.8
                        rate = rate if year > 2020 else rate * 0.25
                    else:
                        rate = rate16 * (1.0 + growth) ** t * (covid if year == 2020 else 1.0)
                    level = dep_factor[dep] * float(rng.lognormal(0.0, 0.04))
                    mean = max(rate * level * pop / 100_000.0, 0.0)
                    nombre = int(rng.poisson(mean)) if mean > 0 else 0
                    base = log if name == _BURGLARY else pop
                    key = (region, year, name)
                    tot = region_totals.setdefault(key, [0, 0, 0])
                    tot[0] += nombre
                    tot[1] += pop
                    tot[2] += log
                    if regional_only:
                        continue
                    dep_rows.append(
                        [dep, region, str(year), name, unit, str(nombre), _rate_text(nombre, base),
                         str(pop), str(millesime), str(log), str(min(year, 2021))]
                    )  # fmt: skip
    reg_rows: list[list[str]] = []
    for year in YEARS:
        for name, unit, *_ in INDICATORS:
            for region in DEPARTEMENTS:
                nombre, pop, log = region_totals[(region, year, name)]
                base = log if name == _BURGLARY else pop
                reg_rows.append(
                    [region, str(year), name, unit, str(nombre), _rate_text(nombre, base),
                     str(pop), str(min(year, 2022)), str(log), str(min(year, 2021))]
                )  # fmt: skip
    return reg_rows, dep_rows


_HEADER = [
    "Code_region",
    "annee",
    "indicateur",
    "unite_de_compte",
    "nombre",
    "taux_pour_mille",
    "insee_pop",
    "insee_pop_millesime",
    "insee_log",
    "insee_log_millesime",
]


def write_sample(directory: str | Path) -> dict[str, Path]:
    """Write both sample files into ``directory`` (idempotent: same bytes every time)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    reg_rows, dep_rows = generate()
    paths = {"regional": directory / REGIONAL_FILE, "departmental": directory / DEPARTMENTAL_FILE}
    for kind, header, rows in (
        ("regional", _HEADER, reg_rows),
        ("departmental", ["Code_departement", *_HEADER], dep_rows),
    ):
        text = "\n".join(_quote(r) for r in [header, *rows]) + "\n"
        data = "\ufeff".encode() + text.encode("utf-8")
        path = paths[kind]
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    return paths
