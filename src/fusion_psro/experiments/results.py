"""Getting a run's results back: its settings, metrics, populations and final mixtures.

::

    import fusion_psro
    run = fusion_psro.load_run("runs/leduc-fusion")
    run.config                      # the PSROConfig it ran
    run.records[-1].exploitability  # typed metrics rows
    run.populations[0][3].policy    # member 3 of player 0: tabular policy (and .parameters)
    run.meta_strategies(5)          # the meta-strategies after iteration 5
    run.population_at(5)            # the populations as they were after iteration 5
    run.networks(0)                 # player 0's members as torch modules (learned oracles)
    run.final_policy()              # the final meta-strategy mixtures as one OpenSpiel TabularPolicy
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from fusion_psro.experiments.rundir import CONFIG_FILE, POPULATION_DIR, RunDirectoryError, read_metrics
from fusion_psro.psro.config import PSROConfig
from fusion_psro.psro.population import Member
from fusion_psro.psro.records import IterationRecord


@dataclasses.dataclass(eq=False)
class SavedRun:
    """A finished (or checkpointed) run read back from its directory; see the module docstring."""

    path: Path
    config: PSROConfig
    records: list[IterationRecord]
    #: The final populations, one list of members per player.
    populations: list[list[Member]]

    @property
    def iterations(self) -> int:
        return self.records[-1].iteration if self.records else 0

    def record(self, iteration: int) -> IterationRecord:
        """The metrics row of ``iteration`` (1 for the first)."""
        if not 1 <= iteration <= self.iterations:
            raise RunDirectoryError(f"{self.path} recorded iterations 1..{self.iterations}; there is no iteration {iteration}")
        return self.records[iteration - 1]

    def meta_strategies(self, iteration: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each player's meta-strategy after ``iteration`` (default: the last)."""
        record = self.record(iteration or self.iterations)
        return np.asarray(record.meta_strategies[0]), np.asarray(record.meta_strategies[1])

    def population_at(self, iteration: int) -> list[list[Member]]:
        """The populations after ``iteration``: the first members of the final ones.

        Only for variants whose members never change once added (not P-PSRO, whose
        learners keep training in place).
        """
        from fusion_psro.registry import VARIANTS  # noqa: PLC0415

        if not VARIANTS.get(self.config.variant).appends_members:
            raise RunDirectoryError(
                f"{self.path} is a {self.config.variant} run: its members kept training after they joined, so the "
                f"populations of iteration {iteration} are not the first members of the final ones; accepted: "
                f"runs of {VARIANTS.accepted(lambda v: v.appends_members)}"
            )
        sizes = self.record(iteration).population_sizes
        return [self.populations[p][: sizes[p]] for p in range(2)]

    def networks(self, player: int) -> list[Any]:
        """``player``'s members as torch modules (None for members without parameters)."""
        from fusion_psro.psro.loop import make_oracle  # noqa: PLC0415 (loads the oracle and PyTorch)
        from fusion_psro.psro.spaces import make_space  # noqa: PLC0415

        config = self.config.resolved()
        oracle = make_oracle(config, make_space(config))
        if not hasattr(oracle, "network"):
            raise RunDirectoryError(f"the {config.oracle} oracle of {self.path} has no networks")
        return [None if m.parameters is None else oracle.network(player, m.parameters) for m in self.populations[player]]

    def final_policy(self):
        """The final meta-strategy mixtures of both players as one OpenSpiel ``TabularPolicy``."""
        from fusion_psro.evaluation.behaviour import mixture_behaviour  # noqa: PLC0415
        from fusion_psro.games import compile_game  # noqa: PLC0415
        from fusion_psro.interop import to_openspiel_policy  # noqa: PLC0415

        compiled = compile_game(self.config.game)
        sigma = self.meta_strategies()
        behaviour = [mixture_behaviour(compiled, p, np.stack([m.policy for m in self.populations[p]]), sigma[p])
                     for p in range(2)]
        return to_openspiel_policy(compiled, behaviour)


def load_run(path: Path | str) -> SavedRun:
    """Read a run directory (config, metrics and final populations); see the module docstring."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        raise RunDirectoryError(f"{path} has no {CONFIG_FILE}; it is not a fusion-psro run directory")
    try:
        config = PSROConfig.from_record(json.loads((path / CONFIG_FILE).read_text())["psro"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirectoryError(f"cannot read the settings in {path / CONFIG_FILE}: {exc}") from None
    records = [IterationRecord.from_json(row) for row in read_metrics(path)]
    return SavedRun(path=path, config=config, records=records, populations=[_members(path, p) for p in range(2)])


def _members(path: Path, player: int) -> list[Member]:
    from safetensors.torch import load_file  # noqa: PLC0415

    policies_file = path / POPULATION_DIR / f"player{player}.npz"
    if not policies_file.is_file():
        raise RunDirectoryError(f"{path} has no saved population ({policies_file} is missing); the run has not finished")
    with np.load(policies_file) as data:
        policies, origins = data["policies"], data["origins"]
    members = []
    for k, (policy, origin) in enumerate(zip(policies, origins)):
        parameters_file = path / POPULATION_DIR / f"player{player}_member{k:03d}.safetensors"
        parameters = load_file(str(parameters_file)) if parameters_file.is_file() else None
        members.append(Member(policy=np.asarray(policy, dtype=np.float64), parameters=parameters, origin=str(origin)))
    return members


__all__ = ["SavedRun", "load_run"]
