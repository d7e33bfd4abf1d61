"""Evidence chosen sentence by sentence, the pointer, clean endings and the answer's source."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rag_server.analysis import Analyzer
from rag_server.answer import ELLIPSIS, clean_ending, locate, pointer
from rag_server.evidence import (
    UNNAMED_COUNT,
    EvidenceWeights,
    SentenceRanker,
    answer_cue,
    answer_type,
    answer_type_match,
    holds_answer_type,
    points_back,
)
from rag_server.prompt import build_prompt
from rag_server.retrieval.base import Hit

from support import passage

INCIDENT = passage(
    "res15#1",
    "A Resolução regulamenta a comunicação de incidentes. O controlador comunica o incidente à ANPD "
    "no prazo de três dias úteis. A comunicação deve ser clara.",
    article="6",
)
FINES = passage(
    "lgpd#52",
    "As sanções são aplicadas após procedimento administrativo. A multa simples vai até 2% do faturamento, "
    "limitada a R$ 50.000.000,00 por infração.",
    article="52",
)


def hits(*passages):  # type: ignore[no-untyped-def]
    return [Hit(rank=i, score=1.0 / i, passage=p) for i, p in enumerate(passages, start=1)]


def ranker(**weights: float) -> SentenceRanker:
    return SentenceRanker(Analyzer(), lambda term: 1.0, EvidenceWeights(**{"dense": 0.0, **weights}))


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Qual o prazo para comunicar um incidente?", "duration"),
        ("Em quantos dias devo avisar a ANPD?", "duration"),
        ("How long do we have to notify?", "duration"),
        ("Qual o valor máximo da multa?", "amount"),
        ("How much can the fine be?", "amount"),
        ("Quantos membros tem o conselho?", "count"),
        ("How many members does the council have?", "count"),
        ("Desde quando a lei está em vigor?", "date"),
        ("Quem fiscaliza a LGPD?", "who"),
        ("Which legal instrument created the ANPD?", "who"),
        ("Quais dados a lei considera sensíveis?", "list"),
        ("What must the incident notice contain?", "list"),
        ("Minha empresa é pequena. Sou obrigado a nomear um encarregado?", "yesno"),
        ("Can we change the standard clauses?", "yesno"),
        ("Posso demorar quantos dias para responder?", "duration"),  # the deadline before the yes/no
        ("O que é um dado anonimizado?", "definition"),
        ("In plain terms, what is differential privacy?", "definition"),
        ("Quando a LGPD começou a valer de verdade?", "date"),
        ("Quando saiu a resolução sobre incidentes?", "date"),
        ("Explique o legítimo interesse.", None),
    ],
)
def test_answer_types_of_questions(question: str, kind: str | None) -> None:
    assert answer_type(question) == kind


def test_sentences_holding_the_new_answer_types() -> None:
    assert holds_answer_type("O PAD é instaurado pelo Ministro de Estado Chefe da Casa Civil.", "who")
    assert not holds_answer_type("O processo segue o rito comum.", "who")
    assert holds_answer_type("A notificação deve conter: I – a natureza dos dados; II – os titulares;", "list")
    assert not holds_answer_type("A notificação deve ser feita por escrito.", "list")
    assert holds_answer_type("Os agentes de pequeno porte não são obrigados a indicar o encarregado.", "yesno")
    assert not holds_answer_type("O encarregado é o canal de comunicação.", "yesno")


@pytest.mark.parametrize(
    ("sentence", "kind", "question", "holds"),
    [
        # A body the question already names is not the answer to "who".
        ("Na avaliação, a ANPD considera os critérios do art. 34.", "who", "Quem dentro da ANPD decide?", False),
        ("A decisão cabe ao Conselho Diretor da ANPD.", "who", "Quem dentro da ANPD decide?", True),
        # The revenue the question mentions is not an amount; R$ is.
        ("A ANPD pode considerar o faturamento total.", "amount", "Qual o valor mínimo com faturamento?", False),
        ("Para quem tem faturamento, R$ 12.000 (grave).", "amount", "Qual o valor mínimo com faturamento?", True),
        # Numbers of provisions and acts are not counts, nor are durations, sums and shares.
        ("Art. 16 of Law 13,709/2018 allows it (§ 1).", "count", "How many exceptions does Art. 16 give?", False),
        ("The law allows retention in four cases.", "count", "How many exceptions does Art. 16 give?", True),
        ("Receberam mandatos de 2, 3, 4, 5 e 6 anos.", "count", "Quantas pessoas compõem a diretoria?", False),
        ("A multa pode chegar a 2% ou R$ 50.000.000,00.", "count", "Quantas sanções existem?", False),
        ("O Conselho Diretor é composto de 5 diretores.", "count", "Quantas pessoas compõem a diretoria?", True),
        # A law's number and year are not the date asked for; a calendar date is.
        ("A Lei nº 13.709/2018 e a Resolução CD/ANPD nº 15/2024 tratam disso.", "date", "Quando foi publicada?", False),
        ("A LGPD foi publicada em 15 de agosto de 2018.", "date", "Quando a LGPD foi publicada?", True),
        ("Entrou em vigor na data da publicação (23/08/2024).", "date", "Quando entrou em vigor?", True),
    ],
)
def test_an_answer_type_counts_only_what_is_new_and_not_a_citation(
    sentence: str, kind: str, question: str, holds: bool
) -> None:
    assert holds_answer_type(sentence, kind, question) is holds


@pytest.mark.parametrize(
    ("sentence", "kind", "question", "match"),
    [
        # A hyphenated duration is a duration ("a 2-year term", "a 12-month period").
        ("They serve a 2-year term, renewable once.", "duration", "How long is the term?", 1.0),
        ("It gave a 12-month period to bring contracts into line.", "duration", "How long did they have?", 1.0),
        # "um"/"uma" are articles, not counts; the number followed by the thing counted counts most.
        ("O CNPD é um órgão consultivo da ANPD.", "count", "Quantos representantes tem o CNPD?", 0.0),
        ("Tem 23 representantes, cada um com titular e suplente.", "count", "Quantos representantes tem?", 1.0),
        ("O Anexo II tem 24 cláusulas em quatro seções.", "count", "Quantas cláusulas tem o modelo?", 1.0),
        ("It has 23 representatives: I – 5 from the Executive.", "count", "How many seats?", UNNAMED_COUNT),
        ("The council has 23 representatives.", "count", "How many are there?", 1.0),
        # A definition is stated ("define X como", "means"), not merely mentioned.
        ("O inciso XIII define bloqueio como a suspensão temporária.", "definition", "O que significa bloquear?", 1.0),
        ("O fato de o dado ser acessível não significa que possa ser usado.", "definition", "O que é?", 0.0),
        ("O Regulamento trata da definição e das atribuições do encarregado.", "definition", "O que é?", 0.0),
    ],
)
def test_answer_type_match(sentence: str, kind: str, question: str, match: float) -> None:
    assert answer_type_match(sentence, kind, question) == match


def test_the_words_that_ask_for_a_date_are_not_the_topic() -> None:
    question = "Em que dia a LGPD foi publicada?"
    assert "dia" in answer_cue(question, "date")
    fines = passage("doc#1", "A multa é cobrada por dia de atraso. A LGPD foi publicada em 15 de agosto de 2018.")
    first = ranker(answer_type=0.0, novelty=0.0, passage=0.0, passage_score=0.0, passage_dense=0.0).rank(
        question, hits(fines)
    )[0]
    assert first.text == "A LGPD foi publicada em 15 de agosto de 2018."


def test_novelty_favours_a_sentence_that_adds_to_the_question() -> None:
    question = "Quantos representantes tem o conselho nacional?"
    echo = passage("doc#1", "O conselho nacional tem representantes. O conselho tem 23 representantes e suplentes.")
    plain = ranker(lexical=1.0, novelty=0.0, answer_type=0.0, passage=0.0, passage_score=0.0, passage_dense=0.0)
    plain_first = plain.rank(question, hits(echo))[0]
    novel = ranker(lexical=1.0, novelty=5.0, answer_type=0.0, passage=0.0, passage_score=0.0, passage_dense=0.0)
    novel_first = novel.rank(question, hits(echo))[0]
    assert plain_first.features["novelty"] < novel_first.features["novelty"]
    assert "23" in novel_first.text and "23" not in plain_first.text


@pytest.mark.parametrize(
    ("sentence", "dependent"),
    [
        ("Por isso, uma empresa estrangeira sem filial também está sujeita.", True),
        ("Assim, pedidos de acesso vão ao controlador.", True),
        ("It has 23 representatives, each with a full member.", True),
        ("These articles cover the ANPD's administrative procedure.", True),
        ("A LGPD aplica-se a qualquer operação de tratamento.", False),
        ("Item by item, the contract lists the processor's duties.", False),  # "it" only as a word
        ("Isolation between tenants is enforced by MIG.", False),  # not "isso"
        ("Essencial é que o titular seja informado.", False),  # not "essa"
        ("Só quando a reidentificação não for possível o dado é anônimo.", False),  # "só", not "so"
    ],
)
def test_a_sentence_that_points_back_is_told_apart(sentence: str, dependent: bool) -> None:
    assert points_back(sentence) is dependent


def test_a_sentence_that_points_back_ranks_below_an_equal_one_that_stands_alone() -> None:
    question = "Quantos representantes tem o conselho?"
    text = "Por isso, o conselho tem 23 representantes. O conselho tem 23 representantes e suplentes."
    weights = {"answer_type": 0.0, "novelty": 0.0, "passage": 0.0, "passage_score": 0.0, "passage_dense": 0.0}
    first = ranker(lexical=1.0, dependent=0.0, **weights).rank(question, hits(passage("doc#1", text)))[0]
    assert first.text.startswith("Por isso")  # a tie, kept in reading order
    first = ranker(lexical=1.0, dependent=-1.0, **weights).rank(question, hits(passage("doc#1", text)))[0]
    assert first.text.startswith("O conselho") and first.features["dependent"] == 0.0


def test_sentences_holding_an_answer_type() -> None:
    assert holds_answer_type("no prazo de três dias úteis", "duration")
    assert holds_answer_type("within 15 days of the request", "duration")
    assert not holds_answer_type("sem prazo definido", "duration")
    assert holds_answer_type("até 2% do faturamento", "amount")
    assert holds_answer_type("limitada a R$ 50.000.000,00", "amount")
    assert holds_answer_type("entrou em vigor em setembro de 2020", "date")
    assert not holds_answer_type("qualquer frase", None)


def test_the_sentence_that_answers_ranks_first_not_the_passage_opening() -> None:
    ranked = ranker().rank("Qual o prazo para comunicar o incidente à ANPD?", hits(INCIDENT, FINES))
    assert ranked[0].text == "O controlador comunica o incidente à ANPD no prazo de três dias úteis."
    assert ranked[0].features["answer_type"] == 1.0 and ranked[0].hit_rank == 1
    assert INCIDENT.text[ranked[0].span.start : ranked[0].span.end] == ranked[0].text
    # Every sentence of every hit is ranked, once, best first.
    assert len(ranked) == 5 and [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_answer_type_lifts_a_sentence_from_a_lower_hit() -> None:
    question = "Qual o valor máximo da multa simples?"
    ranked = ranker().rank(question, hits(INCIDENT, FINES))
    assert ranked[0].passage.id == "lgpd#52" and "2%" in ranked[0].text
    without = ranker(answer_type=0.0, lexical=0.0).rank(question, hits(INCIDENT, FINES))
    assert without[0].passage.id == "res15#1"  # only the passage rank left: the first hit wins


def test_language_of_the_question_is_preferred() -> None:
    english = replace(
        passage("res15-en#1", "The controller notifies the ANPD within three business days.", article="6"),
        language="en",
    )
    ranked = ranker(lexical=0.0, answer_type=0.0, passage=0.0, passage_score=0.0, heading=0.0).rank(
        "Qual o prazo?", hits(english, INCIDENT)
    )
    assert ranked[0].passage.language == "pt"


def test_dense_signal_uses_the_encoder_on_sentences() -> None:
    seen: list[list[str]] = []

    def encode(texts):  # type: ignore[no-untyped-def]
        seen.append(list(texts))
        return np.array([[1.0, 0.0] if "clara" in t else [0.0, 1.0] for t in texts], dtype=np.float32)

    only_dense = SentenceRanker(
        Analyzer(),
        lambda term: 1.0,
        EvidenceWeights(lexical=0.0, dense=1.0, answer_type=0.0, passage=0.0, language=0.0),
        encode,
        lambda q: np.array([1.0, 0.0], dtype=np.float32),
    )
    ranked = only_dense.rank("q?", hits(INCIDENT))
    assert ranked[0].text == "A comunicação deve ser clara." and ranked[0].features["dense"] == 1.0
    assert len(seen) == 1 and len(seen[0]) == 3


def test_no_hits_no_evidence() -> None:
    assert ranker().rank("q?", []) == []


# ----------------------------------------------------------------------------- the answer


def test_pointer_is_the_shortest_opening_no_other_line_shares() -> None:
    shared = passage("d#1", "O controlador comunica a ANPD. O controlador comunica o titular. Outra frase aqui.")
    prompt = build_prompt("q?", hits(shared))
    assert pointer(prompt.lines, 0) == "O controlador comunica a"
    assert pointer(prompt.lines, 2) == "Outra frase aqui."  # whole sentence when shorter than the minimum
    short = build_prompt("q?", hits(passage("d#2", "Curta.")))
    assert pointer(short.lines) == "Curta."


@pytest.mark.parametrize(
    ("text", "capped", "expected"),
    [
        ("  O prazo é de três dias úteis. ", False, "O prazo é de três dias úteis."),
        ("O prazo é de três dias úte", True, "O prazo é de três dias" + ELLIPSIS),
        ("O prazo é de três dias, e", True, "O prazo é de três dias" + ELLIPSIS),
        ("Palavra", True, "Palavra" + ELLIPSIS),
        ("", True, ""),
    ],
)
def test_clean_ending(text: str, capped: bool, expected: str) -> None:
    assert clean_ending(text, capped) == expected


def test_locate_finds_the_context_sentence_an_answer_copies() -> None:
    prompt = build_prompt("q?", hits(FINES, INCIDENT))
    answer = "O controlador comunica o incidente à ANPD no prazo de três dias úteis."
    found = locate(answer, prompt)
    assert found is not None and found.number == 2 and found.passage_id == "res15#1"
    assert INCIDENT.text[found.start : found.end] == answer == found.text
    capped = locate("O controlador comunica o incidente" + ELLIPSIS, prompt)
    assert capped is not None and capped.start == found.start
    assert locate("Something the generator made up.", prompt) is None


def test_passage_similarity_is_a_signal_of_every_sentence_of_the_passage() -> None:
    asked: list[list[str]] = []

    def similarity(question: str, ids: list[str]) -> list[float]:
        asked.append(ids)
        return [0.2 if pid == "res15#1" else 0.9 for pid in ids]

    only = SentenceRanker(
        Analyzer(),
        lambda term: 1.0,
        EvidenceWeights(
            lexical=0, dense=0, answer_type=0, passage=0, passage_score=0, heading=0, language=0, passage_dense=1.0
        ),
        passage_similarity=similarity,
    )
    ranked = only.rank("q?", hits(INCIDENT, FINES))
    assert asked == [["res15#1", "lgpd#52"]]
    assert {r.passage.id for r in ranked[:2]} == {"lgpd#52"} and ranked[0].features["passage_dense"] == 0.9


def test_follows() -> None:
    from rag_server.answer import follows

    sentence = "O prazo é de três dias úteis."
    assert follows(sentence, sentence)
    assert follows("O prazo é de" + ELLIPSIS, sentence)
    assert not follows("O prazo.", sentence) and not follows("Outra coisa" + ELLIPSIS, sentence)


class CopyingGenerator:
    """A stand-in generator: copies the rest of the context line its answer line starts."""

    block_size = 768
    checkpoint_id = "stub"
    corpus_checksum = ""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.prompts: list[str] = []

    def complete(self, prompt: str, max_new_chars: int, temperature: float, seed: int | None) -> str:
        self.prompts.append(prompt)
        if self.broken:
            return "."
        opening = prompt.rsplit("\nAnswer: ", 1)[1]
        for line in prompt.split("\n")[2:-1]:
            text = line.split(") ", 1)[1]
            if text.startswith(opening):
                return text[len(opening) : len(opening) + max_new_chars]
        return ""


def test_the_pipeline_points_the_generator_and_checks_it_followed(built, tmp_path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    from rag_server.pipeline import RagPipeline

    question = "Em quanto tempo comunicar um incidente?"
    good = CopyingGenerator()
    pipeline = RagPipeline(
        tmp_path / "indexes", encoder=fake_encoder, generator=good, support_threshold=0.0, runner_up_margin=None
    )
    result = pipeline.ask(question, filters={"language": "pt"})
    assert result.source is not None and result.answer == result.source.text and result.message is None
    assert result.source.number == 1 and len(good.prompts) == 1 and not result.quoted
    assert good.prompts[0].startswith(result.prompt + " ") and result.answer.startswith(
        good.prompts[0][len(result.prompt) + 1 :]
    )

    broken = CopyingGenerator(broken=True)
    pipeline = RagPipeline(
        tmp_path / "indexes", encoder=fake_encoder, generator=broken, support_threshold=0.0, runner_up_margin=None
    )
    quoted = pipeline.ask(question, filters={"language": "pt"})
    assert len(broken.prompts) == 2  # pointed again with a longer opening, then quoted
    assert len(broken.prompts[1]) > len(broken.prompts[0])
    assert quoted.answer == result.answer and quoted.message and "did not follow" in quoted.message
    assert quoted.quoted


# ----------------------------------------------------------------------------- a second sentence


def test_a_close_runner_up_joins_the_answer_and_cites_its_own_passage() -> None:
    from rag_server.answer import close_runner_up, runner_up

    question = "Qual o prazo e qual a multa?"
    ranked = ranker().rank(question, hits(INCIDENT, FINES))
    prompt = build_prompt(question, hits(INCIDENT, FINES), evidence=[(e.passage, e.span) for e in ranked])
    gap = ranked[0].score - ranked[1].score
    assert gap > 0
    assert runner_up(prompt, ranked, gap + 0.01) == 1 and close_runner_up(ranked, gap + 0.01)
    assert runner_up(prompt, ranked, gap) is None and not close_runner_up(ranked, gap)  # a clear winner answers alone
    assert runner_up(prompt, ranked, None) is None
    # The best sentence did not make it into the prompt: nothing to add a runner-up to.
    later = build_prompt(question, hits(INCIDENT, FINES), evidence=[(e.passage, e.span) for e in ranked[1:]])
    assert runner_up(later, ranked, 100.0) is None


def test_the_pipeline_answers_with_two_sentences_when_the_ranking_is_unsure(  # type: ignore[no-untyped-def]
    built, tmp_path, fake_encoder
) -> None:
    from rag_server.pipeline import RagPipeline

    question = "Em quanto tempo comunicar um incidente?"

    def ask(margin: float | None, generator: object | None, **options: object):  # type: ignore[no-untyped-def]
        pipeline = RagPipeline(
            tmp_path / "indexes",
            encoder=fake_encoder,
            generator=generator,
            support_threshold=0.0,
            runner_up_margin=margin,
        )
        return pipeline.ask(question, filters={"language": "pt"}, **options)

    for generator in (CopyingGenerator(), None):  # pointed copies, and quoted sentences without a generator
        one, two = ask(None, generator), ask(1e9, generator)
        assert len(one.parts) == 1 and len(two.parts) == 2
        first, second = two.parts
        assert two.answer == f"{first.text} {second.text}" and first.text == one.answer
        assert two.evidence[1].text == second.text and second.source is not None
        assert [s.number for s in two.sources] == [first.source.number, second.source.number]  # type: ignore[union-attr]
        assert two.cited_answer == f"{first.text} [{first.source.number}] {second.text} [{second.source.number}]"  # type: ignore[union-attr]
        cited = two.citations[second.source.number - 1]
        assert cited.text[second.source.start : second.source.end] == second.text
        # The caller's length cap is on the whole answer: no room, no second sentence (never a cut one).
        capped = ask(1e9, generator, max_new_chars=len(one.answer) + 5)
        assert capped.answer == one.answer and len(capped.parts) == 1


# ----------------------------------------------------------------------------- long enumerations

MITIGATING = passage(
    "res4#13",
    "Atenuantes. O valor da multa é reduzido quando incidirem atenuantes: (I) cessação da infração — 75% se "
    "antes da instauração de procedimento preparatório pela ANPD, 50% se depois dele e até a instauração do "
    "processo sancionador, 30% se depois disso e até a decisão de primeira instância; (II) 20% pela "
    "implementação de política de boas práticas e governança, até a decisão de primeira instância; (III) "
    "medidas comprovadas para reverter ou mitigar os efeitos da infração sobre os titulares — 20% se adotadas "
    "antes do procedimento preparatório, 10% se depois dele; e (IV) 5% por cooperação ou boa-fé.",
    article="13",
)


def test_a_long_enumerated_sentence_competes_as_its_items_after_the_lead_in() -> None:
    from rag_server.evidence import ABRIDGE_OVER, ELISION, evidence_units
    from rag_server.sentences import sentence_spans

    text = MITIGATING.text
    first, long = sentence_spans(text)
    assert long.end - long.start > ABRIDGE_OVER
    assert evidence_units(text, first) == [(first, "Atenuantes.")]  # a short sentence is itself
    units = evidence_units(text, long)
    lead = "O valor da multa é reduzido quando incidirem atenuantes:"
    assert [t for _, t in units] == [
        f"{lead} (I) cessação da infração — 75% se antes da instauração de procedimento preparatório pela ANPD, "
        "50% se depois dele e até a instauração do processo sancionador, 30% se depois disso e até a decisão de "
        "primeira instância.",
        f"{lead} {ELISION} (II) 20% pela implementação de política de boas práticas e governança, até a decisão "
        "de primeira instância.",
        f"{lead} {ELISION} (III) medidas comprovadas para reverter ou mitigar os efeitos da infração sobre os "
        "titulares — 20% se adotadas antes do procedimento preparatório, 10% se depois dele.",
        f"{lead} {ELISION} (IV) 5% por cooperação ou boa-fé.",
    ]
    # Each unit's span is its item, exactly, in the passage.
    assert text[units[3][0].start : units[3][0].end] == "(IV) 5% por cooperação ou boa-fé."
    assert text[units[1][0].start : units[1][0].end].endswith("primeira instância")


def test_the_item_a_question_asks_about_is_ranked_prompted_and_pointed_to() -> None:
    question = "Quanto a multa diminui por cooperação e boa-fé?"
    ranked = ranker().rank(question, hits(MITIGATING))
    assert ranked[0].text.endswith("(IV) 5% por cooperação ou boa-fé.")
    prompt = build_prompt(question, hits(MITIGATING), evidence=[(e.passage, e.span, e.text) for e in ranked])
    assert prompt.lines[0].text == ranked[0].text and prompt.lines[0].span == ranked[0].span
    assert prompt.citations[0].sentences[0] == ranked[0].span  # the item is what the page marks
    source = locate(ranked[0].text, prompt)
    assert source is not None and (source.start, source.end) == tuple(ranked[0].span)


def test_a_second_item_of_the_same_list_drops_the_lead_in_it_repeats() -> None:
    from rag_server.answer import without_repeated_lead

    lead = "O valor da multa é reduzido quando incidirem atenuantes:"
    first = f"{lead} [...] (IV) 5% por cooperação ou boa-fé."
    second = f"{lead} [...] (II) 20% por boas práticas."
    assert without_repeated_lead(first, second) == "[...] (II) 20% por boas práticas."
    assert without_repeated_lead(first, f"{lead} (I) cessação da infração.") == "[...] (I) cessação da infração."
    # Not an item of the same list: shown whole.
    assert without_repeated_lead(first, f"{lead} a multa cai.") == f"{lead} a multa cai."
    other = "A multa diária tem o mesmo limite: [...] (II) do art. 52."
    assert without_repeated_lead(first, other) == other
    assert without_repeated_lead(first, "Prazo: [...] (II) três dias.") == "Prazo: [...] (II) três dias."
