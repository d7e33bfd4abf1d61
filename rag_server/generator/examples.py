"""Training examples for the answer generator: prompts exactly as ``build_prompt`` writes them, then the answer.

Pure Python: the tensors a model trains on are made from these by :mod:`.batches`.

An example's text is ``prompt + " " + answer + "\\n"`` where the answer is one sentence of the
prompt's context, the one the question asks about. Two kinds are mixed:

* real: a sentence of a corpus passage, a question made from its citation and a few of its
  distinctive words (English or Portuguese templates, in the passage's language), and a context
  of that passage plus one or two distractor passages, in random order;
* synthetic: the same frame, but every context sentence is a real sentence with its words
  shuffled and some replaced at random. Nothing in them can be memorised, so the only way to
  predict the answer is to find, in the context, the sentence that shares the question's words
  and copy it. (A character model trained on real examples alone memorises them; with about
  90% synthetic examples it learns to copy.) Some
  distractor sentences share one of the question's words, so the model must pick the best
  match, not any sentence with a familiar word.

Every example fits in ``block_size + 1`` characters (the model reads ``text[:-1]`` and predicts
``text[1:]``): passages are cut to whole sentences around the answer before ``build_prompt`` sees
them, so it never truncates. Everything is deterministic under a seed.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..analysis import fold
from ..chunking import chunk_corpus
from ..documents import load_corpus
from ..passage import Passage
from ..prompt import NO_PASSAGES, build_prompt, one_line
from ..retrieval.base import Hit
from ..sentences import split_sentences
from ..stopwords import ALL as STOPWORDS
from .vocab import CharVocab

ANSWER_PREFIX = " "  # between "Answer:" and the answer
STOP = "\n"  # ends every answer; the generator stops there

TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "What does {cite} say about {kw}?",
        "According to {cite}, what about {kw}?",
        "What is said about {kw}?",
        "What does the text say about {kw}?",
        "What about {kw}?",
        "How does it work: {kw}?",
        "When and why {kw}?",
        "Which rule covers {kw}?",
        "{kw}?",
    ),
    "pt": (
        "O que diz {cite} sobre {kw}?",
        "Segundo {cite}, o que se diz sobre {kw}?",
        "O que se diz sobre {kw}?",
        "O que o texto diz sobre {kw}?",
        "E quanto a {kw}?",
        "Como funciona: {kw}?",
        "Quando e por que {kw}?",
        "Qual regra trata de {kw}?",
        "{kw}?",
    ),
}
_AND = {"en": "and", "pt": "e"}
_WORD = re.compile(r"\w+(?:[-'’]\w+)*")
# Characters a question or passage may use beyond the corpus, kept in the vocabulary so that they
# are not unknown at inference time.
EXTRA_CHARS = string.ascii_letters + string.digits + string.punctuation + " \n"


@dataclass(frozen=True)
class Example:
    """One training example. ``passages`` are the context in prompt order, as cut to fit."""

    question: str
    passages: tuple[Passage, ...]
    prompt: str
    answer: str
    synthetic: bool

    @property
    def text(self) -> str:
        return format_example(self.prompt, self.answer)


def format_example(prompt: str, answer: str) -> str:
    """The text a model learns: ``prompt`` followed by `` <answer>\\n``."""
    return f"{prompt}{ANSWER_PREFIX}{answer}{STOP}"


def load_passages(corpus: Path | str) -> list[Passage]:
    """The passages of a corpus directory (or file), chunked as the indexes chunk them."""
    return chunk_corpus(load_corpus([Path(corpus)]))


def corpus_vocab(passages: Sequence[Passage]) -> CharVocab:
    """Every character an example over ``passages`` can contain, plus printable ASCII."""
    texts: list[str] = [one_line(p.text) for p in passages]
    texts += [one_line(p.citation) for p in passages]
    texts += [t for templates in TEMPLATES.values() for t in templates]
    texts += ["Question: \nContext:\n[0123456789] () Answer:", NO_PASSAGES, *_AND.values()]
    return CharVocab.build(texts, extra=EXTRA_CHARS)


def split_passages(passages: Sequence[Passage], val_fraction: float, seed: int) -> tuple[list[Passage], list[Passage]]:
    """Train and validation passages (disjoint, at least 2 each): validation examples test copying
    from passages the model never trained on."""
    if len(passages) < 4:
        raise ValueError(f"need at least 4 passages to split into train and validation, got {len(passages)}")
    order = list(passages)
    random.Random(seed).shuffle(order)
    n_val = min(len(order) - 2, max(2, round(len(order) * val_fraction)))
    return order[n_val:], order[:n_val]


def _words(sentence: str) -> list[str]:
    return _WORD.findall(sentence)


def _is_keyword(word: str) -> bool:
    return len(word) >= 4 and not word.isdigit() and fold(word) not in STOPWORDS


def _join_keywords(words: Sequence[str], language: str) -> str:
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} {_AND[language]} {words[-1]}"


class ExampleBuilder:
    """Makes real and synthetic examples over a list of passages (the corpus, or one split of it)."""

    def __init__(
        self,
        passages: Sequence[Passage],
        block_size: int,
        *,
        min_answer_chars: int = 20,
        max_answer_chars: int = 200,
    ) -> None:
        if len(passages) < 2:
            raise ValueError("need at least 2 passages (a target and a distractor)")
        self.passages = list(passages)
        self.block_size = block_size
        self.min_answer_chars = min_answer_chars
        self.max_answer_chars = max_answer_chars
        # Sentences as they appear in a prompt (one line), per passage.
        self.sentences: list[list[str]] = [split_sentences(one_line(p.text)) for p in self.passages]
        self.answerable = [i for i, sents in enumerate(self.sentences) if any(self._is_answer(s) for s in sents)]
        # Raw material for synthetic sentences: real sentences and the words they use.
        self.sentence_pool = [s for sents in self.sentences for s in sents if self._is_answer(s)]
        self.word_pool = sorted({w for s in self.sentence_pool for w in s.split()})
        if not self.sentence_pool:
            raise ValueError(
                f"no sentence of {min_answer_chars}–{max_answer_chars} characters with a keyword in the passages"
            )

    def _is_answer(self, sentence: str) -> bool:
        return self.min_answer_chars <= len(sentence) <= self.max_answer_chars and any(
            _is_keyword(w) for w in _words(sentence)
        )

    # ------------------------------------------------------------------ questions

    @staticmethod
    def _keywords(target: str, others: Sequence[str], rng: random.Random) -> list[str]:
        """2–3 words of ``target`` (in its order), preferring those no other sentence uses."""
        elsewhere = {fold(w) for s in others for w in _words(s)}
        candidates: list[str] = []
        seen: set[str] = set()
        for word in _words(target):
            key = fold(word)
            if _is_keyword(word) and key not in seen:
                seen.add(key)
                candidates.append(word)
        distinctive = [w for w in candidates if fold(w) not in elsewhere]
        pool = distinctive if len(distinctive) >= 2 else candidates
        chosen = set(rng.sample(range(len(pool)), min(len(pool), rng.randint(2, 3))))
        return [w for i, w in enumerate(pool) if i in chosen]

    @staticmethod
    def _question(
        citation: str, keywords: Sequence[str], language: str, rng: random.Random, inflect: float = 0.0
    ) -> str:
        """A templated question about ``keywords``. With probability ``inflect`` a keyword of 6 or
        more letters loses 1–3 final letters, as people ask about "process" for "processing" or
        "dado" for "dados" (at least 5 letters stay): the model must match word stems, not only
        exact strings. A question that starts with a keyword capitalises it."""
        words = [
            w[: -rng.randint(1, min(3, len(w) - 5))] if len(w) >= 6 and w.isalpha() and rng.random() < inflect else w
            for w in keywords
        ]
        template = rng.choice(TEMPLATES.get(language, TEMPLATES["en"]))
        question = template.format(cite=citation, kw=_join_keywords(words, "pt" if language == "pt" else "en"))
        return question[:1].upper() + question[1:]

    # ------------------------------------------------------------------ fitting into block_size

    @staticmethod
    def _window(sentences: Sequence[str], room: int, rng: random.Random, per_line: int) -> list[str] | None:
        """Consecutive sentences from a random start whose prompt lines (each sentence plus
        ``per_line`` characters of number, citation and newline) take at most ``room``."""
        starts = [i for i, s in enumerate(sentences) if len(s) + per_line <= room]
        if not starts:
            return None
        lo = rng.choice(starts)
        hi = lo + 1
        used = len(sentences[lo]) + per_line
        while hi < len(sentences) and used + per_line + len(sentences[hi]) <= room and rng.random() < 0.8:
            used += per_line + len(sentences[hi])
            hi += 1
        return list(sentences[lo:hi])

    def _assemble(
        self,
        question: str,
        target: Passage,
        sentences: Sequence[str],
        t: int,
        distractors: Sequence[tuple[Passage, Sequence[str]]],
        rng: random.Random,
        synthetic: bool,
    ) -> Example | None:
        """The example whose answer is ``sentences[t]`` of ``target``, with as much context as fits."""
        answer = sentences[t]
        # prompt + " " + answer + "\n" must be at most block_size + 1 characters.
        max_prompt = self.block_size + 1 - len(ANSWER_PREFIX) - len(answer) - len(STOP)
        frame = len(f"Question: {question}\nContext:\n") + len("Answer:")

        def line_cost(passage: Passage) -> int:  # "[n] (<citation>) " plus the newline, per sentence; n < 10
            return len(f"[1] ({one_line(passage.citation)}) ") + 1

        per_target = line_cost(target)
        room = max_prompt - frame
        if room < len(answer) + per_target:
            return None
        # The target passage: the answer plus neighbouring sentences, growing at random while they
        # fit in its share of the room (the rest is for the distractors).
        first = len(answer) + per_target
        share = room if not distractors else max(first, int(room * rng.uniform(0.3, 0.6)))
        lo, hi, used = t, t + 1, first
        while True:
            options = []
            if lo > 0 and used + per_target + len(sentences[lo - 1]) <= share:
                options.append("left")
            if hi < len(sentences) and used + per_target + len(sentences[hi]) <= share:
                options.append("right")
            if not options or rng.random() < 0.15:
                break
            if rng.choice(options) == "left":
                lo -= 1
                used += per_target + len(sentences[lo])
            else:
                used += per_target + len(sentences[hi])
                hi += 1
        context = [replace(target, text=" ".join(sentences[lo:hi]))]
        room -= used
        for k, (passage, sents) in enumerate(distractors):
            left = len(distractors) - k
            per_line = line_cost(passage)
            window = self._window(sents, room // left, rng, per_line)
            if window is None:
                continue
            context.append(replace(passage, text=" ".join(window)))
            room -= sum(len(sentence) + per_line for sentence in window)
        rng.shuffle(context)

        hits = [Hit(rank=i, score=1.0 / i, passage=p) for i, p in enumerate(context, start=1)]
        prompt = build_prompt(question, hits, budget=max_prompt)
        # Guard the invariants: nothing cut or de-duplicated away, and the answer is in the context.
        if prompt.truncated or len(prompt.citations) != len(context):
            return None
        if not any(answer in c.text for c in prompt.citations):
            return None
        return Example(
            question=one_line(question),
            passages=tuple(context),
            prompt=prompt.text,
            answer=answer,
            synthetic=synthetic,
        )

    # ------------------------------------------------------------------ the two kinds

    def _distractor_indices(self, exclude: int, rng: random.Random, count: int) -> list[int]:
        others = [i for i in range(len(self.passages)) if i != exclude]
        return rng.sample(others, min(count, len(others)))

    def real(self, rng: random.Random, passage_index: int | None = None) -> Example | None:
        """A question about one sentence of a passage (random, or ``passage_index``); None when the
        passage has no usable sentence or the example cannot fit."""
        i = rng.choice(self.answerable) if passage_index is None else passage_index
        sentences = self.sentences[i]
        candidates = [j for j, s in enumerate(sentences) if self._is_answer(s)]
        if not candidates:
            return None
        t = rng.choice(candidates)
        target = self.passages[i]
        distractors = [
            (self.passages[j], self.sentences[j]) for j in self._distractor_indices(i, rng, rng.randint(1, 2))
        ]
        others = [s for j, s in enumerate(sentences) if j != t] + [s for _, sents in distractors for s in sents]
        keywords = self._keywords(sentences[t], others, rng)
        if not keywords:
            return None
        language = "pt" if target.language == "pt" else "en"
        question = self._question(one_line(target.citation), keywords, language, rng, inflect=0.15)
        return self._assemble(question, target, sentences, t, distractors, rng, synthetic=False)

    def _scramble(self, rng: random.Random) -> str:
        """A real sentence's words, shuffled, about a third replaced by random corpus words or
        random letters, capitalised and ended with a full stop: looks like text, means nothing."""
        words = rng.choice(self.sentence_pool).split()
        rng.shuffle(words)
        out: list[str] = []
        for word in words:
            word = word.rstrip(".!?;:") or word  # no sentence ends inside the sentence
            roll = rng.random()
            if roll < 0.25:
                word = rng.choice(self.word_pool)
            elif roll < 0.33:
                word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))
            out.append(word)
        sentence = " ".join(out).rstrip(".,;:!?")
        sentence = sentence[:1].upper() + sentence[1:] + "."
        if len(sentence) > self.max_answer_chars:  # cut at a word boundary
            sentence = sentence[: self.max_answer_chars - 1].rsplit(" ", 1)[0].rstrip(".,;:!?") + "."
        return sentence

    def synthetic(self, rng: random.Random) -> Example | None:
        """A copy drill: 2–3 passages of scrambled sentences under real citations; the question
        names the target passage (sometimes) and 2–3 words of the target sentence."""
        metas = [
            self.passages[j] for j in rng.sample(range(len(self.passages)), min(len(self.passages), rng.randint(2, 3)))
        ]
        bodies = [[self._scramble(rng) for _ in range(rng.randint(2, 5))] for _ in metas]
        t = rng.randrange(len(bodies[0]))
        others = [s for j, s in enumerate(bodies[0]) if j != t] + [s for body in bodies[1:] for s in body]
        keywords = self._keywords(bodies[0][t], others, rng)
        if len(keywords) < 2:
            return None
        # A hard negative: one question word planted in a sentence that is not the answer, so
        # sharing a single word is not enough; the answer is the sentence that shares them all.
        if rng.random() < 0.3:
            body = rng.choice([b for b in bodies[1:]] + ([bodies[0]] if len(bodies[0]) > 1 else []))
            j = rng.choice([j for j in range(len(body)) if body is not bodies[0] or j != t])
            body[j] = f"{body[j][:-1]} {rng.choice(keywords)}."
        passages = [replace(meta, id=f"synthetic#{k}") for k, meta in enumerate(metas)]
        language = rng.choice(("en", "pt"))
        question = self._question(one_line(passages[0].citation), keywords, language, rng, inflect=0.25)
        return self._assemble(
            question,
            passages[0],
            bodies[0],
            t,
            list(zip(passages[1:], bodies[1:], strict=True)),
            rng,
            synthetic=True,
        )


class ExampleStream:
    """An endless, seeded stream of examples: a ``synthetic_ratio`` share of copy drills, the rest real
    examples that visit every answerable passage once per epoch, in a reshuffled order."""

    def __init__(self, builder: ExampleBuilder, synthetic_ratio: float, seed: int) -> None:
        if not 0.0 <= synthetic_ratio <= 1.0:
            raise ValueError(f"synthetic_ratio must be in [0, 1], got {synthetic_ratio}")
        self.builder = builder
        self.synthetic_ratio = synthetic_ratio
        self.rng = random.Random(seed)
        self._queue: list[int] = []

    def _next_passage(self) -> int:
        if not self._queue:
            self._queue = list(self.builder.answerable)
            self.rng.shuffle(self._queue)
        return self._queue.pop()

    def __iter__(self) -> Iterator[Example]:
        return self

    def __next__(self) -> Example:
        synthetic = self.rng.random() < self.synthetic_ratio
        for _ in range(100):  # an example that cannot fit is skipped; a few misses in a row are normal
            if synthetic:
                example = self.builder.synthetic(self.rng)
            else:
                example = self.builder.real(self.rng, self._next_passage())
            if example is not None:
                return example
        raise RuntimeError(
            f"could not make a {'synthetic' if synthetic else 'real'} example in 100 tries: "
            f"is block_size ({self.builder.block_size}) too small for the passages and citations?"
        )

    def take(self, n: int) -> list[Example]:
        return [next(self) for _ in range(n)]


def build_examples(
    passages: Sequence[Passage], n: int, block_size: int, synthetic_ratio: float = 0.9, seed: int = 0
) -> list[Example]:
    """``n`` examples over ``passages``, the same for the same arguments."""
    return ExampleStream(ExampleBuilder(passages, block_size), synthetic_ratio, seed).take(n)
