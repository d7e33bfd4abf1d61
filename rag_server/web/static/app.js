// The web page of rag_server: plain JavaScript, no dependencies, no build step.
// All data from the server is written with textContent, never as HTML.
"use strict";

(function () {
  const LABELS = {
    en: {
      title: "LGPD & AI infrastructure: compliance questions",
      subtitle: "Answers grounded in the indexed documents, with numbered citations.",
      uiLanguage: "Page language",
      question: "Question",
      questionPlaceholder: "e.g. Who bears the burden of proving that consent was obtained?",
      strategy: "Retrieval strategy",
      defaultSuffix: " (default)",
      passageLanguage: "Passage language",
      langAny: "Any",
      langPt: "Portuguese",
      langEn: "English",
      passages: "Passages",
      submit: "Ask",
      results: "Results",
      errorTitle: "Error",
      unsupportedTitle: "Not supported by the evidence.",
      unsupportedBody:
        "The indexed documents do not say enough to answer this question; the closest passages are listed below.",
      answer: "Answer",
      noAnswer: "(no answer)",
      citations: "Citations",
      answerSource: "The answer comes from this sentence",
      closestPassages: "Closest passages",
      noCitations: "No passage was found.",
      prompt: "Exact prompt",
      buildId: "Index build",
      strategyUsed: "Strategy",
      generator: "Generator",
      extractive: "none (extractive answer)",
      timings: "Timings",
      total: "total",
      apiDocs: "API reference",
      emptyQuestion: "Please type a question.",
      loading: "Searching the documents…",
      networkError: "The server could not be reached.",
      badResponse: "The server sent a response that is not valid JSON.",
      apiKeyPrompt: "This server requires an API key. Key:",
      strategiesError: "Could not load the retrieval strategies:",
      ready: "Ready — index build",
      notReady: "Server not ready:",
      languageNames: { pt: "Portuguese", en: "English" },
    },
    pt: {
      title: "LGPD e infraestrutura de IA: perguntas de conformidade",
      subtitle: "Respostas baseadas nos documentos indexados, com citações numeradas.",
      uiLanguage: "Idioma da página",
      question: "Pergunta",
      questionPlaceholder: "ex.: Quem tem o ônus de provar que o consentimento foi obtido?",
      strategy: "Estratégia de busca",
      defaultSuffix: " (padrão)",
      passageLanguage: "Idioma dos trechos",
      langAny: "Qualquer",
      langPt: "Português",
      langEn: "Inglês",
      passages: "Trechos",
      submit: "Perguntar",
      results: "Resultados",
      errorTitle: "Erro",
      unsupportedTitle: "Sem respaldo nas evidências.",
      unsupportedBody:
        "Os documentos indexados não trazem informação suficiente para responder a esta pergunta; os trechos mais próximos estão listados abaixo.",
      answer: "Resposta",
      noAnswer: "(sem resposta)",
      citations: "Citações",
      answerSource: "A resposta vem desta frase",
      closestPassages: "Trechos mais próximos",
      noCitations: "Nenhum trecho encontrado.",
      prompt: "Prompt exato",
      buildId: "Build do índice",
      strategyUsed: "Estratégia",
      generator: "Gerador",
      extractive: "nenhum (resposta extrativa)",
      timings: "Tempos",
      total: "total",
      apiDocs: "Referência da API",
      emptyQuestion: "Digite uma pergunta.",
      loading: "Buscando nos documentos…",
      networkError: "Não foi possível contactar o servidor.",
      badResponse: "O servidor enviou uma resposta que não é JSON válido.",
      apiKeyPrompt: "Este servidor exige uma chave de API. Chave:",
      strategiesError: "Não foi possível carregar as estratégias de busca:",
      ready: "Pronto — build do índice",
      notReady: "Servidor não está pronto:",
      languageNames: { pt: "português", en: "inglês" },
    },
  };
  const STORAGE_KEY = "rag_server.ui_lang";

  const $ = (id) => document.getElementById(id);
  const form = $("ask-form");
  const question = $("question");
  const questionError = $("question-error");
  const strategy = $("strategy");
  const submit = $("submit");
  const results = $("results");

  let uiLang = initialLanguage();
  let strategies = null; // {default, strategies: [{name, description}]}
  let lastResult = null; // re-rendered when the page language changes
  let serverState = null; // {ok, text}
  let validationShown = false;

  function initialLanguage() {
    let stored = null;
    try {
      stored = window.localStorage.getItem(STORAGE_KEY);
    } catch (e) {
      stored = null; // storage may be disabled
    }
    if (stored === "pt" || stored === "en") return stored;
    const nav = (navigator.language || "").toLowerCase();
    return nav.startsWith("pt") ? "pt" : "en";
  }

  function t(key) {
    return LABELS[uiLang][key];
  }

  function applyLanguage() {
    document.documentElement.lang = uiLang === "pt" ? "pt-BR" : "en";
    document.title = "rag_server — " + t("title");
    document.querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = t(el.dataset.i18n);
    });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    });
    document.querySelectorAll("[data-ui-lang]").forEach((btn) => {
      btn.setAttribute("aria-pressed", String(btn.dataset.uiLang === uiLang));
    });
    if (validationShown) questionError.textContent = t("emptyQuestion");
    fillStrategies();
    renderServerState();
    if (lastResult) renderResult(lastResult);
  }

  function setLanguage(lang) {
    uiLang = lang;
    try {
      window.localStorage.setItem(STORAGE_KEY, lang);
    } catch (e) {
      /* storage may be disabled */
    }
    applyLanguage();
  }

  // ----- strategies and server state -----

  function fillStrategies() {
    if (!strategies) return;
    const selected = strategy.value || strategies.default;
    strategy.replaceChildren();
    for (const s of strategies.strategies) {
      const option = document.createElement("option");
      option.value = s.name;
      option.textContent = s.name + (s.name === strategies.default ? t("defaultSuffix") : "");
      option.title = s.description;
      option.selected = s.name === selected;
      strategy.append(option);
    }
    showStrategyHint();
  }

  function showStrategyHint() {
    const found = strategies && strategies.strategies.find((s) => s.name === strategy.value);
    $("strategy-hint").textContent = found ? found.description : "";
  }

  async function loadStrategies() {
    try {
      const { status, body } = await getJson("v1/strategies");
      if (status !== 200) throw new Error(errorText(status, body));
      strategies = body;
      fillStrategies();
    } catch (e) {
      showError(t("strategiesError") + " " + e.message);
    }
  }

  async function loadServerState() {
    try {
      const { status, body } = await getJson("readyz");
      serverState =
        status === 200
          ? { ok: true, text: body.build_id }
          : { ok: false, text: (body && (body.reason || body.status)) || String(status) };
    } catch (e) {
      serverState = { ok: false, text: e.message };
    }
    renderServerState();
  }

  function renderServerState() {
    const el = $("server-state");
    if (!serverState) return;
    el.textContent = (serverState.ok ? t("ready") : t("notReady")) + " " + serverState.text;
    el.className = serverState.ok ? "ok" : "not-ok";
  }

  // ----- HTTP -----

  // API keys: when the server requires one (401 from v1/), the page asks for it once and keeps
  // it for this tab only (sessionStorage), sending it as a bearer token.
  const API_KEY_STORAGE = "rag_server.api_key";
  let keyAsked = null; // one question at a time, shared by the requests that need the key

  function storedKey() {
    try {
      return window.sessionStorage.getItem(API_KEY_STORAGE) || "";
    } catch (e) {
      return "";
    }
  }

  function askForKey() {
    if (!keyAsked) {
      keyAsked = Promise.resolve().then(() => {
        const entered = (window.prompt(t("apiKeyPrompt")) || "").trim();
        try {
          if (entered) window.sessionStorage.setItem(API_KEY_STORAGE, entered);
        } catch (e) {
          /* storage refused: the key is used for this request only */
        }
        keyAsked = null;
        return entered;
      });
    }
    return keyAsked;
  }

  async function getJson(url, options, key) {
    let response;
    const api = url.startsWith("v1/");
    const sent = key !== undefined ? key : storedKey();
    const withKey = Object.assign({}, options);
    if (api && sent) withKey.headers = Object.assign({}, withKey.headers, { Authorization: "Bearer " + sent });
    try {
      response = await fetch(url, withKey);
    } catch (e) {
      throw new Error(t("networkError"));
    }
    if (response.status === 401 && api && key === undefined) {
      const entered = await askForKey();
      if (entered) return getJson(url, options, entered);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      if (response.ok) throw new Error(t("badResponse"));
    }
    return { status: response.status, body };
  }

  function errorText(status, body) {
    const err = body && body.error;
    if (err && err.message) return "(" + status + " " + (err.code || "") + ") " + err.message;
    return "(" + status + ")";
  }

  // ----- asking -----

  function showValidation(show) {
    validationShown = show;
    questionError.hidden = !show;
    questionError.textContent = show ? t("emptyQuestion") : "";
    if (show) question.setAttribute("aria-invalid", "true");
    else question.removeAttribute("aria-invalid");
  }

  function showError(text) {
    $("error-text").textContent = text;
    $("error").hidden = false;
  }

  function clearOutput() {
    $("error").hidden = true;
    $("error-text").textContent = "";
    $("result").hidden = true;
    lastResult = null;
  }

  function setBusy(busy) {
    submit.disabled = busy;
    results.setAttribute("aria-busy", String(busy));
    $("status").hidden = !busy;
    $("status").textContent = busy ? t("loading") : "";
  }

  async function ask(event) {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) {
      showValidation(true);
      question.focus();
      return; // no request
    }
    showValidation(false);
    clearOutput();
    const payload = { question: text, k: Number($("k").value) };
    if (strategy.value) payload.strategy = strategy.value;
    if ($("lang").value) payload.lang = $("lang").value;
    setBusy(true);
    try {
      const { status, body } = await getJson("v1/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(payload),
      });
      if (status !== 200) {
        showError(errorText(status, body));
        return;
      }
      lastResult = body;
      renderResult(body);
    } catch (e) {
      showError(e.message);
    } finally {
      setBusy(false);
    }
  }

  function element(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined && text !== null) el.textContent = text;
    return el;
  }

  function languageName(code) {
    return t("languageNames")[code] || code || "?";
  }

  // The passage's text, with the sentences the answer came from marked (offsets from the API).
  function passageWithSources(c, sources) {
    const quote = element("blockquote", "passage");
    const text = c.text || "";
    const marks = sources
      .filter((s) => s.number === c.number && s.start < s.end && s.end <= text.length)
      .sort((a, b) => a.start - b.start);
    let at = 0;
    for (const s of marks) {
      if (s.start < at) continue; // overlapping offsets: keep the first mark
      const mark = element("mark", "source-sentence", text.slice(s.start, s.end));
      mark.title = t("answerSource");
      quote.append(document.createTextNode(text.slice(at, s.start)), mark);
      at = s.end;
    }
    quote.append(document.createTextNode(text.slice(at)));
    return quote;
  }

  function renderResult(r) {
    $("unsupported").hidden = r.supported !== false;
    $("unsupported-message").textContent = r.supported === false && r.message ? r.message : "";

    const answer = $("answer");
    answer.textContent = r.answer ? r.answer : t("noAnswer");
    answer.classList.toggle("empty", !r.answer);

    const note = $("message");
    note.hidden = !(r.supported !== false && r.message);
    note.textContent = r.supported !== false && r.message ? r.message : "";

    $("citations-heading").textContent = r.supported === false ? t("closestPassages") : t("citations");
    const list = $("citations");
    list.replaceChildren();
    for (const c of r.citations || []) {
      const item = element("li", "citation");
      const details = element("details");
      const summary = element("summary");
      summary.append(
        element("span", "cite-num", "[" + c.number + "]"),
        document.createTextNode(" "),
        element("span", "cite-ref", c.citation),
        document.createTextNode(" — "),
        element("span", "cite-title", c.title),
        document.createTextNode(" (" + languageName(c.language) + ")"),
      );
      const sources = r.sources || (r.source ? [r.source] : []);
      details.append(summary, passageWithSources(c, sources));
      if (sources.some((s) => s.number === c.number)) {
        item.classList.add("answer-source");
        details.open = true;
      }
      const meta = element("p", "cite-meta");
      const score = typeof c.score === "number" ? c.score.toFixed(3) : String(c.score);
      meta.textContent = c.source + " · " + c.passage_id + " · score " + score;
      details.append(meta);
      item.append(details);
      list.append(item);
    }
    if (!list.children.length) list.append(element("li", "empty", t("noCitations")));

    $("prompt").textContent = r.prompt || "";
    $("build-id").textContent = r.build_id || "";
    $("strategy-used").textContent = r.strategy || "";
    $("generator-id").textContent = r.generator_id || t("extractive");
    const timings = r.timings_ms || {};
    const parts = Object.keys(timings).map((k) => k + " " + Number(timings[k]).toFixed(1) + " ms");
    const total = Object.values(timings).reduce((a, b) => a + Number(b), 0);
    parts.push(t("total") + " " + total.toFixed(1) + " ms");
    $("timings").textContent = parts.join(" · ");
    $("result").hidden = false;
  }

  // ----- wiring -----

  form.addEventListener("submit", ask);
  question.addEventListener("input", () => {
    if (validationShown && question.value.trim()) showValidation(false);
  });
  question.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  strategy.addEventListener("change", showStrategyHint);
  document.querySelectorAll("[data-ui-lang]").forEach((btn) => {
    btn.addEventListener("click", () => setLanguage(btn.dataset.uiLang));
  });

  applyLanguage();
  loadStrategies();
  loadServerState();
})();
