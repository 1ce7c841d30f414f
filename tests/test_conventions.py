"""The names and escapes every output shares (modelmon/conventions.py)."""

from __future__ import annotations

import pytest

from modelmon import conventions
from modelmon.outputs.promtool_tests import traffic


@pytest.mark.parametrize("value", ["café-modèle", 'say "hi"', "back\\slash", "two\nlines", "tab\there", "é\\\\n"])
def test_unescape_reads_back_what_escape_writes(value):
    assert conventions.unescape(conventions.escape(value)) == value


def test_test_traffic_reads_selector_values_as_promql_does_non_ascii_included():
    # unicode_escape, used before, read 'café' as 'cafÃ©': test traffic would miss the selector.
    assert traffic._matchers('model=~"café.*",region!="eu\\"west"') == [
        ("model", "=~", "café.*"),
        ("region", "!=", 'eu"west'),
    ]


def test_the_slo_selector_escapes_its_values():
    assert conventions.slo_selector('a"b', "c") == '{service="a\\"b",slo="c"}'
