"""Fixtures of the fault suite: a private world per package, a clean slate per test, the report at the end."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.env import FAKE_R2, FaultEnv
from tests.faults.report import world_settings, write_report
from tests.faults.s3proxy import FailingS3
from tests.fixtures.gateway import DevGateway, start_dev_gateway_process, stop_dev_gateway_process
from tests.fixtures.s3 import MotoServer, create_bucket

# What the package's worlds change from the production defaults (every row names it):
# a gateway that never answers fails a call in 3 s rather than 60 (the "gateway timeout" scenario).
WORLD_SETTINGS = {"GATEWAY_TIMEOUT_S": "3"}


@pytest.fixture(scope="package")
def fault_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevGateway]:
    """Our own dev gateway process: its faults and hostility touch nobody else's tests."""
    gw = start_dev_gateway_process(log_path=tmp_path_factory.mktemp("fault-gateway") / "gateway.log")
    yield gw
    stop_dev_gateway_process(gw)


@pytest.fixture(scope="package")
def fault_world(fault_gateway: DevGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultEnv]:
    """Our own Redis (AOF) and a worker process running as the Procfile runs it."""
    world = FaultEnv(Path(tmp_path_factory.mktemp("fault-world")), fault_gateway, settings=WORLD_SETTINGS)
    yield world
    world.close()


@pytest.fixture
def env(fault_world: FaultEnv) -> FaultEnv:
    """The private world with a clean slate and its worker running."""
    fault_world.reset()
    fault_world.start_worker()
    world_settings(fault_world.settings)
    return fault_world


@pytest.fixture(scope="package")
def defaults_world(fault_gateway: DevGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultEnv]:
    """A world whose worker changes no setting at all: production defaults, as a deployment runs."""
    world = FaultEnv(Path(tmp_path_factory.mktemp("fault-defaults")), fault_gateway)
    yield world
    world.close()


@pytest.fixture
def defaults(defaults_world: FaultEnv) -> FaultEnv:
    """The defaults world with a clean slate and its worker running."""
    defaults_world.reset()
    defaults_world.start_worker()
    world_settings(defaults_world.settings)
    return defaults_world


@dataclass
class R2World:
    """A fault world whose worker writes to R2: moto's server behind a failing S3 stand-in."""

    env: FaultEnv
    proxy: FailingS3
    moto: MotoServer
    bucket: str


@pytest.fixture(scope="package")
def r2_world(fault_gateway: DevGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[R2World]:
    from adapters.store import R2Store

    root = Path(tmp_path_factory.mktemp("fault-r2"))
    moto = MotoServer(log_path=root / "moto.log")
    moto.start()
    bucket = create_bucket(moto.url, "faults")
    proxy = FailingS3(moto.url)
    extra = {**FAKE_R2, "R2_ENDPOINT_URL": proxy.url, "R2_THEMES_BUCKET": bucket}
    # An object-store request the proxy holds fails after 1 s rather than 30.
    settings = {**WORLD_SETTINGS, "R2_TIMEOUT_S": "1"}
    # The test reads straight from moto: what is really there, not what the faults say.
    reader = R2Store(bucket, moto.url, FAKE_R2["R2_ACCESS_KEY_ID"], FAKE_R2["R2_SECRET_ACCESS_KEY"])
    world = FaultEnv(root, fault_gateway, settings=settings, extra_env=extra, reader=reader)
    yield R2World(world, proxy, moto, bucket)
    world.close()
    proxy.close()
    moto.stop()


@pytest.fixture
def r2(r2_world: R2World) -> R2World:
    """The R2 world with a clean slate (no objects, no faults, empty Redis) and its worker running."""
    r2_world.proxy.reset()
    r2_world.env.reset()
    r2_world.env.start_worker()
    world_settings(r2_world.env.settings)
    return r2_world


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    write_report()
