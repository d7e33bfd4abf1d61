from rag_server.analysis import Analyzer, AnalyzerSettings, detect_language, fold


def test_fold_removes_accents_and_case() -> None:
    assert fold("Ação PÚBLICA Não") == "acao publica nao"
    assert fold("ﬁ Ｆｕｌｌ") == "fi full"  # NFKC compatibility forms


def test_accented_and_unaccented_queries_match() -> None:
    a = Analyzer()
    assert a.tokens("comunicação à autoridade", "pt") == a.tokens("comunicacao a autoridade", "pt")
    assert a.tokens("decisão automatizada", "pt") == a.tokens("decisao automatizada", "pt")
    assert a.tokens("Segurança", "pt") == a.tokens("seguranca", "pt")


def test_portuguese_plurals_share_the_singular_stem() -> None:
    a = Analyzer()
    pairs = [
        ("ação", "ações"),
        ("informação", "informações"),
        ("decisão", "decisões"),
        ("titular", "titulares"),
        ("responsável", "responsáveis"),
        ("incidente", "incidentes"),
        ("órgão", "órgãos"),
        ("sanção", "sanções"),
    ]
    for singular, plural in pairs:
        assert a.tokens(singular, "pt") == a.tokens(plural, "pt"), (singular, plural)


def test_portuguese_verb_forms_share_a_stem() -> None:
    a = Analyzer()
    stems = {a.tokens(w, "pt")[0] for w in ("tratar", "tratou", "tratado", "tratados")}
    assert len(stems) == 1
    assert a.tokens("comunicar", "pt") == a.tokens("comunicou", "pt") == a.tokens("comunicação", "pt")


def test_english_stemming_and_stop_words() -> None:
    a = Analyzer()
    assert a.tokens("The processors are processing the data", "en") == ["processor", "process", "data"]


def test_stop_words_of_both_languages_are_removed_from_mixed_text() -> None:
    a = Analyzer()
    tokens = a.tokens("O controller deve notificar the breach para a ANPD", "pt")
    assert "o" not in tokens and "the" not in tokens and "para" not in tokens
    assert {"controll", "notific", "breach", "anpd"} <= set(tokens)


def test_detect_language() -> None:
    assert detect_language("Quais são os direitos dos titulares de dados?") == "pt"
    assert detect_language("What are the rights of the data subject?") == "en"
    assert detect_language("prazo de comunicação") == "pt"  # diacritics decide
    assert detect_language("consentimento do titular") == "pt"  # suffixes decide
    assert detect_language("processing of personal data") == "en"
    assert detect_language("tratamento de dados pessoais") == "pt"


def test_article_suffix_and_numbers_are_kept() -> None:
    assert Analyzer().tokens("Art. 55-J, inciso 3", "pt")[:2] == ["art", "55-j"]


def test_stopword_only_text_gives_no_terms() -> None:
    assert Analyzer().tokens("the of and de da", "en") == []


def test_settings_can_disable_stemming() -> None:
    plain = Analyzer(AnalyzerSettings(stem=False))
    assert plain.tokens("Incidentes de segurança", "pt") == ["incidentes", "seguranca"]


def test_fold_fast_paths_equal_the_character_by_character_fold() -> None:
    import unicodedata

    def slow(text: str) -> str:
        decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).lower())
        return "".join(ch for ch in decomposed if not unicodedata.combining(ch))

    for text in ("Plain ASCII, 55-J!", "Ação Ñandú ǅ İ ẞ Å", "e\u0301 \U0001d400 \U00020000 a\u0327", ""):
        assert fold(text) == slow(text), text


def test_tokens_with_detection_equal_tokens_in_the_detected_language() -> None:
    a = Analyzer()
    for text in ("Quais são os direitos dos titulares?", "What are the rights?", "ﬁnal decisão", "İstanbul data"):
        assert a.tokens(text) == a.tokens(text, detect_language(text)), text


def test_term_cache_gives_the_same_terms_when_full() -> None:
    a, b = Analyzer(), Analyzer()
    b.CACHE_SIZE = 3  # cleared again and again
    text = "Os titulares revogam o consentimento; controllers process personal data quickly"
    for lang in ("pt", "en"):
        assert b.tokens(text, lang) == b.tokens(text, lang) == a.tokens(text, lang)
    assert all(len(terms) <= 3 for terms in b._terms.values())
