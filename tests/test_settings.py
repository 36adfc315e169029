"""Settings declared once: strict casts that name the variable, the environment written for child
processes read back to the same settings, and a bad value stopping the real CLI with one line."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.runtime.settings import Settings, SettingsError

REFUSED = [
    ("CREDIT_LEDGER_WORKERS", "two"),
    ("CREDIT_LEDGER_WORKERS", "0"),
    ("CREDIT_LEDGER_WORKERS", "1.5"),
    ("CREDIT_LEDGER_WORKERS", ""),
    ("CREDIT_LEDGER_WORKERS", "1_000"),
    ("CREDIT_LEDGER_WORKERS", "٣"),  # an Arabic-Indic three: int() would take it
    ("CREDIT_LEDGER_GRAPHIQL", "ture"),
    ("CREDIT_LEDGER_GRAPHIQL", ""),
    ("CREDIT_LEDGER_INTROSPECTION", "enabled"),
    ("CREDIT_LEDGER_PORT", "0"),
    ("CREDIT_LEDGER_PORT", "65536"),
    ("CREDIT_LEDGER_PORT", "http"),
    ("CREDIT_LEDGER_PARTITIONS", "0"),
    ("CREDIT_LEDGER_PARTITIONS", "-4"),
    ("CREDIT_LEDGER_LEASE_TTL_MS", "0"),
    ("CREDIT_LEDGER_LEASE_TTL_MS", "5s"),
    ("CREDIT_LEDGER_MAX_REQUEST_BYTES", "1MB"),
    ("CREDIT_LEDGER_RATE_LIMIT_CALLER", "200"),
    ("CREDIT_LEDGER_RATE_LIMIT_CALLER", "200/0"),
    ("CREDIT_LEDGER_RATE_LIMIT_ORGANIZATION", "fast/400"),
    ("CREDIT_LEDGER_RATE_LIMIT_ORGANIZATION", "nan/5"),
    ("CREDIT_LEDGER_STATE_DIR", ""),
]


@pytest.mark.parametrize(("variable", "value"), REFUSED)
def test_a_value_its_cast_refuses_is_an_error_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_environment({variable: value})
    assert refused.value.variable == variable
    assert refused.value.value == value
    assert str(refused.value).startswith(f"{variable}={value!r} is not accepted: ")
    assert refused.value.accepted in str(refused.value)


def test_the_error_says_what_is_accepted() -> None:
    with pytest.raises(SettingsError, match=r"true, false, yes, no, on, off, 1 or 0"):
        Settings.from_environment({"CREDIT_LEDGER_GRAPHIQL": "ture"})
    with pytest.raises(SettingsError, match=r"from 1 to 65,535"):
        Settings.from_environment({"CREDIT_LEDGER_PORT": "70000"})
    with pytest.raises(SettingsError, match=r"at least 1"):
        Settings.from_environment({"CREDIT_LEDGER_WORKERS": "two"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("On", True),
     ("false", False), ("0", False), ("no", False), ("OFF", False), (" false ", False)],
)  # fmt: skip
def test_booleans_accept_the_usual_words_in_any_case(value: str, expected: bool) -> None:
    assert Settings.from_environment({"CREDIT_LEDGER_GRAPHIQL": value}).graphiql is expected
    assert Settings.from_environment({"CREDIT_LEDGER_INTROSPECTION": value}).introspection is expected


def test_accepted_values_are_read() -> None:
    settings = Settings.from_environment(
        {
            "DATABASE_URL": "postgresql://postgres@db:5432/ledger",
            "REDIS_URL": "redis://cache:6379/2",
            "CREDIT_LEDGER_STATE_DIR": "/var/lib/credit-ledger",
            "CREDIT_LEDGER_HOST": "0.0.0.0",
            "CREDIT_LEDGER_PORT": "65535",
            "CREDIT_LEDGER_PARTITIONS": "8",
            "CREDIT_LEDGER_WORKERS": " 3 ",
            "CREDIT_LEDGER_LEASE_TTL_MS": "1",
            "CREDIT_LEDGER_GRAPHIQL": "false",
            "CREDIT_LEDGER_RATE_LIMIT_CALLER": "0.2/3",
            "CREDIT_LEDGER_RATE_LIMIT_ORGANIZATION": "0",
            "CREDIT_LEDGER_MAX_REQUEST_BYTES": "2048",
        }
    )
    assert settings.database_url == "postgresql://postgres@db:5432/ledger"
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.state_dir == Path("/var/lib/credit-ledger")
    assert (settings.port, settings.partition_count, settings.ledger_workers, settings.lease_ttl_ms) == (65535, 8, 3, 1)
    assert settings.graphiql is False and settings.introspection is True
    assert (settings.rate_limit_caller, settings.rate_limit_organization) == ("0.2/3", "0")
    assert settings.max_request_bytes == 2048


def test_unset_variables_are_the_defaults() -> None:
    assert Settings.from_environment({}) == Settings()
    assert Settings.from_environment({"UNRELATED": "x"}) == Settings()


def test_the_environment_for_a_child_reads_back_to_the_same_settings() -> None:
    chosen = Settings(
        database_url="postgresql://postgres@127.0.0.1:5999/credit_ledger",
        redis_url="redis://127.0.0.1:6999/0",
        state_dir=Path("/tmp/state dir"),
        host="::1",
        port=1,
        partition_count=3,
        ledger_workers=7,
        lease_ttl_ms=900,
        graphiql=False,
        admin_key="cl_admin_abc",
        token_secret="s3cret=/+",
        rate_limit_caller="0",
        rate_limit_organization="12.5/20",
        max_request_bytes=1,
        introspection=False,
        catalog_file="/etc/credit-ledger/catalog.toml",
    )
    for settings in (Settings(), chosen):
        environment = settings.environment()
        assert all(isinstance(value, str) for value in environment.values())
        assert Settings.from_environment(environment) == settings


_words = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
_rates = st.one_of(
    st.just("0"),
    st.builds("{}/{}".format, st.integers(1, 10**6), st.integers(1, 10**6)),
    st.builds("{}/{}".format, st.floats(0.001, 1e6).map(repr), st.integers(1, 10**6)),
)


@given(
    st.builds(
        Settings,
        database_url=_words,
        redis_url=_words,
        state_dir=_words.filter(bool).map(Path),
        host=_words,
        port=st.integers(1, 65_535),
        partition_count=st.integers(1, 10**6),
        ledger_workers=st.integers(1, 1_000),
        lease_ttl_ms=st.integers(1, 10**9),
        graphiql=st.booleans(),
        admin_key=_words,
        token_secret=_words,
        rate_limit_caller=_rates,
        rate_limit_organization=_rates,
        max_request_bytes=st.integers(1, 10**12),
        introspection=st.booleans(),
        catalog_file=_words,
    )
)
def test_any_valid_settings_survive_the_trip_through_the_environment(settings: Settings) -> None:
    assert Settings.from_environment(settings.environment()) == settings


def test_every_setting_but_the_test_only_one_has_a_variable() -> None:
    """A field added without `setting(...)` would silently not reach child processes."""
    variables = Settings().environment()
    names = {field.name for field in dataclasses.fields(Settings)}
    assert len(variables) == len(names) - 1  # embedded_durable: set by tests in process only
    assert "embedded_durable" in names
    assert all(name.startswith("CREDIT_LEDGER_") for name in variables if name not in {"DATABASE_URL", "REDIS_URL"})


def _credit_ledger(*arguments: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """The installed `credit-ledger` console script (the real entry point) in a fresh process."""
    script = Path(sys.executable).parent / "credit-ledger"
    assert script.exists(), f"{script}: install the package (pip install -e .)"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_LEDGER_")}
    return subprocess.run(
        [str(script), *arguments],
        env=environment | variables,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("role", "variable", "value"),
    [
        ("serve", "CREDIT_LEDGER_WORKERS", "two"),
        ("serve", "CREDIT_LEDGER_GRAPHIQL", "ture"),
        ("api", "CREDIT_LEDGER_PORT", "99999"),
        ("migrate", "CREDIT_LEDGER_PARTITIONS", "0"),
        ("dead-letters", "CREDIT_LEDGER_LEASE_TTL_MS", "-1"),
    ],
)
def test_the_cli_stops_with_one_line_naming_the_variable(role: str, variable: str, value: str, tmp_path: Path) -> None:
    arguments = [role, "list"] if role == "dead-letters" else [role]
    done = _credit_ledger(*arguments, **{variable: value, "CREDIT_LEDGER_STATE_DIR": str(tmp_path / "state")})
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"credit-ledger: {variable}={value!r} is not accepted: " + _accepted(variable)]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state").exists()  # refused before any server was started


def _accepted(variable: str) -> str:
    with pytest.raises(SettingsError) as refused:
        Settings.from_environment({variable: "not a value of any setting"})
    return refused.value.accepted
