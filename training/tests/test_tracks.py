"""Track import, validation errors and derived geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from motocoach.errors import TrackError
from motocoach.training import tracks as T
from motocoach.training.trackgen import generate_track, write_builtin_tracks
from motocoach.training.raceline import resample_closed

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tracks"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="the real-circuit data folder is not beside the project")


def test_at_least_three_distinct_builtin_tracks():
    names = T.builtin_tracks()
    assert len(names) >= 3
    lengths = {round(T.get_track(n).length_m) for n in names}
    assert len(lengths) == len(names)


def test_builtin_csvs_are_what_the_generator_writes(tmp_path):
    written = write_builtin_tracks(tmp_path)
    for p in written:
        assert np.allclose(T.read_track_csv(p), T.read_track_csv(T.get_track(p.stem).source))


def test_geometry_is_derived():
    t = T.get_track("heron")
    assert t.line_kappa.shape == (t.n_grid,) and t.line_xy.shape == (t.n_grid, 2)
    # a closed loop turns through +-360 degrees in total
    assert abs(abs(t.line_kappa.sum() * T.GRID_M) - 2 * np.pi) < 0.3
    # the grid is 1 m along the racing line
    step = np.linalg.norm(np.diff(t.line_xy, axis=0), axis=1)
    assert abs(step.mean() - T.GRID_M) < 0.01 and step.max() < 1.05
    assert len(t.apex_s) >= 4 and np.all(np.diff(t.apex_s) > 0)
    assert np.all(t.dist_to_apex >= 0) and np.all(t.dist_to_apex < t.length_m)
    # the racing line stays on the track, keeping the bike's half width inside
    assert np.all(t.line_offset < t.w_right - 0.3) and np.all(-t.line_offset < t.w_left - 0.3)


def test_import_any_csv_with_header_and_closing_point(tmp_path):
    pts = generate_track(seed=5)
    p = tmp_path / "mine.csv"
    p.write_text("x_m,y_m,w_tr_right_m,w_tr_left_m\n"
                 + "\n".join(",".join(f"{v:.3f}" for v in row) for row in np.vstack([pts, pts[:1]])))
    t = T.get_track(str(p))
    assert t.name == "mine" and t.length_m > 500


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p[: len(p) // 2], "open loop"),
    (lambda p: p[:10], "at least"),
    (lambda p: np.where(np.arange(len(p))[:, None] == 7, np.nan, p), "NaN"),
    (lambda p: np.column_stack([p[:, :2], np.zeros(len(p)), p[:, 3]]), "row 1 .*half width"),
    (lambda p: np.where(np.arange(len(p))[:, None] == 9, -2.0, p), "row 10 .*half width"),
    (lambda p: p * 1e300, "beyond"),
    (lambda p: np.column_stack([p[:, :2] / 30.0, p[:, 2:] / 30.0 + 0.6]), r"(tighter than any motorcycle|tightest point is x=-?\d)"),
    (lambda p: np.vstack([p[:40], p[40:80][::-1], p[80:]]), "crosses itself"),
])
def test_malformed_tracks_get_clear_errors(tmp_path, mutate, message):
    pts = mutate(generate_track(seed=3))
    p = T.write_track_csv(pts, tmp_path / "bad.csv")
    with pytest.raises(TrackError, match=message):
        T.load_track(p)


def test_figure_eight_is_refused():
    th = np.linspace(0, 2 * np.pi, 300, endpoint=False)
    xy = np.stack([300 * np.sin(th), 150 * np.sin(2 * th)], axis=1)
    with pytest.raises(TrackError, match="crosses itself"):
        T.build_track(np.column_stack([xy, np.full((300, 2), 5.0)]), "eight")


@pytest.mark.parametrize("text, message", [
    ("", "no data rows"),
    ("x_m,y_m,w_tr_right_m,w_tr_left_m\n1,2,3\n", "expected 4 values"),
    ("1,2,3,abc\n", "not a number"),
    ("\x00\x01garbage\x02,,,\n", "no data rows"),
    ("x,y,r,l\n1,2,\x00\x01,4\n", "not a number"),
    (b"\xff\xfe\x00\x9c" * 200, "not a text CSV"),
])
def test_garbage_csv(tmp_path, text, message):
    p = tmp_path / "g.csv"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(TrackError, match=message):
        T.load_track(p)


def test_unknown_track_name_lists_builtins():
    with pytest.raises(TrackError, match="kestrel"):
        T.get_track("no-such-track")


def test_generated_tracks_have_real_circuit_features():
    """Hairpins, fast sweepers, long and short straights, varying widths."""
    radii, widths = [], []
    for seed in range(6):
        pts = generate_track(seed)
        t = T.build_track(pts, f"g{seed}")
        radii.append(1 / np.abs(t.line_kappa).max())
        widths.append(t.w_right + t.w_left)
        assert 2000 < t.length_m < 7000
    w = np.concatenate(widths)
    assert min(radii) < 30 and w.max() - w.min() > 2.0


@needs_real
@pytest.mark.parametrize("circuit", ["Catalunya", "BrandsHatch"])
def test_racing_line_follows_the_published_one(circuit):
    """Our minimum-curvature line against the database's, made with the same method."""
    from scipy.spatial import cKDTree

    t = T.load_track(REAL / f"{circuit}.csv")
    published = np.loadtxt(REAL / f"{circuit}_raceline.csv", delimiter=",", comments="#")
    dense = resample_closed(published, 0.5)
    dist, _ = cKDTree(dense).query(t.line_xy)
    assert dist.mean() < 1.5 and dist.max() < 8.0
    assert 1 / np.abs(t.line_kappa).max() > 5.0
