"""The four recurrent-network examples: their parts, and each command end to end, small."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

import minigrad
from minigrad.tensor import Tensor
from models import lorenz, menu, plotting, rnn_cli, vanishing
from models.hidden_space import nearest_neighbours, neighbourhood_preservation, pca
from models.lorenz import integrate_lorenz, make_windows

# ---- the Lorenz signal --------------------------------------------------------------


@pytest.fixture(scope="module")
def on_attractor():
    """A state on the attractor, after a transient."""
    return integrate_lorenz(1, dt=0.01, transient_steps=1000)[0]


def test_rk4_matches_a_reference_with_a_hundred_times_smaller_step(on_attractor):
    reference = integrate_lorenz(10_000, dt=1e-4, transient_steps=0, initial_state=on_attractor)[
        -1
    ]  # 1 time unit
    errors = {
        dt: np.abs(integrate_lorenz(round(1 / dt), dt, 0, on_attractor)[-1] - reference).max()
        for dt in (0.01, 0.005)
    }
    assert errors[0.01] < 2e-4
    # fourth order: halving the step divides the error by about 2^4 = 16
    assert 10 < errors[0.01] / errors[0.005] < 22


def test_rk4_integrates_several_starts_side_by_side_as_each_alone(on_attractor):
    starts = np.stack([on_attractor, on_attractor + 0.5])
    together = integrate_lorenz(50, 0.01, 0, starts)  # (50, 2, 3)
    alone = integrate_lorenz(50, 0.01, 0, starts[1])
    assert together.shape == (50, 2, 3)
    np.testing.assert_allclose(together[:, 1], alone, rtol=1e-12)


def test_trajectory_stays_within_the_attractors_bounds_and_visits_both_wings():
    states = integrate_lorenz(5000, dt=0.01, transient_steps=1000)
    x, y, z = states.T
    assert np.abs(x).max() < 25 and np.abs(y).max() < 30
    assert 0 < z.min() and z.max() < 55
    assert (x > 5).mean() > 0.2 and (x < -5).mean() > 0.2  # both lobes, often


def test_windows_hold_the_look_back_values_and_the_values_that_follow():
    series = np.arange(10.0)
    X, y = make_windows(series, look_back=4)
    assert X.shape == (6, 4, 1) and y.shape == (6, 1)
    np.testing.assert_array_equal(X[2, :, 0], [2, 3, 4, 5])
    np.testing.assert_array_equal(y[:, 0], [4, 5, 6, 7, 8, 9])
    X, y = make_windows(series, look_back=4, horizon=3)
    assert X.shape == (4, 4, 1)
    np.testing.assert_array_equal(y[1], [5, 6, 7])


def test_windows_reject_a_series_too_short_naming_the_sizes():
    with pytest.raises(ValueError, match="look_back 8 plus horizon 3"):
        make_windows(np.arange(10.0), look_back=8, horizon=3)


def test_dataset_is_standardised_and_split_in_time_without_shared_values():
    data = lorenz.lorenz_dataset(num_samples=1000, look_back=40, horizon=5)
    assert abs(data.series.mean()) < 1e-9 and abs(data.series.std() - 1) < 1e-9
    last_train_target = data.train_index[-1] + 40 + 5 - 1
    assert data.test_index[0] > last_train_target  # no test input was a training target
    np.testing.assert_allclose(
        data.X_test[0, :, 0], data.series[data.test_index[0] :][:40], rtol=1e-6
    )
    assert data.X_train.shape[1:] == (40, 1) and data.y_test.shape[1] == 5


def test_the_rnn_beats_repeating_the_last_value_on_a_small_run():
    config = lorenz.LorenzConfig(
        seed=2,
        num_samples=3000,
        epochs=6,
        batch_size=16,
        learning_rate=1e-2,
        forecast_steps=20,
        forecast_starts=4,
    )
    result = _without_matplotlib(lambda: lorenz.run(config, log=lambda line: None))
    assert result["rnn_rmse"] < 0.75 * result["naive_rmse"]
    assert result["ratio"] == pytest.approx(result["rnn_rmse"] / result["naive_rmse"])
    assert set(result["forecast_rmse"]) == {1, 10}


def test_free_run_feeds_each_prediction_back_as_the_newest_input():
    class Echo:
        """Predicts the window's first value, so the forecast replays the window."""

        def predict(self, window, batch_size=None):
            return window[:, 0, :]

    windows = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
    forecast = lorenz.free_run(Echo(), windows, steps=4)
    np.testing.assert_array_equal(forecast, [[0, 1, 2, 0], [3, 4, 5, 3]])


