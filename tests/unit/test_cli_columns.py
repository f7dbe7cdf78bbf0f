"""The CLI's tables are written as compact column specs (`output.columns`): a bare path is
headed by its last part in capitals, `HEADER=path` names its own header, and the table a
command prints reads each cell from its path."""

import pytest

from parley.cli import agents
from parley.cli import keys
from parley.cli.output import Format
from parley.cli.output import columns
from parley.cli.output import emit


def test_a_bare_path_is_headed_by_its_last_part_in_capitals_and_a_named_one_by_its_name() -> None:
    table = columns("spec.model, assigned_to, ID=key_id, LAST USED=last_used_at, SPLIT %=pct")

    assert [header for header, _ in table] == ["MODEL", "ASSIGNED TO", "ID", "LAST USED", "SPLIT %"]
    item = {"spec": {"model": "m1"}, "assigned_to": "a", "key_id": "k", "pct": 10}
    assert [read(item) for _, read in table] == ["m1", "a", "k", None, 10]


def test_the_keys_and_agents_tables_keep_the_headers_users_read() -> None:
    assert [h for h, _ in keys.COLUMNS] == [
        "ID", "NAME", "PREFIX", "ROLES", "NAMESPACES", "EXPIRES", "REVOKED", "LAST USED"
    ]  # fmt: skip
    assert [h for h, _ in agents.AGENT_COLUMNS] == [
        "NAME", "ID", "STATE", "PROVIDER", "MODEL", "VERSION", "UPDATED"
    ]  # fmt: skip


def test_a_listed_table_prints_each_cell_from_its_path(capsys: pytest.CaptureFixture[str]) -> None:
    issued = {"key": {"key_id": "k-1", "name": "ci", "roles": ["viewer"]}, "secret": "s3cret"}

    emit([issued], Format.table, keys.ISSUED)

    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "NAME", "ROLES", "NAMESPACES", "SECRET"]
    assert row.split() == ["k-1", "ci", '["viewer"]', "s3cret"]
