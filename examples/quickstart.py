"""Train a small churn classifier three times and track each run with passerelle.

    uv run python examples/quickstart.py
    uv run passerelle server            # then open http://127.0.0.1:5050/

With no ``PASSERELLE_URL`` the runs go to the embedded store in ``./.passerelle`` (the folder
``passerelle server`` serves by default). Set ``PASSERELLE_URL`` (and ``PASSERELLE_API_KEY``) to log
to a running server instead; the code does not change.

Each run records its params, the training and test tables (fingerprint, schema, Parquet snapshot),
the loss after every solver iteration, the final scores and a confusion matrix (a PNG when
matplotlib is installed, a CSV otherwise). Code, environment and data lineage are recorded without
asking.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss
from sklearn.model_selection import train_test_split

import passerelle as psl

EXPERIMENT = "churn"
FEATURES = [
    "tenure",
    "monthly_charges",
    "support_calls",
    "contract_months",
    "late_payments",
    "data_usage",
    "discount",
    "age",
]
ITERATIONS = 25


def make_data(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A generated, churn-like table: eight numeric features and a boolean label."""
    x, y = make_classification(
        n_samples=1200, n_features=len(FEATURES), n_informative=5, random_state=seed
    )
    table = pd.DataFrame(x, columns=FEATURES)
    table["churned"] = y.astype(bool)
    train, test = train_test_split(table, test_size=0.25, random_state=seed, stratify=y)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def confusion_artifact(matrix: np.ndarray, folder: Path) -> Path:
    """The confusion matrix as a PNG if matplotlib is installed, else as a CSV file."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        path = folder / "confusion.csv"
        frame = pd.DataFrame(matrix, index=["true_stay", "true_churn"])
        frame.columns = ["pred_stay", "pred_churn"]
        frame.to_csv(path)
        return path
    fig, ax = plt.subplots(figsize=(3.5, 3))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center")
    ax.set_xticks([0, 1], ["stay", "churn"])
    ax.set_yticks([0, 1], ["stay", "churn"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    path = folder / "confusion.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def train_one(c: float, train: pd.DataFrame, test: pd.DataFrame) -> str:
    """One run: fit step by step so the loss curve is recorded, then score on the test set."""
    x_train, y_train = train[FEATURES], train["churned"]
    x_test, y_test = test[FEATURES], test["churned"]
    with psl.start_run(experiment=EXPERIMENT, run_name=f"logreg-C{c:g}") as run:
        run.log_params({"C": c, "penalty": "l2", "solver": "lbfgs", "iterations": ITERATIONS})
        run.log_dataset(train, name="train", context="training")
        run.log_dataset(test, name="test", context="evaluation")

        # warm_start + max_iter=1: each fit() call is one more solver iteration.
        model = LogisticRegression(C=c, max_iter=1, warm_start=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for step in range(ITERATIONS):
                model.fit(x_train, y_train)
                loss = log_loss(y_train, model.predict_proba(x_train))
                run.log_metric("loss", loss, step=step)

        predicted = model.predict(x_test)
        run.log_metrics(
            {
                "f1": f1_score(y_test, predicted),
                "accuracy": accuracy_score(y_test, predicted),
                "test_loss": log_loss(y_test, model.predict_proba(x_test)),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            matrix = confusion_matrix(y_test, predicted)
            run.log_artifact(confusion_artifact(matrix, Path(tmp)))
        run.set_tag("model", "LogisticRegression")
    return run.id


def main() -> None:
    train, test = make_data()
    run_ids = [train_one(c, train, test) for c in (0.01, 1.0, 10.0)]

    r = psl.get_run(run_ids[1])
    print(f"run {r.name} ({r.id}): {r.status}")
    print("  params :", r.params)
    print("  metrics:", {k: round(v, 4) for k, v in r.metrics.items()})
    print("  commit :", r.lineage["code"].get("commit"), "dirty:", r.lineage["code"].get("dirty"))
    print("  data   :", [(d["name"], d["digest"][:12]) for d in r.lineage["data"]])
    print("  loss   :", [round(value, 4) for _, value, _ in r.metric_history("loss")[:5]], "...")

    best = psl.search_runs(
        experiment=EXPERIMENT,
        filter="metrics.f1 > 0.5 and params.penalty = 'l2'",
        order_by=["metrics.f1 DESC"],
    )
    print(best[["run_name", "metrics.f1", "metrics.accuracy", "params.C"]].to_string(index=False))
    print("\nSee them in the UI: uv run passerelle server, then open http://127.0.0.1:5050/")


if __name__ == "__main__":
    main()
