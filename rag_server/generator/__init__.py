"""The character-level answer generator: a small GPT that completes a ``build_prompt`` prompt with an
answer copied from its context.

    from rag_server.generator import Generator
    generator = Generator.load("rag_server/generator/checkpoints/generator.pt")
    answer = generator.complete(prompt.text).strip()

Train one with ``rag-server train`` (``generator/training.py``); the shipped one's recipe is
``recipes/shipped.json``.
"""

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .model import CharTransformer, GeneratorConfig
from .serving import Generator, load_generator
from .vocab import CharVocab

__all__ = [
    "CharTransformer",
    "CharVocab",
    "Checkpoint",
    "Generator",
    "GeneratorConfig",
    "load_checkpoint",
    "load_generator",
    "save_checkpoint",
]