# ---- the hidden space ----------------------------------------------------------------


def test_neighbourhood_preservation_is_one_for_an_isometry(rng):
    points = rng.standard_normal((300, 3))
    rotation, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    moved = 2.5 * points @ rotation + np.array([1.0, -4.0, 7.0])
    assert neighbourhood_preservation(points, moved, k=10) == 1.0


def test_neighbourhood_preservation_of_unrelated_points_is_near_chance(rng):
    a, b = rng.standard_normal((500, 3)), rng.standard_normal((500, 3))
    chance = 10 / 499
    assert neighbourhood_preservation(a, b, k=10) < 2.5 * chance


def test_nearest_neighbours_exclude_the_point_itself():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    neighbours = nearest_neighbours(points, k=2)
    assert [sorted(row) for row in neighbours.tolist()] == [[1, 2], [0, 2], [0, 1], [1, 2]]


def test_pca_finds_the_plane_the_points_lie_in(rng):
    plane = rng.standard_normal((200, 2)) * [3.0, 1.0]
    basis, _ = np.linalg.qr(rng.standard_normal((5, 2)))
    points = plane @ basis.T + 10.0  # a tilted, shifted plane in 5-D
    projected, explained = pca(points, dims=3)
    assert explained[:2].sum() == pytest.approx(1.0, abs=1e-9)
    assert explained[2] < 1e-12
    assert neighbourhood_preservation(plane, projected[:, :2], k=5) == 1.0


# ---- the menu of the day -------------------------------------------------------------


def test_hand_set_menu_network_follows_the_rule_in_all_six_situations():
    cell = menu.hand_set_cell()
    dishes = np.repeat(np.arange(3), 2)
    weather = np.tile([menu.SUNNY, menu.RAINY], 3)
    with minigrad.no_grad():
        state, _ = cell.step(Tensor(menu.one_hot(weather, 2)), Tensor(menu.one_hot(dishes, 3)))
    expected = np.where(weather == menu.RAINY, dishes, (dishes + 1) % 3)
    np.testing.assert_array_equal(state.data.argmax(axis=1), expected)
    assert state.data.max(axis=1).min() > 0.99  # the new state is one-hot again


def test_hand_set_menu_network_serves_every_day_of_a_random_series_right():
    weather, dishes = menu.generate_days(2000, np.random.default_rng(7))
    assert menu.accuracy(menu.hand_set_cell(), weather, dishes) == 1.0


def test_generated_days_follow_the_cooks_rule():
    weather, dishes = menu.generate_days(50, np.random.default_rng(3))
    step = np.where(weather == menu.SUNNY, 1, 0)
    np.testing.assert_array_equal(dishes[1:], (dishes[:-1] + step) % 3)


def test_menu_network_trained_from_random_weights_serves_every_fresh_day_right():
    config = menu.MenuConfig(seed=4, train_days=200, test_days=300, target_loss=0.05, log_every=100)
    lines = []
    result = _without_matplotlib(lambda: menu.run(config, log=lines.append))
    assert result["hand_accuracy"] == 1.0
    assert result["train_accuracy"] == 1.0 and result["trained_accuracy"] == 1.0
    first_loss, last_loss = result["curve"][0][1], result["curve"][-1][1]
    assert last_loss < 0.05 < first_loss
    assert any(line.startswith("epoch 100: loss ") for line in lines)


# ---- the vanishing gradient ---------------------------------------------------------


def test_decay_factor_of_a_geometric_sequence_is_its_ratio():
    assert vanishing.decay_factor(0.7 ** np.arange(20)) == pytest.approx(0.7)
    assert vanishing.decay_factor(np.r_[1.0, 3.0 * 1.2 ** np.arange(10)]) == pytest.approx(1.2)


