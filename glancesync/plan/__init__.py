"""What a region needs, as plain data (SPEC sections 5 and 6).

:func:`make_plan` is pure: master selection and regional images in, a
:class:`RegionPlan` out. Status reports, dry runs and syncs all use it, so
they can never disagree; only :mod:`glancesync.executor` acts on a plan.
The plan's data lives in :mod:`glancesync.plan.model`; every name is
importable from here as well.
"""
from __future__ import annotations

from glancesync.plan.model import (CONTENT_PENDING, CONTENT_SAME, DEACTIVATED_KEEP,
                                   DEACTIVATED_REACTIVATE, DEACTIVATED_REPORT, OLD_SUFFIX,
                                   REMOVAL_STEPS, SIGNATURES_AFTER_UPLOAD, SIGNATURES_AT_UPLOAD,
                                   SIGNATURES_DROP, ImageStatus, MemberTarget, Operation,
                                   OperationKind, RegionPlan, Status, StatusCategory,
                                   TargetPolicy)
from glancesync.plan.planner import ANY, hold_removals, make_plan

__all__ = [
    "ANY", "CONTENT_PENDING", "CONTENT_SAME", "DEACTIVATED_KEEP", "DEACTIVATED_REACTIVATE",
    "DEACTIVATED_REPORT", "OLD_SUFFIX", "REMOVAL_STEPS", "SIGNATURES_AFTER_UPLOAD",
    "SIGNATURES_AT_UPLOAD", "SIGNATURES_DROP", "ImageStatus", "MemberTarget", "Operation",
    "OperationKind", "RegionPlan", "Status", "StatusCategory", "TargetPolicy", "hold_removals",
    "make_plan",
]
