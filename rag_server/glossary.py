"""Plain words → the law's words: query expansion for keyword and dense search.

A compliance analyst asks "can they delete my data?" or "fomos hackeados, e agora?"; the LGPD
and the ANPD's resolutions say "eliminação" and "incidente de segurança". BM25 matches words, so
a question in plain language misses the article that states the answer in legal terms (the
dense model bridges part of that gap, not all of it). This module holds a small controlled
vocabulary, written from the law's own definitions and headings (Art. 5 definitions, Art. 18
rights, the chapters on sanctions, transfers and the data protection officer) and not from any
evaluation question: each entry maps plain expressions, matched on the accent-folded question,
to the terms the statute and the corpus use, in the same language.

Keyword scoring (BM25, keyword overlap) gets the added terms after the question's own, which are
never removed; a term the question already has is not added twice. Dense search ranks by the mean
of the question's vector and that of the question followed by the legal terms
(``retrieval.dense.search_vector``); the support check and the evidence ranking keep the question
as the user wrote it.

A build decides whether its queries use the glossary, and records it with its analyzer settings
(``AnalyzerSettings.glossary``) so that every replica expands alike: ``rag-server build
--glossary auto`` (the default) turns it on when the corpus speaks of the LGPD or the ANPD, so a
corpus from another field (SciFact, a user's own manuals) is not searched for "consent" when it
asks about a "permission".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .analysis import Analyzer, AnalyzerSettings, detect_language, fold


@dataclass(frozen=True)
class GlossaryEntry:
    """Plain expressions (a regular expression over folded text) and the legal terms they stand for."""

    plain: re.Pattern[str]
    legal: str


def _entry(plain: str, legal: str) -> GlossaryEntry:
    return GlossaryEntry(re.compile(rf"\b(?:{plain})"), legal)


# Portuguese: plain expressions → the LGPD's terms.
_PT = (
    _entry(r"apag\w*|exclu\w*|delet\w*|sumir com", "eliminação"),
    _entry(r"autoriza\w*|autorizei|permiss\w*|pedir licenca|sem (?:me )?(?:pedir|perguntar)", "consentimento"),
    _entry(r"vaz\w*|hacke\w*|invadi\w*|invasao|ataque|sequestro de dados|ransomware", "incidente de segurança"),
    _entry(r"multa\w*|puni\w*|penalidade\w*|castigo", "sanções administrativas"),
    _entry(r"politica de privacidade|aviso de privacidade|termos de uso", "informações tratamento titular"),
    _entry(
        r"levar (?:os |meus )?dados|trocar de (?:banco|empresa|fornecedor)|outro (?:banco|fornecedor)|migrar",
        "portabilidade",
    ),
    _entry(r"provar|comprovar|mostrar que|demonstrar que", "demonstração prestação de contas"),
    _entry(r"lista de tudo|inventario|mapeamento|mapear", "registro das operações de tratamento"),
    _entry(r"dpo\b|responsavel (?:pela|por) (?:protecao|privacidade)", "encarregado"),
    _entry(r"repass\w*|parceir\w*|passar (?:os dados )?para outra|compartilh\w*", "uso compartilhado"),
    _entry(r"exterior|outro pais|fora do (?:pais|brasil)|estrangeir\w*", "transferência internacional"),
    _entry(r"interesse (?:do negocio|da empresa|comercial)", "legítimo interesse"),
    _entry(r"governo|prefeitura|orgaos? public\w*|reparticao|administracao publica", "poder público"),
    _entry(r"\bmei\b|microempres\w*|pequena empresa|pequeno negocio|startup", "agentes de tratamento de pequeno porte"),
    _entry(
        r"saude|religi\w*|biometri\w*|impressao digital|etnia|racial|genetic\w*|sindica\w*", "dado pessoal sensível"
    ),
    _entry(r"filh[oa]s?|menor(?:es)? de idade|criancas?|adolescentes?", "crianças adolescentes"),
    _entry(r"regulador|fiscaliza\w*", "autoridade nacional ANPD"),
    _entry(r"algoritmo|decisao automatica|automaticamente|robo|pontuacao|score", "decisões automatizadas revisão"),
    _entry(r"anonimiz\w*|sem identificar|tirar o nome", "anonimização"),
    _entry(r"guardar|manter os dados|por quanto tempo|ate quando", "término do tratamento conservação"),
    _entry(r"terceiriz\w*|prestador\w*|fornecedor\w*", "operador"),
    # The data subject's rights of Art. 18, as a person asks for them: only with the person's own data
    # as the object ("corrigir meus dados"), never on the verb alone ("corrigir o problema").
    _entry(
        r"(?:corrigir|atualizar) (?:(?:os |as )?(?:meus|minhas|seus|suas) |(?:o |a )?(?:meu|minha|seu|sua) )"
        r"(?:dados?|cadastro|informac\w*|endereco|nome)\b|"
        r"(?:meus|seus) dados (?:estao |estavam )?(?:errad|incorret|desatualizad)\w*|"
        r"\bdados? (?:errad|incorret|desatualizad)\w* (?:no|do|em) (?:meu |seu )?cadastro",
        "correção de dados incompletos inexatos desatualizados",
    ),
    _entry(
        r"(?:ver|saber|consultar) (?:quais )?(?:os )?meus dados|copia dos meus dados|"
        r"o que (?:eles|a empresa) sabe sobre mim|"
        r"quais dados (?:voces|eles|a empresa) (?:tem|guarda\w*) (?:de|sobre) mim",
        "acesso aos dados confirmação da existência de tratamento",
    ),
    _entry(r"retirar (?:o |meu )?consentimento|mud\w* de ideia", "revogação do consentimento"),
    _entry(
        r"(?:reclamar|denunciar|queixa|denuncia|reclamacao) (?:\w+ )?(?:na|a|para a|junto a|contra \w+ na) "
        r"(?:anpd|autoridade nacional)",
        "petição titular autoridade nacional",
    ),
)

# English: plain expressions → the corpus's English terms for the same provisions.
_EN = (
    _entry(r"delet\w*|eras\w*|wip\w*|remov\w*|get rid of", "deletion elimination"),
    _entry(r"permission|authori[sz]\w*|without asking|ask(?:ing)? (?:me )?first|opt[- ]?in", "consent"),
    _entry(r"hack\w*|breach\w*|leak\w*|attack\w*|ransomware|stolen", "security incident"),
    _entry(r"fine\b|fines\b|fined|punish\w*|penalt\w*", "administrative sanctions"),
    _entry(r"privacy (?:policy|notice)|terms of (?:use|service)", "information processing data subject"),
    _entry(
        r"take (?:my|our|their) data|move (?:my|our|their) data|switch (?:bank|provider)\w*|"
        r"another (?:bank|provider)|different (?:bank|provider)",
        "portability",
    ),
    _entry(r"prove|proof|show that we|evidence that we|demonstrate", "accountability demonstrate"),
    _entry(r"list of everything|inventory|data map\w*", "record of processing operations"),
    _entry(r"dpo\b|privacy officer|in charge of (?:data protection|privacy)", "data protection officer"),
    _entry(r"partner\w*|pass (?:it |them |the data )?on|hand (?:it |them )?over|shar\w*", "shared use"),
    _entry(r"abroad|overseas|another country|outside brazil|foreign", "international transfer"),
    _entry(r"business interest|commercial interest|(?:company|firm)'?s? (?:own )?interest", "legitimate interest"),
    _entry(r"government|public (?:agenc|bod|sector|administration)\w*|city hall", "public authorities"),
    _entry(r"small (?:business|company|firm)\w*|startup\w*|micro[- ]?enterprise\w*", "small processing agents"),
    _entry(
        r"health|religio\w*|biometric\w*|fingerprint\w*|ethnic\w*|racial|genetic\w*|union membership",
        "sensitive personal data",
    ),
    _entry(r"kids?|child\w*|minors?\b|teen\w*", "children adolescents"),
    _entry(r"regulator\w*|watchdog|supervis\w*|enforc\w*", "national authority ANPD"),
    _entry(r"algorithm\w*|automated|automatically|credit score|scor(?:e|ing)", "automated decisions review"),
    _entry(r"anonymi[sz]\w*|de-?identif\w*|strip(?:ping)? (?:the )?names", "anonymisation"),
    _entry(r"how long can we keep|keep (?:the |their |my )?data|retain\w*|retention", "end of processing retention"),
    _entry(r"vendor\w*|subcontract\w*|supplier\w*|outsourc\w*", "processor"),
    # The data subject's rights of Art. 18, as a person asks for them (only with the person's own data).
    _entry(
        r"(?:correct|fix|update|rectify) (?:my|their|his|her) (?:personal )?(?:data|details|records?|information|"
        r"address|name)\b|rectification|(?:my|their) (?:data|information|details) (?:is|are|was|were) "
        r"(?:wrong|inaccurate|outdated|out of date|incorrect)",
        "correction",
    ),
    _entry(
        r"(?:see|know|find out) (?:what|which) (?:personal )?(?:data|information) (?:you|they|the company|it) "
        r"(?:have|has|hold|holds|keep|keeps)|copy of (?:my|their) (?:personal )?data|"
        r"what (?:data|information) (?:you|they|the company) (?:have|hold|keep) (?:on|about) (?:me|them)",
        "access confirmation of processing",
    ),
    _entry(
        r"(?:take back|withdraw\w*|revok\w*) (?:my |their |the |his |her )?consent|"
        r"change[sd]? (?:my|their|his|her) mind",
        "withdraw consent",
    ),
    _entry(
        r"(?:complain\w*|(?:file|lodge) a complaint|report (?:a|the|this) company) (?:\w+ )?(?:\w+ )?to "
        r"(?:the )?(?:anpd|data protection authority|national authority|regulator)",
        "petition national authority",
    ),
)

GLOSSARY: dict[str, tuple[GlossaryEntry, ...]] = {"pt": _PT, "en": _EN}
"""Entries per language; a question uses its own language's entries."""


