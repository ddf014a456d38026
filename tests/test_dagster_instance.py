"""The committed Dagster instance settings (orchestration/dagster.yaml): what an instance loaded
from a DAGSTER_HOME holding them does, and how `make dev` / `crimecast run` install them."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.run_coordinator import QueuedRunCoordinator

from orchestration import cli
from orchestration.dagster_home import TEMPLATE, install_dagster_yaml, main


def template_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    assert install_dagster_yaml(home) is True
    return home


def a_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name="refresh_all", run_id=str(uuid.uuid4()))
    instance.add_run(run)
    return run


def test_template_turns_off_telemetry_and_the_welcome_modal(tmp_path: Path):
    with dg.DagsterInstance.from_config(str(template_home(tmp_path))) as instance:
        assert instance.telemetry_enabled is False
        assert instance.nux_enabled is False


def test_template_queues_runs_one_at_a_time(tmp_path: Path):
    with dg.DagsterInstance.from_config(str(template_home(tmp_path))) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1


def test_two_runs_never_hold_a_warehouse_writer_slot_together(tmp_path: Path):
    """The claims the executors make for a step of pool `warehouse_writer`: the second run's
    step waits until the first run's step frees its slot."""
    with dg.DagsterInstance.from_config(str(template_home(tmp_path))) as instance:
        first, second = a_run(instance), a_run(instance)
        with (
            InstanceConcurrencyContext(instance, first) as one,
            InstanceConcurrencyContext(instance, second) as two,
        ):
            assert one.claim("warehouse_writer", "crimecast_dbt_assets") is True
            assert two.claim("warehouse_writer", "raw_incidents") is False
            info = instance.event_log_storage.get_concurrency_info("warehouse_writer")
            assert info.slot_count == 1
            one.free_step("crimecast_dbt_assets")
            two._pending_timeouts["raw_incidents"] = 0  # retry now, not after the backoff
            assert two.claim("warehouse_writer", "raw_incidents") is True


def test_install_copies_the_template_only_when_the_home_has_none(tmp_path: Path):
    home = tmp_path / "new" / "dagster_home"
    assert install_dagster_yaml(home) is True
    assert (home / "dagster.yaml").read_text() == TEMPLATE.read_text()
    assert [p.name for p in home.iterdir()] == ["dagster.yaml"]  # no temporary file left

    own = "telemetry:\n  enabled: true\n"
    (home / "dagster.yaml").write_text(own)
    assert install_dagster_yaml(home) is False
    assert main([str(home)]) == 0  # what `make dev` runs
    assert (home / "dagster.yaml").read_text() == own


def test_crimecast_run_instance_gets_the_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "fresh_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = cli._instance()
    try:
        assert (home / "dagster.yaml").read_text() == TEMPLATE.read_text()
        assert instance.telemetry_enabled is False
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    finally:
        instance.dispose()


def test_crimecast_run_keeps_a_users_dagster_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "user_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = cli._instance()
    try:
        assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
        assert instance.get_concurrency_config().pool_config.default_pool_limit is None
    finally:
        instance.dispose()
