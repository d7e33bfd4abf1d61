"""The one sentence splitter, on legal Portuguese and English."""

from __future__ import annotations

import pytest

from rag_server.sentences import Span, enumeration, sentence_spans, split_clauses, split_sentences


@pytest.mark.parametrize(
    "text",
    [
        "Os arts. 17 e 18 tratam dos direitos do titular.",
        "Conforme o art. 48 da LGPD, o controlador comunica o incidente.",
        "A Resolução CD/ANPD nº 15/2024 fixou o prazo.",
        "A Resolução n. 15 fixou o prazo.",
        "Nos termos do § 2º do art. 52, a multa é aplicada.",
        "Previsto no inc. II do art. 7º, o consentimento é uma base legal.",
        "Dados sensíveis, p.ex. Biometria, exigem cuidado.",
        "Some data, e.g. Health records, need more care.",
        "That is, i.e. The controller decides.",
        "A Lei 13.709/2018 entrou em vigor em etapas.",
        "A multa vai até R$ 50.000.000,00 por infração.",
        "The rate is 2.5 percent of revenue.",
        "A comunicação deve conter: (I) a natureza dos dados. (II) as medidas de segurança. (III) os riscos.",
        "Publicada em 24 de jan. 2024, a norma vale.",
        "Published on Sept. 1 2024, the rule applies.",
        "The U.S. Congress is not the ANPD.",
        "See Res. 15/2024 for the deadline.",
        "Cf. Art. 6 for the deadline.",
        "Dr. Silva is the DPO.",
    ],
)
def test_does_not_split_inside_a_sentence(text: str) -> None:
    assert split_sentences(text) == [text]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "O prazo é de três dias úteis. Pelo § 1º, ele corre do conhecimento.",
            ["O prazo é de três dias úteis.", "Pelo § 1º, ele corre do conhecimento."],
        ),
        (
            "A multa vai até R$ 50.000.000,00. A diária também tem limite.",
            ["A multa vai até R$ 50.000.000,00.", "A diária também tem limite."],
        ),
        ("Vale a Lei 13.709/2018. 2024 trouxe mudanças.", ["Vale a Lei 13.709/2018.", "2024 trouxe mudanças."]),
        ('Diz "prazo razoável." A ANPD fixou três dias.', ['Diz "prazo razoável."', "A ANPD fixou três dias."]),
        ("Is it allowed? Yes, with consent! Then stop.", ["Is it allowed?", "Yes, with consent!", "Then stop."]),
        ("Veja os arts. 17 e 18. § 1º vale também.", ["Veja os arts. 17 e 18.", "§ 1º vale também."]),
        (
            "(a) one thing (see Art. 5).\n\nNext paragraph without a stop",
            ["(a) one thing (see Art. 5).", "Next paragraph without a stop"],
        ),
        ("First (II). Second.", ["First (II).", "Second."]),
    ],
)
def test_splits_at_sentence_ends(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_spans_point_at_the_text_and_round_trip_one_line_text() -> None:
    text = "  O prazo é de três dias úteis. Pelo § 1º, corre do conhecimento.  Fim.  "
    spans = sentence_spans(text)
    assert [text[s.start : s.end] for s in spans] == split_sentences(text)
    assert all(not text[s.start].isspace() and not text[s.end - 1].isspace() for s in spans)
    one_line = "A. Primeira frase. Segunda frase? Terceira!"
    assert " ".join(split_sentences(one_line)) == one_line


def test_empty_and_blank_text() -> None:
    assert split_sentences("") == []
    assert split_sentences("  \n\n ") == []


def test_clauses_of_a_long_enumeration() -> None:
    assert split_clauses("Deve conter: (I) a natureza; (II) as medidas; e (III) os riscos.") == [
        "Deve conter:",
        "(I) a natureza;",
        "(II) as medidas;",
        "e (III) os riscos.",
    ]


@pytest.mark.parametrize(
    ("sentence", "parts"),
    [
        (
            "A multa é reduzida: (I) cessação — 75% se antes, 50% se depois; (II) 20% por boas práticas; "
            "e (IV) 5% por cooperação ou boa-fé.",
            [
                "A multa é reduzida:",
                "(I) cessação — 75% se antes, 50% se depois",
                "(II) 20% por boas práticas",
                "(IV) 5% por cooperação ou boa-fé.",
            ],
        ),
        (
            "When assessing adequacy, the ANPD considers: I — the general rules; II — the nature of the data; "
            "and VI — other circumstances.",
            [
                "When assessing adequacy, the ANPD considers:",
                "I — the general rules",
                "II — the nature of the data",
                "VI — other circumstances.",
            ],
        ),
        (  # nested kinds: the list is the kind with the most items
            "Serious when (I) it meets the test and at least one of: (a) large scale; (b) an advantage; (c) risk.",
            [
                "Serious when (I) it meets the test and at least one of:",
                "(a) large scale",
                "(b) an advantage",
                "(c) risk.",
            ],
        ),
    ],
)
def test_the_lead_in_and_items_of_an_enumerated_sentence(sentence: str, parts: list[str]) -> None:
    found = enumeration("Antes. " + sentence, Span(7, 7 + len(sentence)))
    assert found is not None
    text = "Antes. " + sentence
    assert [text[s.start : s.end] for s in (found.lead, *found.items)] == parts


@pytest.mark.parametrize(
    "sentence",
    [
        "Nos termos do art. 52, II — a multa simples, e do art. 53, I — outra sanção.",  # cited items, after commas
        "O controlador deve: (I) comunicar o incidente.",  # one item is not a list
        "(I) comunicar; (II) registrar.",  # no lead-in
    ],
)
def test_sentences_that_are_not_enumerations(sentence: str) -> None:
    assert enumeration(sentence, Span(0, len(sentence))) is None
