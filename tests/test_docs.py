"""The docs generated from the code are current: docs/bad_input.md has one row per case
of the bad-input tests, in their order (tests/bad_input.py writes it)."""
import re

from bad_input import DOC, all_cases


def test_the_bad_input_table_is_the_doc():
    ids = [c.id for c in all_cases()]
    assert len(ids) == len(set(ids)) >= 25
    with open(DOC) as f:
        assert re.findall(r'^\| `([a-z0-9-]+)` \|', f.read(), flags=re.M) == ids
