"""Configuration: the examples load, bad configs are refused with the field and the fix, and
check-config explains the effective values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from config.loader import ConfigError, load_config, parse_config
from detector.cli import main

EXAMPLES = sorted((Path(__file__).parents[2] / "config" / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads_and_explains(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_config(path)
    assert main(["check-config", str(path)]) == 0
    assert "Configuration is valid" in capsys.readouterr().out


def test_levels_merge_global_then_service_then_signal() -> None:
    cfg = parse_config(
        {
            "detection": {"failed_checks": 4, "min_effect_pct": 5},
            "signals": {"error_rate": {"min_effect_pct": 50}},
            "services": {
                "a": {
                    "detection": {"failed_checks": 1},
                    "signals": {"error_rate": {"min_effect_abs": 0.01}},
                }
            },
        }
    )
    eff = cfg.effective("a", "error_rate")
    assert (eff.failed_checks, eff.min_effect_pct, eff.min_effect_abs) == (1, 50, 0.01)
    other = cfg.effective("b", "latency_p99_seconds")
    assert (other.failed_checks, other.min_effect_pct) == (4, 5)


def test_histogram_buckets_by_name_per_level_and_reset() -> None:
    cfg = parse_config(
        {
            "detection": {"histogram_buckets": "prometheus"},
            "services": {"exact": {"detection": {"histogram_buckets": []}}},
            "signals": {"latency_tail_seconds": {"quantile": 0.999, "histogram_buckets": [1, 2]}},
        }
    )
    assert cfg.effective("a", "latency_p99_seconds").histogram_buckets[4] == 0.1
    assert cfg.effective("exact", "latency_p99_seconds").histogram_buckets == ()
    tail = cfg.effective("a", "latency_tail_seconds")
    assert (tail.histogram_buckets, tail.quantile) == ((1.0, 2.0), 0.999)


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (
            {"detection": {"false_positive_budget": 2}},
            "detection.false_positive_budget",
            "less than",
        ),
        ({"detection": {"faled_checks": 2}}, "detection.faled_checks", "unknown field"),
        ({"kafka": {"metrics_format": "csv"}}, "kafka.metrics_format", "native"),
        ({"kafka": {"session_timeout_seconds": 1}}, "kafka.session_timeout_seconds", "6"),
        ({"signals": {"x": {"kind": "vibes"}}}, "signals.x.kind", "latency"),
        (
            {"services": {"a": {"detection": {"failed_checks": 0}}}},
            "services.a.detection.failed_checks",
            "greater",
        ),
        ([1, 2], "<root>", "mapping"),
        (
            {"detection": {"histogram_buckets": "prometheus-default"}},
            "detection.histogram_buckets",
            "`le` bounds as a list",
        ),
        (
            {"signals": {"latency_p99_seconds": {"histogram_buckets": [0.1, 0.05, 1]}}},
            "signals.latency_p99_seconds.histogram_buckets",
            "strictly ascending",
        ),
        ({"detection": {"quantile": 99}}, "detection.quantile", "less than 1"),
        (
            {"services": {"a": {"detection": {"exact_quantiles": True, "histogram_buckets": [1]}}}},
            "services.a.detection",
            "histogram buckets are not exact",
        ),
    ],
)
def test_bad_configs_name_the_field_and_the_fix(data: object, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "x.yaml")
    text = str(info.value)
    assert field in text and words in text


def test_the_cli_refuses_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("detection:\n  min_effect_pct: -3\n")
    with pytest.raises(SystemExit) as info:
        main(["check-config", str(bad)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "detection.min_effect_pct" in err and "greater than or equal to 0" in err


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("detection: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_fields_lists_every_setting_with_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--fields"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(ln.startswith("detection.false_positive_budget: ") for ln in lines)
    assert all(ln.split(": ", 1)[1].strip() for ln in lines)


def test_check_config_reports_secrets_as_set_or_not_never_the_value(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = next(p for p in EXAMPLES if p.name == "production.yaml")
    monkeypatch.delenv("CANARY_SENTINEL_PAGERDUTY_ROUTING_KEY", raising=False)
    assert main(["check-config", str(path)]) == 0
    assert "CANARY_SENTINEL_PAGERDUTY_ROUTING_KEY is not set" in capsys.readouterr().out
    key = "K" * 32
    monkeypatch.setenv("CANARY_SENTINEL_PAGERDUTY_ROUTING_KEY", key)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "routing key set" in out and key not in out


def test_a_service_routed_to_an_unknown_sink_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"services": {"a": {"alerting": {"sinks": ["pagerdooty"]}}}})
    assert "services.a.alerting.sinks" in str(info.value) and "pagerdooty" in str(info.value)


def _check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> tuple[list[str], Callable[[str], str]]:
    """check-config's output lines for a config of ``text``, and the line after a signal's."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert main(["check-config", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()

    def line_after(name: str) -> str:
        return lines[lines.index(next(x for x in lines if x.strip().startswith(name))) + 1]

    return lines, line_after


def test_check_config_says_how_histogram_quantiles_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, line_after = _check_config(
        tmp_path,
        capsys,
        "detection:\n  histogram_buckets: prometheus\n"
        "signals:\n  latency_slow_seconds: {kind: latency}\n  queue_depth: {kind: saturation}\n",
    )
    assert "as the 0.99 quantile" in line_after("latency_p99_seconds")
    assert "quantile unknown: set `quantile`" in line_after("latency_slow_seconds")
    assert "histogram" not in line_after("queue_depth")


def test_check_config_asks_how_quantiles_are_computed_until_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, _ = _check_config(tmp_path, capsys, "detection:\n  min_effect_pct: 10\n")
    (detection,) = [x for x in lines if x.startswith("  action on regression")]
    assert "taken as they come" in detection and "exact_quantiles" in detection
    assert "too few requests" in detection
    lines, _ = _check_config(tmp_path, capsys, "detection:\n  exact_quantiles: true\n")
    (detection,) = [x for x in lines if x.startswith("  action on regression")]
    assert "latency quantiles exact" in detection and "as they come" not in detection


def test_check_config_says_which_exact_quantiles_are_allowed_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, line_after = _check_config(
        tmp_path,
        capsys,
        "detection:\n  exact_quantiles: true\n"
        "signals:\n  latency_slow_seconds: {kind: latency}\n"
        "services:\n  h:\n    detection: {histogram_buckets: prometheus}\n",
    )
    assert "(the 0.99 quantile: a small canary's reading low is allowed for)" in line_after(
        "latency_p99_seconds"
    )
    assert "(the 0.5 quantile: no allowance" in line_after("latency_p50_seconds")
    assert "quantile unknown, so no allowance" in line_after("latency_slow_seconds")
    service_p99 = next(x for x in lines if x.startswith("  latency_p99_seconds: action"))
    assert "histogram buckets" in service_p99 and "exact" not in service_p99
