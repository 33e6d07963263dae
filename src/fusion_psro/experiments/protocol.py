"""A study's protocol, fixed before its runs: the ``[protocol]`` section of a sweep config.

::

    [protocol]
    arms = ["normal", "inherit", "fusion"]       # shorthand: arms named by their init
    seeds = [0, 1, 2]
    endpoint = "mean_last_half"                  # primary endpoint (default); or "final"
    threshold = 0.3                              # secondary: iterations to exploitability <= 0.3
    comparisons = [["fusion", "inherit"], ["fusion", "normal"]]
    margin = 0.05                                # equivalence margin, in exploitability
    alpha = 0.05                                 # level of every test (default 0.05)
    notes = "set before the runs"                # free text, part of the protocol

An arm may instead be a table of the settings that pick its cells (a table value, such as
``init_options``, matches the entries it gives)::

    [protocol.arms]
    fusion = { init = "fusion" }
    uniform = { init = "fusion", init_options = { weights = "uniform" } }

Each protocol seed must be a cell of every arm, exactly once. A comparison ``[A, B]`` is
"A against B": its difference is exploitability(B) - exploitability(A) paired by seed, so
a positive difference means A ends less exploitable.

The sweep records the protocol, with the sha256 of its canonical JSON, in
``<out>/protocol.json`` before its first run is written (atomically; the config's path is
recorded relative to ``<out>``, so a sweep directory moved with its repository still finds
it), and refuses to run
once runs exist if the config's protocol differs from the recorded one.
:func:`protocol_status` reads the record back for a report: the recorded protocol, whether
the record is intact, whether runs existed before it, and whether the config has changed
since.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fusion_psro.errors import FusionPSROError
from fusion_psro.files import write_json_atomic
from fusion_psro.psro.config import PSROConfig

#: The record a sweep writes into its directory.
PROTOCOL_FILE = "protocol.json"
#: Primary endpoints: name -> what the report says it is.
ENDPOINTS = {
    "mean_last_half": "mean exploitability over the last half of the iterations",
    "final": "exploitability at the last iteration",
}
_KEYS = {"arms", "seeds", "endpoint", "threshold", "comparisons", "margin", "alpha", "notes"}
_REQUIRED = ("arms", "seeds", "comparisons", "margin")


class ProtocolError(FusionPSROError, ValueError):
    """A ``[protocol]`` section that is malformed, does not fit the sweep, or changed after the runs."""


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A validated ``[protocol]``; see the module docstring."""

    arms: dict[str, dict[str, Any]]
    seeds: tuple[int, ...]
    comparisons: tuple[tuple[str, str], ...]
    margin: float
    endpoint: str = "mean_last_half"
    threshold: float | None = None
    alpha: float = 0.05
    notes: str = ""

    def to_json(self) -> dict[str, Any]:
        """The protocol as JSON values (what is hashed and recorded)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @property
    def sha256(self) -> str:
        """sha256 of the canonical JSON (sorted keys, no spaces) of :meth:`to_json`."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def arm_of(self, settings: Mapping[str, Any]) -> str | None:
        """The arm whose settings ``settings`` (a run's, as JSON values) have; None if none."""
        matches = [name for name, wanted in self.arms.items() if _matches(settings, wanted)]
        return matches[0] if len(matches) == 1 else None

    def describe(self) -> list[str]:
        """The protocol as Markdown list items."""
        arms = "; ".join(f"{name} ({', '.join(f'{k}={json.dumps(v)}' for k, v in wanted.items())})"
                         for name, wanted in self.arms.items())
        lines = [f"- arms: {arms}", f"- seeds: {', '.join(map(str, self.seeds))} ({len(self.seeds)} per arm, paired)",
                 f"- primary endpoint: {ENDPOINTS[self.endpoint]}",
                 "- secondary endpoints: exploitability at the last iteration"
                 + (f"; iterations to reach exploitability <= {self.threshold:g}" if self.threshold is not None else ""),
                 f"- comparisons (A against B): {', '.join(f'{a} vs {b}' for a, b in self.comparisons)}",
                 f"- equivalence margin: ±{self.margin:g} exploitability; level alpha = {self.alpha:g}"]
        return lines + ([f"- notes: {self.notes}"] if self.notes else [])


