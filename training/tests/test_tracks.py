"""Track import, validation errors and derived geometry."""

from __future__ import annotations

import numpy as np
import pytest

from motocoach.errors import TrackError
from motocoach.training import tracks as T


def test_at_least_three_distinct_builtin_tracks():
    names = T.builtin_tracks()
    assert len(names) >= 3
    lengths = {round(T.get_track(n).length_m) for n in names}
    assert len(lengths) == len(names)


def test_builtin_csvs_are_what_the_generator_writes(tmp_path):
    written = T.write_builtin_tracks(tmp_path)
    for p in written:
        assert np.allclose(T.read_track_csv(p), T.read_track_csv(T.get_track(p.stem).source))


def test_geometry_is_derived():
    t = T.get_track("heron")
    assert t.kappa.shape == (t.n_grid,)
    # a closed loop turns through +-360 degrees in total
    assert abs(abs(t.kappa.sum() * T.GRID_M) - 2 * np.pi) < 0.3
    assert len(t.apex_s) >= 4 and np.all(np.diff(t.apex_s) > 0)
    assert np.all(t.dist_to_apex >= 0) and np.all(t.dist_to_apex < t.length_m)
    # the racing line stays on the track
    assert np.all(t.line_offset < t.w_right) and np.all(-t.line_offset < t.w_left)


def test_import_any_csv_with_header_and_closing_point(tmp_path):
    pts = T.generate_track(seed=5, radius_m=150, roughness=0.2)
    p = tmp_path / "mine.csv"
    p.write_text("x_m,y_m,w_tr_right_m,w_tr_left_m\n"
                 + "\n".join(",".join(f"{v:.3f}" for v in row) for row in np.vstack([pts, pts[:1]])))
    t = T.get_track(str(p))
    assert t.name == "mine" and t.length_m > 500


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p[: len(p) // 2], "open loop"),
    (lambda p: p[:10], "at least"),
    (lambda p: np.where(np.arange(len(p))[:, None] == 7, np.nan, p), "NaN"),
    (lambda p: np.column_stack([p[:, :2], np.zeros(len(p)), p[:, 3]]), "widths"),
    (lambda p: np.vstack([p[:40], p[40:80][::-1], p[80:]]), "crosses itself"),
])
def test_malformed_tracks_get_clear_errors(tmp_path, mutate, message):
    pts = mutate(T.generate_track(seed=3))
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
])
def test_garbage_csv(tmp_path, text, message):
    p = tmp_path / "g.csv"
    p.write_text(text)
    with pytest.raises(TrackError, match=message):
        T.load_track(p)


def test_unknown_track_name_lists_builtins():
    with pytest.raises(TrackError, match="kestrel"):
        T.get_track("no-such-track")
