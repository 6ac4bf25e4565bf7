"""The asyncotp pytest plugin and the asyncotp.testing package: fixtures
that isolate a test and fail it when it leaves work behind; imports that
stay cheap and work without hypothesis."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest

import asyncotp.testing
from tests.helpers import plugin_args

pytest_plugins = ("pytester",)


INNER_TESTS = """
import asyncio

import pytest

from asyncotp import GenServer, Supervisor, receive, spawn, which_children
from asyncotp.testing import crash, wait_for_restart


class Worker(GenServer):
    pass


@pytest.mark.asyncio
async def test_fixtures_give_a_node_virtual_time_and_reports(
    virtual_clock, otp_node, crash_reports
):
    sup = await Supervisor.start([Worker.child_spec(id="w")])
    (child,) = await which_children(sup)
    await crash(child.pid)
    await wait_for_restart(sup, "w", child.pid)
    await asyncio.sleep(3600)
    assert virtual_clock.elapsed >= 3600
    assert [r.child_id for r in crash_reports.events("child_restarted")] == ["w"]


@pytest.mark.asyncio
async def test_a_node_of_its_own(otp_node):
    assert otp_node.procs == {}


@pytest.mark.asyncio
async def test_leaves_a_task_running(otp_node):
    pytest.stray = asyncio.get_running_loop().create_task(asyncio.sleep(3600))


async def stubborn():
    while True:
        await receive()  # it traps exits: the node's SHUTDOWN is one more message


@pytest.mark.asyncio
async def test_leaves_an_actor_that_will_not_stop(otp_node, virtual_clock):
    spawn(stubborn, trap_exits=True)


def test_without_fixtures_nothing_happens():
    assert asyncio.get_event_loop_policy() is not None
"""


def test_the_fixtures_isolate_a_test_and_fail_one_that_leaves_work_behind(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", *plugin_args())
    result.assert_outcomes(passed=5, errors=2)
    output = result.stdout.str()
    assert "tasks still running after the node stopped" in output
    assert "did not stop within 5.0 s of the node's shutdown; killing it" in output
    assert "ERROR at teardown of test_leaves_a_task_running" in output
    assert "ERROR at teardown of test_leaves_an_actor_that_will_not_stop" in output
    assert result.duration < 30  # the stubborn actor's 5 s were virtual


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_plugin_imports_without_hypothesis() -> None:
    done = run_python(
        """
        import sys
        import asyncotp.testing.plugin
        assert "hypothesis" not in sys.modules, "the plugin imported hypothesis"
        print("ok")
        """
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_the_package_works_without_hypothesis_and_says_so_when_needed() -> None:
    done = run_python(
        """
        import sys
        sys.modules["hypothesis"] = None  # as if it were not installed
        import asyncotp.testing as kit
        assert kit.VirtualClock and kit.Probe and kit.check_schedule
        try:
            kit.SupervisionMachine
        except ImportError as exc:
            print(exc)
        """
    )
    assert done.stdout.strip() == (
        "asyncotp.testing.SupervisionMachine needs hypothesis: pip install hypothesis"
    ), done.stderr


def test_every_public_name_has_one_home_and_a_docstring() -> None:
    for name in asyncotp.testing.__all__:
        value = getattr(asyncotp.testing, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == "asyncotp.testing", name  # its public home
            assert inspect.getdoc(value), f"{name} has no docstring"
    assert sorted(asyncotp.testing.__all__) == list(asyncotp.testing.__all__)
    assert set(asyncotp.testing.__all__) <= set(dir(asyncotp.testing))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        asyncotp.testing.nope  # noqa: B018
