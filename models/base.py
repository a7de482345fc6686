"""The per-signal model seam: an online model of one signal's normal behaviour.

Contract (River's, checked for every implementation by ``tests/contract/test_models.py``):

- prequential use: ``score_one(x)`` first, then ``learn_one(x)``; ``score_one`` never changes
  the model.
- ``score_one`` returns a non-negative anomaly score that keeps resolution in the tail (no
  saturation at 1.0): about the number of robust standard deviations ``x`` lies from normal, 0
  while the model has not seen enough to say.
- ``learn_one`` protects the model: a point the model finds anomalous does not (fully) teach it,
  so a regression is not learned as the new normal within a few samples.
- a model pickles, and the unpickled copy scores and learns exactly as the original (the engine
  checkpoints its state with ``pickle``); ``to_state()`` returns the few floats that make up that
  state, for inspection and size accounting.
"""

from __future__ import annotations

from typing import Protocol


class SignalModel(Protocol):
    def score_one(self, x: float) -> float: ...

    def learn_one(self, x: float) -> None: ...

    def to_state(self) -> list[float]: ...
