"""What one spec file may cost to read and compile: every bound in one place.

Spec files are edited by anyone in a team and compiled in CI, so a single line must not be able
to hang the compiler or take its memory: YAML aliases can repeat a value exponentially
(7 levels of 9 aliases are 430 bytes and 4.8 million values), nesting can exhaust the
parser's stack, and a regular expression can backtrack forever. Each bound is far above what a
real spec needs and each is reported as a positioned error naming it.
"""

from __future__ import annotations

# 1 MiB: the shipped models.yaml is 4 KiB, a thousand SLOs in one file about 400 KiB.
MAX_FILE_BYTES = 1 << 20
# Mappings and lists inside one another, aliases expanded: a spec needs 7 levels.
MAX_DEPTH = 32
# Keys, values and list items of one file once its aliases are expanded: a thousand
# shortcut SLOs with runbooks are about 20,000.
MAX_VALUES = 200_000
# Characters of all of one file's keys and values once its aliases are expanded: without
# aliases a file holds at most MAX_FILE_BYTES of them, and an alias of a long string must not
# multiply it past that.
MAX_EXPANDED_CHARS = 2 * MAX_FILE_BYTES
# SLOs in one file: each compiles to about 40 rules and 13 promtool test groups, whose
# generation takes about 0.4 s an SLO (measured: 100 shortcut SLOs in one file validate in 42 s),
# so a full file is minutes, not hours. A platform team's largest service files hold about 100.
MAX_SLOS_PER_FILE = 1_000
# YAML documents in one file (`---` between them, as in Sloth's multi-service files); the
# bounds above hold for all of a file's documents together.
MAX_DOCUMENTS = 100
# Burn-rate windows of one SLO (the default is 4), labels of one block, model families.
MAX_WINDOWS = 16
MAX_LABELS = 64
MAX_FAMILIES = 64
# A regular expression in a selector or family pattern: RE2 matches in linear time, and this
# bounds the size of what it compiles (RE2 refuses programs above its own memory limit too).
MAX_REGEX_CHARS = 1_000
# A label value, copied into every rule and alert of its SLO (and every promtool test of
# them): Prometheus needs no more, and 64 labels of this make 64 KiB a rule.
MAX_LABEL_VALUE_CHARS = 1_024
# Any other single value of a spec (descriptions, runbook text): a runbook section of
# several paragraphs is about 2,000.
MAX_TEXT_CHARS = 16_384
# A value YAML reads as a number: no number a spec holds needs more (a Decimal's 28 digits
# with sign, point and exponent), and Python refuses to read an integer of 4,300 digits.
MAX_NUMBER_CHARS = 40
# Durations: Prometheus refuses those past about 292 years (int64 nanoseconds); an SLO period
# or a `for:` is days, so ten years is far above any real one and well inside that.
MAX_DURATION_S = 10 * 365 * 86400
# An alert's `for`: its tests replay it whole (a threshold alert held 1d took 40 s to compile;
# 6h, 4 s), and no SLO alert waits that long: the ticket windows already take days.
MAX_FOR_S = 6 * 3600
# An SLO period: its tests replay the whole of it (a year: about 6 s and 300 MB to compile).
MAX_PERIOD_S = 365 * 86400
# Service, SLO and alert names become file names (rules/<service>.yml, one runbook page per
# alert): well inside the 255 bytes a file name may have, with room for suffixes.
MAX_NAME_CHARS = 120
