"""(y_true, y_pred) → Report: per-intent precision / recall / F1, complaint recall and the
confusion matrix, as text and as a PNG. Pure except `save_png`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from daemon.decide import COMPLAINTS
from daemon.domain import INTENTS


@dataclass(frozen=True)
class Report:
    labels: tuple[str, ...]
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]
    macro_f1: float
    accuracy: float
    complaint_precision: float
    complaint_recall: float
    matrix: tuple[tuple[int, ...], ...]

    def text(self) -> str:
        w = max(len(x) for x in self.labels)
        lines = [f"{'intent':<{w}}  precision  recall     f1  support"]
        for i, lab in enumerate(self.labels):
            lines.append(f"{lab:<{w}}  {self.precision[i]:9.3f} {self.recall[i]:7.3f} "
                         f"{self.f1[i]:6.3f} {self.support[i]:8d}")
        lines += ["", f"macro-F1 {self.macro_f1:.3f}   accuracy {self.accuracy:.3f}   "
                      f"complaint recall {self.complaint_recall:.3f} at precision "
                      f"{self.complaint_precision:.3f}", "", "confusion matrix (rows: true, columns: predicted)"]
        abbrev = [lab[:6] for lab in self.labels]
        lines.append(" " * (w + 1) + " ".join(f"{a:>6}" for a in abbrev))
        for lab, row in zip(self.labels, self.matrix, strict=True):
            lines.append(f"{lab:<{w}} " + " ".join(f"{v:6d}" for v in row))
        return "\n".join(lines)

    def confusions(self, top: int = 8) -> list[tuple[str, str, int]]:
        pairs = [(self.labels[i], self.labels[j], v) for i, row in enumerate(self.matrix)
                 for j, v in enumerate(row) if i != j and v]
        return sorted(pairs, key=lambda x: -x[2])[:top]

    def save_png(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 8))
        ax.imshow(self.matrix, cmap="Blues")
        ax.set_xticks(range(len(self.labels)), self.labels, rotation=60, ha="right")
        ax.set_yticks(range(len(self.labels)), self.labels)
        for i, row in enumerate(self.matrix):
            for j, v in enumerate(row):
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


def report(y_true: Sequence[str], y_pred: Sequence[str]) -> Report:
    labels = tuple(i for i in INTENTS if i in set(y_true) | set(y_pred))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(labels),
                                                 zero_division=0)
    true_c = [t in COMPLAINTS for t in y_true]
    pred_c = [q in COMPLAINTS for q in y_pred]
    tp = sum(a and b for a, b in zip(true_c, pred_c, strict=True))
    present = [i for i, lab in enumerate(labels) if lab in set(y_true)]
    return Report(
        labels=labels, precision=tuple(map(float, p)), recall=tuple(map(float, r)),
        f1=tuple(map(float, f)), support=tuple(map(int, s)),
        macro_f1=float(sum(f[i] for i in present) / max(len(present), 1)),
        accuracy=sum(a == b for a, b in zip(y_true, y_pred, strict=True)) / max(len(y_true), 1),
        complaint_precision=tp / max(sum(pred_c), 1), complaint_recall=tp / max(sum(true_c), 1),
        matrix=tuple(tuple(int(v) for v in row)
                     for row in confusion_matrix(y_true, y_pred, labels=list(labels))),
    )