def test_a_gradient_that_dies_at_once_has_factor_zero_and_one_that_overflows_inf():
    assert vanishing.decay_factor(np.r_[1.0, 0.3, np.zeros(10)]) == 0.0
    assert vanishing.decay_factor(np.r_[1.0, 1e30, np.full(10, np.inf)]) == np.inf


def test_scaling_the_recurrent_kernel_sets_each_gates_spectral_norm():
    minigrad.manual_seed(0)
    layer = minigrad.nn.LSTM(3, 5)
    vanishing.scale_recurrent_kernel(layer, 0.5)
    blocks = np.split(layer.recurrent_kernel.data, 4, axis=1)
    assert [round(float(np.linalg.norm(b, 2)), 5) for b in blocks] == [0.5] * 4


def test_simple_rnn_gradient_shrinks_with_each_step_back_for_a_small_scale():
    minigrad.manual_seed(0)
    layer = vanishing.make_layer("SimpleRNN", features=4, units=16, spectral_norm=0.5)
    norms = vanishing.gradient_norms(
        layer, steps=20, sequences=8, warmup=5, rng=np.random.default_rng(0)
    )
    assert norms[0] == pytest.approx(1.0)  # dL/dh_T = v, a unit vector
    assert np.all(np.diff(norms) < 0)
    assert vanishing.decay_factor(norms) < 0.6


def test_gradient_through_an_lstm_with_an_open_forget_gate_decays_more_slowly():
    minigrad.manual_seed(0)
    rng = np.random.default_rng(0)
    factors = {}
    for kind in ("SimpleRNN", "LSTM"):
        layer = vanishing.make_layer(kind, 4, 16, spectral_norm=1.0, forget_bias=3.0)
        factors[kind] = vanishing.decay_factor(
            vanishing.gradient_norms(layer, steps=30, sequences=8, warmup=10, rng=rng)
        )
    assert factors["SimpleRNN"] < 0.9
    assert factors["LSTM"] > factors["SimpleRNN"] + 0.1


def test_a_kernel_whose_products_overflow_saturates_quietly():
    minigrad.manual_seed(0)
    layer = vanishing.make_layer("SimpleRNN", features=4, units=6, spectral_norm=1e308)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        norms = vanishing.gradient_norms(
            layer, steps=4, sequences=3, warmup=2, rng=np.random.default_rng(0)
        )
    assert norms[0] == pytest.approx(1.0)
    np.testing.assert_array_equal(norms[1:], 0.0)  # tanh saturated at +-1: no gradient


# ---- the commands, end to end --------------------------------------------------------

SMALL = {
    "lorenz": [
        "--num_samples",
        "1500",
        "--epochs",
        "1",
        "--forecast_steps",
        "10",
        "--forecast_starts",
        "3",
    ],
    "hidden-space": [
        "--num_samples",
        "1500",
        "--epochs",
        "1",
        "--units",
        "6",
        "--horizon",
        "3",
        "--points",
        "200",
        "--projections",
        "2",
    ],
    "menu": [
        "--train_days",
        "100",
        "--test_days",
        "100",
        "--max_epochs",
        "20",
        "--log_every",
        "10",
    ],
    "vanishing": [
        "--units",
        "6",
        "--steps",
        "8",
        "--warmup",
        "2",
        "--sequences",
        "3",
        "--scales",
        "0.5,2",
    ],
}
EXPECTED = {
    "lorenz": ["ratio rnn/naive", "     10  0.10  "],
    "hidden-space": ["hidden state, PCA to 3-D", "random projection to 3-D (floor"],
    "menu": ["hand-set network on 100 random days: 100.0% right", "epoch 10: loss "],
    "vanishing": ["   SimpleRNN   0.5", "     LSTM f3     2"],
}
PLOTS = {
    "lorenz": "lorenz.png",
    "hidden-space": "hidden_space.png",
    "menu": "menu.png",
    "vanishing": "vanishing.png",
}


def _without_matplotlib(fn):
    """Run fn as if matplotlib were not installed (None in sys.modules fails the import)."""
    saved = {
        name: sys.modules.pop(name)
        for name in list(sys.modules)
        if name == "matplotlib" or name.startswith("matplotlib.")
    }
    sys.modules["matplotlib"] = None
    try:
        return fn()
    finally:
        del sys.modules["matplotlib"]
        sys.modules.update(saved)


