"""Teaching lessons: the ideas under ``rag_server``, one small runnable script each.

Run a lesson with ``python -m rag_server.teaching.<name>``. Each module also exposes a pure function
that returns what ``main()`` prints, so the tests check numbers instead of parsing stdout.

1. ``word_bigrams`` — count adjacent word pairs; P(next | word) = count(word, next) / count(word, ·).
2. ``mlp_torch`` — a 3 → 4 (ReLU) → 1 perceptron forward pass in PyTorch: shapes and arithmetic.
3. ``mlp_keras`` — the same network in Keras 3 on the torch backend (different initialisers).
4. ``char_bigram`` — a character bigram as an ``nn.Embedding(V, V)`` table of logits; then trained
   with cross-entropy on the corpus and scored in validation bits per character.
5. ``keyword_rag`` — retrieval by keyword overlap with the product's own ``Analyzer`` and
   ``KeywordIndex``, and the prompt a language model would receive.
6. ``ladder`` — the bits/char ladder: word bigram, char bigram and the generator scored on the
   same held-out answers.

Nothing is imported here on purpose: importing the package must not pull in Keras or torch.
"""

LESSONS: tuple[str, ...] = ("word_bigrams", "mlp_torch", "mlp_keras", "char_bigram", "keyword_rag", "ladder")

__all__ = ["LESSONS"]
