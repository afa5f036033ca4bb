"""Distillation targets: a student trained on a teacher's predictions learns what the teacher predicts."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from suite.core import Solution, SuiteError, teacher_targets
from suite.core.trainer import Trainer, TrainConfig


def _fit(model, data, epochs=8):
    config = TrainConfig(epochs=epochs, batch_size=8, lr=1e-2, progress=False, augment="none", seed=0,
                         strategy="feature_extraction")
    trainer = Trainer(model, config)
    trainer.fit(data)
    return trainer.model


def test_student_learns_the_teachers_predictions(small_model, photo_data):
    """A teacher trained to name the next class passes that on through the targets alone: the
    student's own labels stay the true classes."""
    shifted = photo_data.subset(np.arange(len(photo_data)))
    shifted.labels = (photo_data.labels + 1) % 3
    teacher = Solution(_fit(copy.deepcopy(small_model), shifted), photo_data.classes)
    taught = teacher_targets(photo_data, [teacher], weight=1.0)
    assert np.array_equal(taught.labels, photo_data.labels)  # hard labels untouched
    student = Solution(_fit(small_model, taught), photo_data.classes)
    agree = (student.predict_proba(photo_data.items).argmax(1) == teacher.predict_proba(photo_data.items).argmax(1))
    assert agree.mean() >= 0.9
    assert (student.predict_proba(photo_data.items).argmax(1) == photo_data.labels).mean() <= 0.2


def test_targets_mix_the_labels_with_the_mean_teacher(small_model, photo_data):
    teachers = [Solution(small_model, photo_data.classes), Solution(copy.deepcopy(small_model), photo_data.classes)]
    for p in teachers[1].model.head.parameters():
        p.data.normal_(0, 1.0)  # a second, different teacher
    probs = np.mean([t.predict_proba(photo_data.items) for t in teachers], axis=0)
    taught = teacher_targets(photo_data, teachers, weight=0.25)
    expected = 0.75 * np.eye(3)[photo_data.labels] + 0.25 * probs
    assert np.allclose(taught.soft_labels, expected, atol=1e-5)
    assert np.allclose(taught.soft_labels.sum(1), 1.0, atol=1e-5)
    again = teacher_targets(taught, teachers[:1], weight=0.5)  # existing soft labels are the base
    assert np.allclose(again.soft_labels, 0.5 * expected + 0.5 * teachers[0].predict_proba(photo_data.items), atol=1e-5)


def test_teachers_with_other_classes_or_no_teacher_are_refused(small_model, photo_data):
    other = Solution(small_model, list(reversed(photo_data.classes)))
    with pytest.raises(SuiteError, match="predicts"):
        teacher_targets(photo_data, [other])
    with pytest.raises(SuiteError, match="at least one teacher"):
        teacher_targets(photo_data, [])
    with pytest.raises(SuiteError, match="weight"):
        teacher_targets(photo_data, [Solution(small_model, photo_data.classes)], weight=0.0)
