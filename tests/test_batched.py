"""Many runs' best responses trained at once: the pg oracle's batched path, against its single path.

``FUSION_PSRO_TEST_DEVICE=cuda`` reruns the equality tests with both paths on CUDA (skipped,
with the reason, where this machine has none); by default they run on the CPU.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch
from conftest import KUHN, LEDUC, record_batched_calls

from fusion_psro.games import compile_game
from fusion_psro.oracles import BestResponseRequest, DiversityTerm
from fusion_psro.oracles.exact import ExactOracle
from fusion_psro.oracles.pg import PGConfig, PolicyGradientOracle
from fusion_psro.policies import random_policy, uniform_policy

#: The device the equality tests run on (both paths): ``FUSION_PSRO_TEST_DEVICE``, default the CPU.
DEVICE = os.environ.get("FUSION_PSRO_TEST_DEVICE", "cpu")


def equality_device():
    """The device the equality tests compare on; skips them where it is absent."""
    if DEVICE.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"FUSION_PSRO_TEST_DEVICE={DEVICE}, but this machine (or this PyTorch build) has no CUDA")
    return DEVICE


def requests_for(compiled, oracle, count, seed=0):
    """``count`` requests of both players against random opponent mixtures, from scratch and from given parameters."""
    rng = np.random.default_rng(seed)
    requests = []
    for k in range(count):
        player = k % 2
        population = np.stack([random_policy(compiled, 1 - player, rng) for _ in range(3)])
        start = oracle.scratch_parameters(player, "normal", 100 + k) if k % 3 else None
        requests.append(BestResponseRequest(player, population, rng.dirichlet(np.ones(3)), seed=k,
                                            initial_parameters=start))
    return requests


def assert_same_response(single, batched, exact=True):
    """The same response; ``exact``: bit for bit (the CPU), else up to the rounding of batched products."""
    assert np.array_equal(single.policy, batched.policy)
    assert single.episodes == batched.episodes
    a, b = single.metrics.to_json(), batched.metrics.to_json()
    assert set(a) == set(b)
    for key in a:
        if key == "train_s":
            continue
        if isinstance(a[key], float) and not exact:
            assert a[key] == pytest.approx(b[key], abs=1e-6), key
        else:
            assert a[key] == b[key], key
    assert list(single.parameters) == list(batched.parameters)
    for name, tensor in single.parameters.items():
        assert batched.parameters[name].device.type == "cpu"
        if exact:
            assert torch.equal(tensor, batched.parameters[name]), name
        else:
            assert torch.allclose(tensor, batched.parameters[name], atol=1e-5), name


@pytest.mark.parametrize("game, hidden, steps, exact", [
    (KUHN, (64,), 40, True), (LEDUC, (64, 64), 30, True),
    # Kuhn's 6 information states make products so small that PyTorch computes the batched ones with
    # a loop of its own instead of the BLAS call of a single network's: equal up to float32 rounding.
    (KUHN, (16, 16), 40, False),
])
def test_pg_batched_responses_equal_single_ones(game, hidden, steps, exact):
    device = equality_device()
    compiled = compile_game(game)
    oracle = PolicyGradientOracle(compiled, PGConfig(hidden_sizes=hidden, steps=steps, device=device))
    requests = requests_for(compiled, oracle, 6)
    single = [oracle.best_response(r) for r in requests]
    batched = oracle.best_responses(requests)
    for a, b in zip(single, batched):  # bit for bit on the CPU where both go through BLAS
        assert_same_response(a, b, exact=exact and device == "cpu")
    assert all(r.metrics.device.startswith(device) for r in batched)


def test_pg_batched_responses_take_spent_budgets_diversity_and_progress():
    """Requests that spent some budget train for the rest; a diversity term or checkpoints go the single
    path; every request's progress is reported."""
    compiled = compile_game(KUHN)
    oracle = PolicyGradientOracle(compiled, PGConfig(hidden_sizes=(64,), steps=20, device="cpu"))
    requests = requests_for(compiled, oracle, 5, seed=1)
    seen = {k: [] for k in range(5)}
    requests = [dataclasses.replace(r, on_progress=lambda done, total, k=k: seen[k].append((done, total)))
                for k, r in enumerate(requests)]
    requests[2] = dataclasses.replace(requests[2], budget_spent=5)
    requests[4] = dataclasses.replace(requests[4], budget_spent=5)
    term = DiversityTerm(kind="dpp", weight=0.5, own_population=uniform_policy(compiled, 1)[None],
                         own_meta_strategy=np.ones(1), own_payoffs=np.zeros((1, 3)),
                         opponent_population=requests[3].opponent_population, seed=3)
    requests[3] = dataclasses.replace(requests[3], diversity=term)
    single = [oracle.best_response(r) for r in requests]
    batched = oracle.best_responses(requests)
    for a, b in zip(single, batched):
        assert_same_response(a, b)
    assert [r.metrics.steps for r in batched] == [20, 20, 15, 20, 15]
    assert seen[0][-1] == (20, 20) and seen[2][-1] == (15, 15)


