#!/usr/bin/env python3
"""Validates audit's FHIR rendering against the FHIR R4 AuditEvent model.

Uses PyPI `fhir.resources` (its R4B models; R4B's AuditEvent is R4's):
    pip install 'fhir.resources>=7,<8'
    python3 services/audit/tests/fhir/validate.py services/audit/tests/fhir/view_record.json

`view_record.json` is what the unit test `domain::fhir::golden` checks the
Rust rendering against, so validating it validates the rendering.
"""
import json
import sys

from fhir.resources.R4B.auditevent import AuditEvent

for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as handle:
        resource = AuditEvent.parse_obj(json.load(handle))
    assert resource.agent[0].requestor is True
    assert resource.purposeOfEvent[0].coding[0].code == "TREAT"
    print(f"{path}: valid FHIR R4 AuditEvent ({resource.id})")