def _matches(settings: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    for key, value in wanted.items():
        have = settings.get(key)
        if isinstance(value, dict):
            if not isinstance(have, dict) or any(_json(have.get(k)) != _json(v) for k, v in value.items()):
                return False
        elif _json(have) != _json(value):
            return False
    return True


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def parse_protocol(table: Any) -> Protocol:
    """Validate a ``[protocol]`` table (one-line :class:`ProtocolError` naming what is wrong)."""
    if not isinstance(table, dict):
        raise ProtocolError(f"[protocol] must be a table, got {table!r}")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ProtocolError(f"unknown key(s) {unknown} in [protocol]; accepted: {', '.join(sorted(_KEYS))}")
    missing = [key for key in _REQUIRED if key not in table]
    if missing:
        raise ProtocolError(f"[protocol] needs {', '.join(missing)} (it fixes {', '.join(_REQUIRED)} before the runs)")
    arms = _arms(table["arms"])
    seeds = table["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ProtocolError(f"[protocol] seeds must be a non-empty list of distinct integers, got {seeds!r}")
    endpoint = table.get("endpoint", "mean_last_half")
    if endpoint not in ENDPOINTS:
        raise ProtocolError(f"[protocol] endpoint {endpoint!r} is unknown; accepted: {', '.join(ENDPOINTS)}")
    return Protocol(arms=arms, seeds=tuple(seeds), comparisons=_comparisons(table["comparisons"], arms),
                    margin=_positive(table, "margin"), endpoint=endpoint,
                    threshold=_positive(table, "threshold") if "threshold" in table else None,
                    alpha=_alpha(table.get("alpha", 0.05)), notes=_notes(table.get("notes", "")))


def _arms(value: Any) -> dict[str, dict[str, Any]]:
    if isinstance(value, list) and value and all(isinstance(a, str) and a for a in value):
        arms = {name: {"init": name} for name in value}
        if len(arms) != len(value):
            raise ProtocolError(f"[protocol] arms must be distinct, got {value!r}")
        return arms
    if isinstance(value, dict) and value and all(isinstance(v, dict) and v for v in value.values()):
        for name, wanted in value.items():
            if "seed" in wanted:
                raise ProtocolError(f"[protocol] arm {name!r} names a seed; an arm's seeds are [protocol] seeds")
            bad = sorted(set(wanted) - _setting_names())
            if bad:
                raise ProtocolError(f"[protocol] arm {name!r} names unknown setting(s) {bad}; accepted: PSROConfig "
                                    "fields such as init, init_options, oracle_options")
        return {name: dict(wanted) for name, wanted in value.items()}
    raise ProtocolError("[protocol] arms must be a list of init names, e.g. [\"normal\", \"fusion\"], or a table of "
                        f"arm name -> settings, e.g. {{ fusion = {{ init = \"fusion\" }} }}; got {value!r}")


def _comparisons(value: Any, arms: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(a, str) for a in pair) for pair in value):
        raise ProtocolError(f"[protocol] comparisons must be a non-empty list of [A, B] arm pairs, got {value!r}")
    for a, b in value:
        for name in (a, b):
            if name not in arms:
                raise ProtocolError(f"[protocol] comparison [{a!r}, {b!r}] names {name!r}, which is no arm; arms: "
                                    f"{', '.join(arms)}")
        if a == b:
            raise ProtocolError(f"[protocol] comparison [{a!r}, {b!r}] compares an arm with itself")
    pairs = tuple((a, b) for a, b in value)
    if len(set(pairs)) != len(pairs):
        raise ProtocolError(f"[protocol] comparisons repeat a pair: {value!r}")
    return pairs


def _positive(table: dict[str, Any], key: str) -> float:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ProtocolError(f"[protocol] {key} must be a positive number (in exploitability, NashConv / 2), got {value!r}")
    return float(value)


def _alpha(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.5:
        raise ProtocolError(f"[protocol] alpha must be a number in (0, 0.5), got {value!r}")
    return float(value)


def _notes(value: Any) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"[protocol] notes must be a string, got {value!r}")
    return value


def check_cells(protocol: Protocol, cells: list[tuple[str, Mapping[str, Any]]]) -> None:
    """Refuse a protocol that does not fit the sweep's cells (name, settings as JSON values):
    every arm must have exactly one cell per protocol seed, and no cell may be in two arms."""
    by_arm: dict[str, dict[int, list[str]]] = {name: {} for name in protocol.arms}
    for name, settings in cells:
        arms = [arm for arm, wanted in protocol.arms.items() if _matches(settings, wanted)]
        if len(arms) > 1:
            raise ProtocolError(f"[protocol] cell {name} is in the arms {arms}; make the arms' settings exclusive")
        if arms:
            by_arm[arms[0]].setdefault(settings.get("seed"), []).append(name)
    for arm, seeds in by_arm.items():
        for seed in protocol.seeds:
            found = seeds.get(seed, [])
            if not found:
                raise ProtocolError(f"[protocol] arm {arm!r} has no cell with seed {seed}; the [grid] must run every "
                                    "protocol seed of every arm")
            if len(found) > 1:
                raise ProtocolError(f"[protocol] arm {arm!r} has {len(found)} cells with seed {seed} ({', '.join(found)}); "
                                    "name the setting that tells them apart in the arm")


def record_protocol(out: Path, protocol: Protocol, config: Path, runs_before: list[str]) -> None:
    """Record ``protocol`` in ``out/protocol.json`` before the sweep's first run, or check it.

    A record whose hash differs from ``protocol``'s is replaced while the sweep has no runs
    (``runs_before`` empty) and refused otherwise: the protocol changed after a run was written.
    ``runs_before`` (cells with metrics when the protocol is first recorded) is kept in the
    record, so a report can say the protocol came after them.
    """
    path = out / PROTOCOL_FILE
    if path.is_file():
        recorded = read_record(path)
        if recorded.get("sha256") == protocol.sha256:
            return
        if runs_before:
            raise ProtocolError(
                f"the [protocol] of {config} (sha256 {protocol.sha256[:12]}) differs from the one recorded in {path} "
                f"(sha256 {str(recorded.get('sha256'))[:12]}) before the first run of this sweep was written; "
                "restore it, or run the changed protocol into a new directory ([sweep] out)")
    write_json_atomic(path, {
        "protocol": protocol.to_json(), "sha256": protocol.sha256,
        "config": os.path.relpath(Path(config).resolve(), Path(out).resolve()),
        "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "runs_before": sorted(runs_before),
    })


def read_record(path: Path) -> dict[str, Any]:
    """The JSON of a ``protocol.json`` record."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProtocolError(f"cannot read the protocol record {path}: {exc}") from None
    if not isinstance(record, dict) or not isinstance(record.get("protocol"), dict):
        raise ProtocolError(f"{path} is not a protocol record (no 'protocol' object)")
    return record


@dataclasses.dataclass(frozen=True)
class ProtocolStatus:
    """A sweep's recorded protocol as a report reads it back."""

    protocol: Protocol
    sha256: str
    recorded_at: str
    config: str
    #: Cells that had results when the protocol was recorded: for them it is not pre-registered.
    runs_before: tuple[str, ...]
    #: The record's hash is that of its protocol (the file was not edited by hand).
    intact: bool
    #: The config's current [protocol] hash when it differs from the record's (None: unchanged or unreadable).
    changed_to: str | None
    #: Why the config could not be compared (None when it was).
    unchecked: str | None = None
    #: False for a protocol applied after the fact to a sweep that recorded none (:func:`applied_status`).
    recorded: bool = True

    @property
    def confirmatory(self) -> bool:
        """Whether the recorded protocol's comparisons are pre-registered (else exploratory)."""
        return self.recorded and self.intact and not self.runs_before


def applied_status(config: Path) -> ProtocolStatus:
    """The ``[protocol]`` of ``config`` applied to a sweep that recorded none: exploratory."""
    protocol = config_protocol(config)
    if protocol is None:
        raise ProtocolError(f"{config} has no [protocol] section to apply")
    return ProtocolStatus(protocol=protocol, sha256=protocol.sha256, recorded_at="never", config=str(config),
                          runs_before=(), intact=True, changed_to=None, recorded=False)


def protocol_status(sweep_dir: Path) -> ProtocolStatus | None:
    """Read ``sweep_dir/protocol.json`` and compare it with its config; None without a record."""
    path = Path(sweep_dir) / PROTOCOL_FILE
    if not path.is_file():
        return None
    record = read_record(path)
    protocol = _recorded_protocol(record["protocol"], path)
    changed_to, unchecked = None, None
    config = Path(os.path.normpath(Path(sweep_dir) / str(record.get("config", ""))))  # recorded relative to it
    try:
        current = config_protocol(config)
    except (ProtocolError, FusionPSROError) as exc:
        current, unchecked = None, str(exc)
    if current is None and unchecked is None:
        unchecked = f"{config} has no [protocol] now"
    if current is not None and current.sha256 != record.get("sha256"):
        changed_to = current.sha256
    return ProtocolStatus(protocol=protocol, sha256=str(record.get("sha256")), recorded_at=str(record.get("recorded_at")),
                          config=str(config), runs_before=tuple(record.get("runs_before", ())),
                          intact=protocol.sha256 == record.get("sha256"), changed_to=changed_to, unchecked=unchecked)


def _recorded_protocol(data: dict[str, Any], path: Path) -> Protocol:
    """The protocol of a record, as it was recorded (its hash is checked by the caller)."""
    try:
        return Protocol(**{**data, "seeds": tuple(data["seeds"]),
                           "comparisons": tuple(tuple(pair) for pair in data["comparisons"])})
    except (TypeError, KeyError) as exc:
        raise ProtocolError(f"{path} holds no readable protocol: {exc}") from None


def _setting_names() -> set[str]:
    return {field.name for field in dataclasses.fields(PSROConfig)}


def config_protocol(config: Path) -> Protocol | None:
    """The ``[protocol]`` of a sweep config file (None if it has none)."""
    import tomllib  # noqa: PLC0415

    try:
        data = tomllib.loads(Path(config).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProtocolError(f"cannot read the sweep config {config}: {exc}") from None
    if "protocol" not in data:
        return None
    return parse_protocol(data["protocol"])


__all__ = ["ENDPOINTS", "PROTOCOL_FILE", "Protocol", "ProtocolError", "ProtocolStatus", "applied_status", "check_cells",
           "config_protocol", "parse_protocol", "protocol_status", "read_record", "record_protocol"]