def test_every_oracle_answers_best_responses():
    """The default hook computes the requests one after the other (an oracle that batches nothing)."""
    compiled = compile_game(KUHN)
    oracle = ExactOracle(compiled)
    assert not oracle.batches_responses and PolicyGradientOracle.batches_responses
    requests = requests_for(compiled, PolicyGradientOracle(compiled, PGConfig(hidden_sizes=(8,))), 3)
    requests = [dataclasses.replace(r, initial_parameters=None) for r in requests]
    for a, b in zip(oracle.best_responses(requests), [oracle.best_response(r) for r in requests]):
        assert np.array_equal(a.policy, b.policy)


# -- runs in lockstep -----------------------------------------------------------------------------

def run_configs(game, device="cpu"):
    """Four runs that differ in seed, init, variant and meta-solver, and share the game and the oracle."""
    from fusion_psro.psro import PSROConfig

    options = {"hidden_sizes": (64,), "steps": 15, "device": device}
    common = dict(game=game, oracle="pg", oracle_options=options, iterations=3)
    return [
        PSROConfig(**common, seed=0, init="normal"),
        PSROConfig(**common, seed=1, init="inherit", meta_solver="uniform"),
        PSROConfig(**common, seed=2, init="fusion", fusion_start=2),
        PSROConfig(**common, seed=3, init="fusion", variant="psro-rn"),
    ]


def exploitabilities(rows):
    return [row.exploitability for row in rows]


@pytest.mark.parametrize("game", [KUHN, LEDUC])
def test_batched_runs_equal_single_runs(game, tmp_path, monkeypatch, caplog):
    from fusion_psro.experiments.batched import run_batch
    from fusion_psro.experiments.rundir import read_metrics
    from fusion_psro.experiments.runner import run_psro

    configs = run_configs(game, equality_device())
    single = [run_psro(c, tmp_path / f"single{k}", progress=False) for k, c in enumerate(configs)]
    calls = record_batched_calls(monkeypatch, PolicyGradientOracle)  # counts only calls that returned
    outcomes = run_batch(configs, [tmp_path / f"batched{k}" for k in range(len(configs))])
    assert [o.error for o in outcomes] == [None] * 4
    assert [o.warning for o in outcomes] == [None] * 4
    assert "batched oracle call failed" not in caplog.text
    # Every iteration's responses of all four runs (two players each; psro-rn's learners) went in one call.
    assert len(calls) == 3 and all(count >= 8 for count in calls)
    for k, (alone, outcome) in enumerate(zip(single, outcomes)):
        assert len(outcome.result) == 3
        assert exploitabilities(outcome.result) == pytest.approx(exploitabilities(alone), abs=1e-6)
        written = read_metrics(tmp_path / f"batched{k}")
        assert [row["exploitability"] for row in written] == exploitabilities(outcome.result)
        assert [row["inits"] for row in written] == [row.inits for row in alone]
    assert single[2][1].inits == ["fusion", "fusion"] and single[3][0].inits[0] == "normal"