@pytest.mark.parametrize("example", list(SMALL))
def test_each_command_prints_its_numbers_and_the_install_hint_without_matplotlib(
    example, tmp_path, capsys
):
    argv = [example, *SMALL[example], "--out_dir", str(tmp_path)]
    assert _without_matplotlib(lambda: rnn_cli.main(argv)) == 0
    out = capsys.readouterr().out
    for text in EXPECTED[example]:
        assert text in out
    assert plotting.INSTALL_HINT in out
    assert "time: " in out
    assert not (tmp_path / PLOTS[example]).exists()


@pytest.mark.parametrize("example", list(SMALL))
def test_each_command_writes_its_plot_when_matplotlib_is_installed(example, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert rnn_cli.main([example, *SMALL[example], "--out_dir", str(tmp_path)]) == 0
    path = tmp_path / PLOTS[example]
    assert path.stat().st_size > 10_000
    assert capsys.readouterr().out.rstrip().endswith(f"wrote {path}")


@pytest.mark.parametrize("num_samples", [1, 50, 200])
def test_too_few_windows_are_refused_naming_the_fewest_that_work(num_samples, capsys):
    assert rnn_cli.main(["lorenz", "--num_samples", str(num_samples)]) == 2
    expected = (
        f"--num_samples: {num_samples} windows are too few; a gap of 40 windows separates "
        "the test windows from the training ones (look_back 40, horizon 1), so at least 201 "
        "are needed"
    )
    assert expected in capsys.readouterr().err
    assert lorenz.fewest_windows(40, 0.8) == 201
    data = lorenz.lorenz_dataset(201, look_back=40)  # 160 training, a gap of 40, one test
    assert (len(data.X_train), len(data.X_test)) == (160, 1)


def test_a_bad_flag_is_refused_naming_it_what_it_got_and_what_was_expected(capsys):
    assert rnn_cli.main(["lorenz", "--num_samples", "0"]) == 2
    assert "--num_samples must be positive, got 0" in capsys.readouterr().err
    assert rnn_cli.main(["hidden-space", "--points", "5000", "--num_samples", "1500"]) == 2
    assert "--points: 5000 is more than the" in capsys.readouterr().err
    assert rnn_cli.main(["lorenz", "--num_samples", "1500", "--forecast_steps", "900"]) == 2
    assert "--forecast_steps: 900 steps need 901 test windows, and there are 260" in (
        capsys.readouterr().err
    )
    flags = ["--num_samples", "1500", "--forecast_steps", "100", "--forecast_starts", "500"]
    assert rnn_cli.main(["lorenz", *flags]) == 2
    expected = "--forecast_starts: 500 forecasts of 100 steps need that many distinct starting"
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["lorenz", "--learning_rate", "nan"], "--learning_rate must be positive, got nan"),
        (["hidden-space", "--learning_rate", "inf"], "--learning_rate must be positive, got inf"),
        (["menu", "--learning_rate", "nan"], "--learning_rate must be positive, got nan"),
        (["vanishing", "--scales", "1,nan"], "--scales must be positive numbers, got (1.0, nan)"),
    ],
)
def test_a_learning_rate_or_scale_that_is_not_a_finite_number_is_refused(argv, expected, capsys):
    assert rnn_cli.main(argv) == 2
    assert expected in capsys.readouterr().err


def test_an_example_also_runs_as_a_python_module(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "models.vanishing",
            "--units",
            "4",
            "--steps",
            "4",
            "--warmup",
            "1",
            "--sequences",
            "2",
            "--scales",
            "1",
            "--forget_biases",
            "1",
            "--out_dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "   SimpleRNN     1   1.0e+00" in result.stdout


def test_a_plot_folder_that_cannot_be_written_is_refused_before_the_work(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    blocker = tmp_path / "plots"
    blocker.write_text("a file where the folder should be")
    assert rnn_cli.main(["lorenz", "--out_dir", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert f"--out_dir {str(blocker)!r}: cannot write there" in err
