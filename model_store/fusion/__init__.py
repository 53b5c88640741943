"""Fusion: any subset of the registered teachers distilled into a candidate unified student.

``subsets`` says what a subset covers (the semantics live in its docstring), ``schedule`` how long a
candidate trains, ``candidate`` resolves a request against a registry and runs the distillation.
"""

from model_store.fusion.candidate import FusionRequest, fuse, next_version, prepare
from model_store.fusion.schedule import Schedule
from model_store.fusion.subsets import FusionError, FusionPlan, all_subsets, parse_teacher_list, plan_fusion

__all__ = [
    "FusionError", "FusionPlan", "FusionRequest", "Schedule", "all_subsets", "fuse", "next_version",
    "parse_teacher_list", "plan_fusion", "prepare",
]  # fmt: skip