def test_a_batched_run_resumes_alone(tmp_path):
    from fusion_psro.experiments.batched import run_batch
    from fusion_psro.experiments.runner import resume_psro, run_psro

    configs = [dataclasses.replace(c, iterations=2) for c in run_configs(KUHN)[:2]]
    outs = [tmp_path / "a", tmp_path / "b"]
    assert all(o.error is None for o in run_batch(configs, outs))
    resumed = resume_psro(outs[1], iterations=3, progress=False)
    alone = run_psro(dataclasses.replace(configs[1], iterations=3), tmp_path / "alone", progress=False)
    assert exploitabilities(resumed) == pytest.approx(exploitabilities(alone), abs=1e-6)


def test_batches_refuse_runs_that_do_not_share_the_game_oracle_or_iterations(tmp_path):
    from fusion_psro.experiments.batched import BatchError, run_batch

    configs = run_configs(KUHN)[:2]
    for change, named in [({"game": LEDUC}, "game"), ({"iterations": 4}, "iterations"),
                          ({"oracle_options": {"hidden_sizes": (8,), "steps": 15}}, "oracle_options"),
                          ({"oracle": "exact", "oracle_options": {}, "init": None}, "oracle")]:
        other = dataclasses.replace(configs[1], **change)
        with pytest.raises(BatchError, match=f"run 1 has {named} ") as error:
            run_batch([configs[0], other], [tmp_path / "a", tmp_path / "b"])
        assert "\n" not in str(error.value)
    assert not (tmp_path / "a").exists()


def test_a_failing_run_ends_alone(tmp_path):
    """A run whose directory is unusable fails with its error; the others of the batch finish."""
    from fusion_psro.experiments.batched import run_batch

    configs = run_configs(KUHN)[:3]
    (tmp_path / "blocked").write_text("a file where a run directory should be")
    outcomes = run_batch(configs, [tmp_path / "a", tmp_path / "blocked", tmp_path / "c"])
    assert outcomes[1].failed and "\n" not in outcomes[1].error
    assert not outcomes[0].failed and not outcomes[2].failed and len(outcomes[2].result) == 3


def test_a_failed_batched_call_falls_back_visibly(tmp_path, monkeypatch, caplog):
    """A batched call that raises: every run computes its responses alone, warns once, and says so in its outcome."""
    from fusion_psro.experiments.batched import run_batch
    from fusion_psro.experiments.runner import run_psro

    configs = [dataclasses.replace(c, iterations=2) for c in run_configs(KUHN)[:2]]
    alone = run_psro(configs[0], tmp_path / "alone", progress=False)

    def broken(self, requests, **kwargs):
        raise RuntimeError("no batched training here\nsecond line")

    monkeypatch.setattr(PolicyGradientOracle, "best_responses", broken)
    outcomes = run_batch(configs, [tmp_path / "a", tmp_path / "b"])
    assert [o.error for o in outcomes] == [None, None]
    assert all("RuntimeError: no batched training here)" in o.warning for o in outcomes)
    assert exploitabilities(outcomes[0].result) == pytest.approx(exploitabilities(alone), abs=1e-6)
    warnings = [r.getMessage() for r in caplog.records if "batched oracle call failed" in r.getMessage()]
    assert sorted(w.split(":")[0] for w in warnings) == ["run 0", "run 1"]
    assert all("second line" not in w for w in warnings)


def test_a_sweep_reports_the_cells_whose_batched_call_fell_back(tmp_path, monkeypatch):
    from fusion_psro.experiments.sweep import load_sweep, run_sweep

    path = tmp_path / "sweep.toml"
    path.write_text(PG_SWEEP.replace("iterations = [2, 3]", "iterations = [1]").replace("seed = [0, 1]", "seed = [0]")
                    .format(out=tmp_path / "runs"))

    def broken(self, requests, **kwargs):
        raise RuntimeError("no batched training here")

    monkeypatch.setattr(PolicyGradientOracle, "best_responses", broken)
    results = run_sweep(load_sweep(path), progress=False)
    assert len(results) == 2 and all("RuntimeError: no batched training here" in r["warning"] for r in results)