def legal_terms(question: str, language: str) -> str:
    """The legal terms the plain expressions of ``question`` stand for, as text to analyse
    (empty when none match or the language has no glossary)."""
    folded = fold(question)
    return " ".join(entry.legal for entry in GLOSSARY.get(language, ()) if entry.plain.search(folded))


GLOSSARY_CHOICES = ("auto", "lgpd", "none")
"""``BuildConfig.glossary``: detect the domain, always, never."""

_DOMAIN = re.compile(r"\blgpd\b|\banpd\b|\b13[.]709\b|\blei (?:n\W*o?\W*)?13[.]?709\b|lei geral de protecao de dados")
"""A corpus that says one of these is about the LGPD (folded text)."""


def speaks_lgpd(texts: Iterable[str]) -> bool:
    """Whether any of ``texts`` names the LGPD, its number or its authority."""
    return any(_DOMAIN.search(fold(text)) for text in texts)


def settings_with_glossary(settings: AnalyzerSettings, choice: str, texts: Iterable[str]) -> AnalyzerSettings:
    """``settings`` with the glossary a build's ``choice`` gives its corpus (``texts``)."""
    use = choice == "lgpd" or (choice == "auto" and speaks_lgpd(texts))
    return replace(settings, glossary="lgpd" if use else None)


def glossary_text(analyzer: Analyzer, query: str, language: str | None) -> str:
    """The legal terms ``query``'s plain words stand for, when the build uses the glossary (else "")."""
    if analyzer.settings.glossary != "lgpd":
        return ""
    return legal_terms(query, language or detect_language(query))


def expanded_terms(analyzer: Analyzer, query: str, terms: list[str], language: str | None) -> list[str]:
    """``terms`` (the query's own, first) plus the analysed legal terms its plain expressions
    stand for, each once; ``terms`` itself when the build uses no glossary."""
    legal = glossary_text(analyzer, query, language)
    if not legal:
        return terms
    language = language or detect_language(query)
    extra = analyzer.tokens(legal, language)
    if not extra:
        return terms
    added: list[str] = []
    seen = set(terms)
    for term in extra:
        if term not in seen:
            seen.add(term)
            added.append(term)
    return terms + added
