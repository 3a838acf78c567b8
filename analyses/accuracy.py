"""Accuracy of the frozen classifier on originals and reconstructions: overall, per class and category."""
from __future__ import annotations

import numpy as np
import pandas as pd

from probe.analyses.runs import objective_record, scored_against, scored_against_labels
from probe.analyses.registry import RunContext, register_analysis
from probe.analyses.schema import TableSchema, col
from probe.metrics import mean_average_precision
from probe.rundir import Tables

CONDITION = col("condition", "str", "the classifier's input: the original clip, or the probe's output before and after "
                                   "finetuning", values=("original", "before", "after"))
CLIPS = col("clips", "int", "clips scored")
TOP = (col("top1", "float", "share of clips whose target is the top class (without labels: agreement with the "
                            "original's top class)", "fraction"),
       col("top5", "float", "share of clips whose target is among the top five classes", "fraction"))
ACCURACY_TABLES = (
    TableSchema(Tables.ACCURACY_OVERALL, "condition: the frozen classifier's accuracy over the scored clips",
                (CONDITION, CLIPS, *TOP,
                 col("map", "float", "mean average precision against the original's tags (multi-label classifiers only)",
                     "fraction", optional=True))),
    TableSchema(Tables.ACCURACY_PER_CLASS, "condition x class: accuracy on the class's clips",
                (CONDITION, col("class_index", "int", "the class's position in the classifier's output"),
                 col("class", "str", "class name"), col("category", "str", "the class's category"), CLIPS, *TOP)),
    TableSchema(Tables.ACCURACY_PER_CATEGORY, "condition x category: accuracy on the category's clips",
                (CONDITION, col("category_index", "int", "the category's position"), col("category", "str", "category name"),
                 CLIPS, *TOP)),
    TableSchema(Tables.CONFUSION, "condition x true class x predicted class: clip counts (pairs never seen are left out)",
                (CONDITION, col("true", "str", "the clip's class"), col("predicted", "str", "the classifier's top class"),
                 col("count", "int", "clips"))),
)


def top_k_hits(logits: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Whether each clip's target is among its k highest logits."""
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return (top == targets[:, None]).any(1)


def accuracy_tables(logits: dict[str, np.ndarray], targets: np.ndarray, class_names: list[str],
                    class_categories: list[int], category_names: list[str]) -> dict[str, pd.DataFrame]:
    """`accuracy_overall`, `accuracy_per_class`, `accuracy_per_category`, `confusion` (long form)."""
    categories = np.asarray(class_categories)[targets]
    overall, per_class, per_category, confusion = [], [], [], []
    for condition, values in logits.items():
        predicted = values.argmax(1)
        top1, top5 = predicted == targets, top_k_hits(values, targets, 5)
        overall.append({"condition": condition, "clips": len(targets), "top1": top1.mean(), "top5": top5.mean()})
        for index, name in enumerate(class_names):
            members = targets == index
            if members.any():
                per_class.append({"condition": condition, "class_index": index, "class": name,
                                  "category": category_names[class_categories[index]], "clips": int(members.sum()),
                                  "top1": top1[members].mean(), "top5": top5[members].mean()})
        for index, name in enumerate(category_names):
            members = categories == index
            if members.any():
                per_category.append({"condition": condition, "category_index": index, "category": name,
                                     "clips": int(members.sum()), "top1": top1[members].mean(), "top5": top5[members].mean()})
        counts = np.zeros((len(class_names), values.shape[1]), dtype=np.int64)
        np.add.at(counts, (targets, predicted), 1)
        true_idx, pred_idx = np.nonzero(counts)
        confusion += [{"condition": condition, "true": class_names[t], "predicted": class_names[p] if p < len(class_names) else str(p),
                       "count": int(counts[t, p])} for t, p in zip(true_idx, pred_idx)]
    return {Tables.ACCURACY_OVERALL: pd.DataFrame(overall), Tables.ACCURACY_PER_CLASS: pd.DataFrame(per_class),
            Tables.ACCURACY_PER_CATEGORY: pd.DataFrame(per_category), Tables.CONFUSION: pd.DataFrame(confusion)}


@register_analysis("accuracy", tables=ACCURACY_TABLES, writes=("summary:accuracy",))
def accuracy_analysis(context: RunContext) -> None:
    """Top-1 and top-5 accuracy per condition, class and category, and the confusion counts. A run trained without
    labels (`--objective fidelity`) stored the classifier's own top class on each original as its target: its
    accuracy is agreement with the original's decision (1 on the originals by definition), and `scored_against` says
    so; a multi-label classifier's runs add the mAP against the original's tags."""
    run = context.run
    if not run.logits:
        context.summary["accuracy"] = {}
        return
    against = scored_against(run)
    context.say(f"{run.label}: {'accuracy' if scored_against_labels(run) else 'agreement'} on {len(run.targets)} clips")
    context.tables.update(accuracy_tables(run.logits, run.targets, run.class_names, run.class_categories,
                                          run.category_names))
    columns = ["top1", "top5"]
    if objective_record(run).get("multi_label") and "original" in run.logits:
        overall = context.tables[Tables.ACCURACY_OVERALL]
        tags = run.logits["original"] > 0  # the original's decisions: its sigmoid outputs above 0.5
        overall["map"] = [mean_average_precision(run.logits[c], tags) for c in overall.condition]
        columns.append("map")
    context.summary["accuracy"] = {**context.tables[Tables.ACCURACY_OVERALL].set_index("condition")[columns]
                                   .to_dict("index"), "scored_against": against}