def test_an_oracle_answering_too_few_responses_is_refused(tmp_path, monkeypatch):
    from fusion_psro.errors import FusionPSROError
    from fusion_psro.experiments.batched import run_batch

    configs = [dataclasses.replace(c, iterations=1) for c in run_configs(KUHN)[:2]]
    batched_call = PolicyGradientOracle.best_responses
    monkeypatch.setattr(PolicyGradientOracle, "best_responses",
                        lambda self, requests, **kwargs: batched_call(self, requests, **kwargs)[:-1])
    with pytest.raises(FusionPSROError, match=r"oracle 'pg' returned 3 best responses for 4 requests"):
        run_batch(configs, [tmp_path / "a", tmp_path / "b"])


def test_batches_refuse_a_device_that_is_absent():
    from fusion_psro.experiments.batched import BatchError, check_device

    with pytest.raises(BatchError, match="device must be one of auto, cpu, cuda"):
        check_device("tpu")
    with pytest.raises(BatchError, match="applies to oracles that train responses batched"):
        check_device("cpu", "exact")
    if not torch.cuda.is_available():
        with pytest.raises(BatchError, match="needs CUDA"):
            check_device("cuda", "pg")


# -- batched sweeps -------------------------------------------------------------------------------

PG_SWEEP = """
[sweep]
out = "{out}"
workers = 1
executor = "batched"

[grid]
init = ["normal", "fusion"]
seed = [0, 1]
iterations = [2, 3]

[settings]
game = "kuhn_poker"
oracle = "pg"
oracle_options = {{hidden_sizes = [16], steps = 10, device = "cpu"}}
"""


def test_a_batched_sweep_groups_cells_that_share_game_oracle_and_iterations(tmp_path, capsys):
    from fusion_psro.cli import main
    from fusion_psro.experiments.batched import plan_batches
    from fusion_psro.experiments.runner import run_psro
    from fusion_psro.experiments.sweep import load_sweep, seed_major

    path = tmp_path / "sweep.toml"
    path.write_text(PG_SWEEP.format(out=tmp_path / "runs"))
    sweep = load_sweep(path)
    assert sweep.executor == "batched" and sweep.device is None
    configs = [cell.config for cell in sweep.cells]
    order = seed_major(sweep.cells, list(range(len(configs))))
    batches = plan_batches(configs, order, workers=1)
    assert sorted(len(b) for b in batches) == [4, 4]
    assert all(len({configs[i].iterations for i in batch}) == 1 for batch in batches)
    assert [len(b) for b in plan_batches(configs, order, workers=3)] == [2, 1, 1, 2, 1, 1]
    assert main(["sweep", str(path), "--quiet"]) == 0
    cell = next(c for c in sweep.cells if c.config.init == "fusion" and c.config.iterations == 3)
    alone = run_psro(cell.config, tmp_path / "alone", progress=False)
    from fusion_psro.experiments.rundir import read_metrics

    assert [r["exploitability"] for r in read_metrics(cell.out)] == pytest.approx(exploitabilities(alone), abs=1e-6)
    assert main(["sweep", str(path), "--quiet"]) == 0
    assert "nothing to run: 8 cells finished" in capsys.readouterr().err


def test_the_batched_flag_batches_a_sweep_config_without_executor(tmp_path, monkeypatch):
    from fusion_psro.experiments import batched
    from fusion_psro.cli import main

    path = tmp_path / "sweep.toml"
    path.write_text(PG_SWEEP.replace('executor = "batched"\n', "").replace("iterations = [2, 3]", "iterations = [1]")
                    .format(out=tmp_path / "runs"))
    sizes = []
    run_batch = batched.run_batch
    monkeypatch.setattr(batched, "run_batch", lambda configs, *a, **k: sizes.append(len(configs)) or run_batch(configs, *a, **k))
    assert main(["sweep", str(path), "--quiet", "--batched"]) == 0
    assert sizes == [4]


def test_the_batched_flag_accepts_a_sweep_device_without_executor(tmp_path):
    """``[sweep] device`` with no executor in the file: refused alone, accepted with ``--batched``."""
    from fusion_psro.cli import main
    from fusion_psro.experiments.sweep import SweepConfigError, load_sweep

    path = tmp_path / "sweep.toml"
    path.write_text(PG_SWEEP.replace('executor = "batched"', 'device = "cpu"').replace("iterations = [2, 3]", "iterations = [1]")
                    .replace("seed = [0, 1]", "seed = [0]").format(out=tmp_path / "runs"))
    with pytest.raises(SweepConfigError, match="device applies to executor"):
        load_sweep(path)
    sweep = load_sweep(path, batched=True)
    assert sweep.executor == "batched" and sweep.device == "cpu"
    assert main(["sweep", str(path), "--quiet", "--batched"]) == 0


