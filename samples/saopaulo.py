"""Deterministic sample of the São Paulo phone robbery/theft records (same schema as the derived
SSP-SP extract: BAIRRO, MARCA_OBJETO, DIA_SEMANA, PERIODO, IDADE, SEXO, RUBRICA,
DESCR_SUBTIPOLOCAL; comma-separated UTF-8).

6,000 records over 40 real neighbourhood names with a skewed size distribution (a few large
central ones, a tail of small ones). The place type depends on the offence (thefts happen far
more often in public transport, homes and shops than robberies), the period and the
neighbourhood (central neighbourhoods have more public-transport cases); brand and weekday have
small effects; IDADE and SEXO are drawn at random, as in the real extract. About 87 % of the
records are "Via Publica". A few rows use raw SSP subtypes ("Via Pública", "Metrô",
"Residência", …) that seeds/saopaulo_place_types.csv maps onto the groups, a few use a subtype
the seed does not know (to exercise the "unmapped" report), and some neighbourhood names carry
accents or stray spaces (to exercise the normalization).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SEED = 20230601
N_RECORDS = 6000
FILE_NAME = "celulares_sample.csv"
HEADER = [
    "BAIRRO",
    "MARCA_OBJETO",
    "DIA_SEMANA",
    "PERIODO",
    "IDADE",
    "SEXO",
    "RUBRICA",
    "DESCR_SUBTIPOLOCAL",
]

NEIGHBOURHOODS = [
    "REPUBLICA", "SE", "CAPAO REDONDO", "PINHEIROS", "LIBERDADE", "BELA VISTA", "ITAIM BIBI",
    "CONSOLACAO", "BRAS", "IPIRANGA", "SANTO AMARO", "CAMPO LIMPO", "VILA MARIANA", "MOOCA",
    "TATUAPE", "SANTANA", "LAPA", "BUTANTA", "JABAQUARA", "SAUDE", "PERDIZES", "BOM RETIRO",
    "CAMBUCI", "ACLIMACAO", "BARRA FUNDA", "JARDIM PAULISTA", "MORUMBI", "VILA PRUDENTE",
    "PENHA", "ITAQUERA", "GUAIANASES", "CIDADE ADEMAR", "GRAJAU", "PARELHEIROS", "PERUS",
    "BRASILANDIA", "CACHOEIRINHA", "TREMEMBE", "JACANA", "SAO MATEUS",
]  # fmt: skip
CENTRAL = {"REPUBLICA", "SE", "LIBERDADE", "BELA VISTA", "CONSOLACAO", "BRAS", "BOM RETIRO"}
ACCENTED = {"REPUBLICA": "República", "SE": "Sé", "CONSOLACAO": "Consolação", "BRAS": "Brás"}
BRANDS = ["Samsung", "Apple", "Motorola", "Xiaomi", "Outros", "LG", "Asus", "Positivo"]
BRAND_P = [0.34, 0.30, 0.20, 0.07, 0.05, 0.02, 0.01, 0.01]
WEEKDAYS = ["SEGUNDA", "TERCA", "QUARTA", "QUINTA", "SEXTA", "SABADO", "DOMINGO"]
PERIODS = ["MANHA", "TARDE", "NOITE", "MADRUGADA"]
PERIOD_P = [0.20, 0.23, 0.41, 0.16]
PLACES = [
    "Via Publica",
    "Transporte Publico",
    "Residencia / Hospedagem",
    "Estabelecimentos Comerciais / Industrias",
    "Transporte Privado",
    "Alimentacao",
    "Entreterimento",
    "Saude",
    "Escolas / Universidade",
    "Escritorios",
]
#: Base log-odds of each place against "Via Publica", per offence.
BASE = {
    "ROUBO": np.array([0.0, -4.0, -3.8, -4.2, -4.5, -6.3, -6.8, -7.2, -8.5, -8.5]),
    "FURTO": np.array([0.0, -1.3, -2.3, -2.0, -2.6, -3.3, -3.5, -4.8, -5.4, -5.4]),
}
#: Raw SSP subtypes (as a user's own download spells them) used for a few rows per group.
RAW_SUBTYPES = {
    "Via Publica": "Via Pública",
    "Transporte Publico": "Metrô",
    "Residencia / Hospedagem": "Residência",
    "Estabelecimentos Comerciais / Industrias": "Shopping Center",
}
UNMAPPED_SUBTYPE = "Local ignorado (amostra)"


def generate(n: int = N_RECORDS, seed: int = SEED) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    sizes = np.exp(rng.normal(0.0, 1.0, len(NEIGHBOURHOODS)))
    sizes[: len(CENTRAL)] *= 3.0
    nb_p = sizes / sizes.sum()
    # Per-neighbourhood offsets of the log-odds (central: more public transport and shops).
    nb_effect = rng.normal(0.0, 0.8, (len(NEIGHBOURHOODS), len(PLACES)))
    nb_effect[:, 0] = 0.0
    for i, name in enumerate(NEIGHBOURHOODS):
        if name in CENTRAL:
            nb_effect[i, 1] += 1.5
            nb_effect[i, 3] += 0.8
    period_effect = {
        "MANHA": np.array([0, 0.5, 0.2, 0.3, 0.1, 0.0, -0.5, 0.5, 0.8, 0.8]),
        "TARDE": np.array([0, 0.4, 0.0, 0.5, 0.0, 0.3, 0.0, 0.3, 0.5, 0.5]),
        "NOITE": np.array([0, 0.0, -0.1, -0.2, 0.2, 0.3, 0.5, -0.3, -0.5, -0.6]),
        "MADRUGADA": np.array([0, -1.2, 0.6, -1.0, 0.6, -0.5, 0.8, -0.5, -2.0, -2.0]),
    }
    rows = []
    for _ in range(n):
        i = rng.choice(len(NEIGHBOURHOODS), p=nb_p)
        nb = NEIGHBOURHOODS[i]
        period = PERIODS[rng.choice(4, p=PERIOD_P)]
        offence = "FURTO" if rng.random() < (0.45 if nb in CENTRAL else 0.25) else "ROUBO"
        brand = BRANDS[rng.choice(len(BRANDS), p=BRAND_P)]
        weekday = WEEKDAYS[rng.integers(7)]
        logits = BASE[offence] + nb_effect[i] + period_effect[period]
        if brand == "Apple":
            logits = logits + np.array([0, 0.1, 0.2, 0.2, 0.3, 0.3, 0.2, 0, 0, 0.2])
        if weekday in ("SABADO", "DOMINGO"):
            logits = logits + np.array([0, -0.3, 0.2, 0.1, 0.1, 0.3, 0.5, 0, -1.0, -1.0])
        p = np.exp(logits - logits.max())
        place = PLACES[rng.choice(len(PLACES), p=p / p.sum())]
        # Random, as in the real extract.
        age = int(rng.integers(12, 78))
        sex = "MULHER" if rng.random() < 0.51 else "HOMEM"
        u = rng.random()
        if u < 0.03 and place in RAW_SUBTYPES:
            place = RAW_SUBTYPES[place]
        elif u > 0.997:
            place = UNMAPPED_SUBTYPE
        shown = nb
        if nb in ACCENTED and rng.random() < 0.1:
            shown = ACCENTED[nb]
        elif rng.random() < 0.02:
            shown = f" {nb.lower()} "
        rows.append([shown, brand, weekday, period, str(age), sex, offence, place])
    return rows


def write_sample(directory: Path, n: int = N_RECORDS, seed: int = SEED) -> Path:
    """Write the sample CSV into ``directory`` (idempotent: same bytes every time)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(generate(n, seed))
    tmp.replace(path)
    return path
