"""Domain adaptation: losses, gradient reversal, normalisation, style transfer, re-weighting, and the
methods the trainer combines with the task loss (``TrainConfig(adapt="dann")``)."""

from .grl import GradientReverseLayer, WarmStartGradientReverseLayer
from .losses import (CorrelationAlignmentLoss, DomainAdversarialLoss, DomainDiscriminator, EntropyLoss,
                     MultipleKernelMMD, PseudoLabelLoss)
from .methods import Adaptation, create_adaptation, list_adaptations, register_adaptation
from .normalization import adapt_batchnorm
from .reweighting import domain_classifier_accuracy, importance_weights
from .style import FDATransform, fda_swap

__all__ = [
    "Adaptation", "CorrelationAlignmentLoss", "DomainAdversarialLoss", "DomainDiscriminator", "EntropyLoss",
    "FDATransform", "GradientReverseLayer", "MultipleKernelMMD", "PseudoLabelLoss",
    "WarmStartGradientReverseLayer", "adapt_batchnorm", "create_adaptation", "domain_classifier_accuracy",
    "fda_swap", "importance_weights", "list_adaptations", "register_adaptation",
]