def test_a_cuda_sweep_is_refused_where_its_batches_would_run_as_ray_tasks(tmp_path):
    """Ray tasks see no GPU: device = "cuda" needs workers = 1 and no --address (refused in one line)."""
    from fusion_psro.experiments.sweep import SweepConfigError, load_sweep, run_sweep

    path = tmp_path / "sweep.toml"
    text = PG_SWEEP.replace('executor = "batched"', 'executor = "batched"\ndevice = "cuda"')
    path.write_text(text.replace("workers = 1", "workers = 2").format(out=tmp_path / "runs"))
    with pytest.raises(SweepConfigError, match=r"device = \"cuda\" needs workers = 1") as error:
        load_sweep(path)
    assert "\n" not in str(error.value)
    # With one worker, --address would still send the batches to Ray (the device set after loading,
    # as "cuda" loads only where CUDA is present).
    path.write_text(text.replace('device = "cuda"', 'device = "cpu"').format(out=tmp_path / "runs"))
    sweep = dataclasses.replace(load_sweep(path), device="cuda")
    with pytest.raises(SweepConfigError, match="cannot run with --address") as error:
        run_sweep(sweep, address="127.0.0.1:1", progress=False)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("change", "message"), [
    (('executor = "batched"', 'executor = "fast"'), r"\[sweep\] executor must be \"single\""),
    (('executor = "batched"', 'device = "cpu"'), r"\[sweep\] device applies to executor = \"batched\""),
    (('executor = "batched"', 'executor = "batched"\ndevice = "gpu"'), r"device must be one of auto, cpu, cuda"),
    (('oracle = "pg"', 'oracle = "exact"'), None),
])
def test_bad_batched_sweep_settings_are_refused_in_one_line(tmp_path, change, message):
    from fusion_psro.experiments.sweep import SweepConfigError, load_sweep

    text = PG_SWEEP.replace(*change)
    if message is None:  # a device for an oracle that does not batch (the exact oracle, which has no init)
        text = text.replace('executor = "batched"', 'executor = "batched"\ndevice = "cpu"').replace(
            'oracle_options = {{hidden_sizes = [16], steps = 10, device = "cpu"}}', '').replace(
            'init = ["normal", "fusion"]\n', '')
        message = "applies to oracles that train responses batched"
    path = tmp_path / "sweep.toml"
    path.write_text(text.format(out=tmp_path / "runs"))
    with pytest.raises(SweepConfigError, match=message) as error:
        load_sweep(path)
    assert "\n" not in str(error.value)
    if not torch.cuda.is_available():
        path.write_text(PG_SWEEP.replace('executor = "batched"', 'executor = "batched"\ndevice = "cuda"')
                        .format(out=tmp_path / "runs"))
        with pytest.raises(SweepConfigError, match="needs CUDA"):
            load_sweep(path)


def test_ctrl_c_stops_a_batched_sweep_and_keeps_its_runs_resumable(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "sweep.toml"
    path.write_text(PG_SWEEP.replace("iterations = [2, 3]", "iterations = [500]").format(out=tmp_path / "runs"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, "-m", "fusion_psro.cli", "sweep", str(path), "--quiet"],
                               stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
            p.stat().st_size for p in (tmp_path / "runs").glob("*/metrics.jsonl")):
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    try:
        status = process.wait(timeout=60)
    finally:
        process.kill()
    assert status == 130, process.stderr.read()
    assert "stopped" in process.stderr.read()
    runs = sorted((tmp_path / "runs").glob("*/checkpoints/iteration-*.npz"))
    assert runs, "the runs that recorded an iteration keep their checkpoints"
    assert not list((tmp_path / "runs").glob("*/*.lock")) and not (tmp_path / "runs" / "sweep.lock").exists()
