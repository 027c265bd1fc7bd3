"""Models for monitoring tests: one that answers with class probabilities, one that is wrong."""

from __future__ import annotations

from typing import Any


class WithProbabilities:
    """Wraps a classifier so each answer is ``{"label", "proba"}``: what the estimate needs."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, frame: Any) -> list[dict[str, Any]]:
        proba = self.model.predict_proba(frame)
        classes = [str(c) for c in self.model.classes_]
        return [
            {
                "label": classes[row.argmax()],
                "proba": dict(zip(classes, map(float, row), strict=True)),
            }
            for row in proba
        ]


class Inverted:
    """Answers the opposite of a binary classifier: clearly worse."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, frame: Any) -> list[int]:
        return [1 - int(p) for p in self.model.predict(frame)]
