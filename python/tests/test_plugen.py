"""The Python package against the CLI: same faces, same folders, same errors."""

import filecmp
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import plugen


def manifest(folder):
    with open(Path(folder) / "manifest.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def same_tree(a, b):
    """Every file of two folders, byte for byte (and no file only in one)."""
    a, b = Path(a), Path(b)
    names_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    names_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert names_a == names_b
    _, mismatch, errors = filecmp.cmpfiles(a, b, [str(n) for n in names_a], shallow=False)
    assert not mismatch and not errors, f"differ: {mismatch} {errors}"
    return len(names_a)


def test_plain_samples_are_the_cli_pngs(model, cli, tmp_path):
    cli("sample", "-n", 5, "--seed", 11, "--device", "cpu", "--out", tmp_path / "cli")
    s = model.sample(5, seed=11)
    assert s.images.shape == (5, model.image_size, model.image_size, 3)
    assert s.images.dtype == np.uint8 and s.latents.shape == (5, model.latent_dim)
    lines = manifest(tmp_path / "cli")
    assert [line["index"] for line in lines] == list(s.indices)
    for i, line in zip(s.indices, lines):
        png = (tmp_path / "cli" / line["image"]).read_bytes()
        assert plugen.png_bytes(s.images[i]) == png
        np.testing.assert_array_equal(s.latents[i], np.float32(line["latent"]))
    # Different seeds, different faces.
    assert not np.array_equal(model.sample(5, seed=12).images, s.images)


def test_judged_samples_are_the_cli_pngs_and_readings(model, cli, tmp_path):
    cli("sample", "-n", 8, "--seed", 3, "--set", "smile=on", "--balance", "male",
        "--device", "cpu", "--out", tmp_path / "cli")
    s = model.sample(8, seed=3, set={"smile": "on"}, balance=["male"])
    lines = manifest(tmp_path / "cli")
    assert [line["index"] for line in lines] == list(s.indices)
    on = next(a for a in model.attributes if a.name == "smile").calibrated["on"]
    for j, line in enumerate(lines):
        assert plugen.png_bytes(s.images[j]) == (tmp_path / "cli" / line["image"]).read_bytes()
        assert s.judged[j] == pytest.approx(line["judged"], abs=0, rel=1e-6)
        assert s.requested["smile"][j] == pytest.approx(on)
        assert s.requested["male"][j] == pytest.approx(line["requested"]["male"])
        # Redrawn until the judges read a smile (happy >= 0.5).
        assert s.judged[j]["happy"] >= 0.5
    assert np.isnan(s.requested["yaw"]).all()
    assert sum(c["written"] for c in s.cells) == len(s)


def test_fill_from_a_dataframe_is_the_cli_folder(model, cli, tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    # Smiling women rare: 4 rows against 30 in each other cell; some unknowns.
    rows = [(1, 0)] * 4 + [(0, 0)] * 30 + [(0, 1)] * 30 + [(1, 1)] * 30
    df = pd.DataFrame(rows, columns=["smile", "male"])
    df["file_name"] = [f"img{i:03}.jpg" for i in range(len(df))]
    df["age"] = rng.integers(18, 80, len(df))
    df.loc[len(df)] = [np.nan, 1, "img999.jpg", 40]
    csv = tmp_path / "have.csv"
    df.to_csv(csv, index=False)
    cli("fill", "--have", csv, "--by", "smile,male", "--total", 30, "--seed", 2,
        "--device", "cpu", "--out", tmp_path / "cli")
    meta = model.fill(df, by=["smile", "male"], total=30, seed=2, out=tmp_path / "py")
    assert same_tree(tmp_path / "cli", tmp_path / "py") > 30
    assert isinstance(meta, pd.DataFrame) and len(meta) == len(manifest(tmp_path / "py"))
    assert {"file_name", "smile", "male", "readout_smile"} <= set(meta.columns)
    report = meta.attrs["report"]
    assert report["unknown"] == 1
    assert sum(c["written"] for c in report["cells"]) == len(meta)
    # The rare cell got the most faces.
    rare = next(c for c in report["cells"] if c["before"] == 4)
    assert rare["written"] == max(c["written"] for c in report["cells"])
    # A CSV path works too, and a used folder is refused.
    again = model.fill(csv, by="smile,male", total=30, seed=2, out=tmp_path / "py2")
    assert len(again) == len(meta)
    with pytest.raises(ValueError, match="already holds a run"):
        model.fill(csv, by="smile,male", total=30, seed=2, out=tmp_path / "py")
    with pytest.raises(ValueError, match="no column 'male'"):
        model.fill(pd.DataFrame({"smile": [0, 1]}), by="smile,male", total=4, out=tmp_path / "g")
    assert not (tmp_path / "g").exists() or not any((tmp_path / "g").iterdir())


def test_edits_and_readouts_are_the_cli_ones(model, cli, tmp_path):
    z = model.sample(3, seed=5).latents
    np.save(tmp_path / "z.npy", z)
    cli("edit", "--latent", tmp_path / "z.npy", "--all", "--set", "smile=2", "--set", "yaw=-20",
        "--device", "cpu", "--out", tmp_path / "cli")
    e = model.edit(z, {"smile": 2, "yaw": -20})
    lines = manifest(tmp_path / "cli")
    for i, line in enumerate(lines):
        np.testing.assert_array_equal(e.latents[i], np.float32(line["latent"]))
        assert plugen.png_bytes(e.images[i]) == (tmp_path / "cli" / line["image"]).read_bytes()
    r = model.readout(e.latents)
    names = model.attribute_names
    assert r.shape == (3, len(names))
    np.testing.assert_allclose(r[:, names.index("smile")], 2.0, atol=1e-3)
    np.testing.assert_allclose(r[:, names.index("yaw")], -20.0, atol=1e-2)
    for i, line in enumerate(lines):
        np.testing.assert_allclose(r[i], [line["readout"][n] for n in names], rtol=1e-6, atol=1e-6)
    assert e.used == [{"smile": 2.0, "yaw": -20.0}] * 3
    # The minimal edit moves the latent less, and reaches the readout too.
    m = model.edit(z, {"smile": 2}, mode="minimal")
    np.testing.assert_allclose(model.readout(m.latents)[:, names.index("smile")], 2.0, atol=0.06)
    assert np.linalg.norm(m.latents - z, axis=1).mean() < np.linalg.norm(e.latents - z, axis=1).mean()


def test_until_judged_stops_where_the_cli_stops(model, cli, tmp_path):
    z = model.sample(4, seed=8, set={"smile": -1}).latents
    np.save(tmp_path / "z.npy", z)
    cli("edit", "--latent", tmp_path / "z.npy", "--all", "--set", "smile=3", "--until-judged",
        "--device", "cpu", "--out", tmp_path / "cli")
    e = model.edit(z, {"smile": 3}, until_judged=True)
    for i, line in enumerate(manifest(tmp_path / "cli")):
        np.testing.assert_array_equal(e.latents[i], np.float32(line["latent"]))
        assert e.used[i]["smile"] == pytest.approx(line["requested"]["smile"])
        assert 1.0 <= e.used[i]["smile"] <= 3.0


def test_judge_reads_what_the_cli_reads(model, cli, tmp_path):
    s = model.sample(4, seed=1)
    for i, im in enumerate(s.images):
        plugen.save_png(im, tmp_path / f"{i}.png")
    out = cli("judge", *[tmp_path / f"{i}.png" for i in range(4)])
    header, *rows = [line.split(",") for line in out.strip().splitlines()]
    readings = model.judge(s.images)
    assert len(readings) == 4
    for row, reading in zip(rows, readings):
        for name, text in zip(header[1:], row[1:]):
            key = name.removeprefix("judge_")
            if text and key in reading:
                assert reading[key] == pytest.approx(float(text), abs=1e-4)
    # A bigger photo is centre-cropped and resized as the CLI does.
    big = np.repeat(np.repeat(s.images[:1], 2, axis=1), 2, axis=2)
    assert set(plugen.judge(big)[0]) == set(readings[0])


def test_projection_matches_the_cli(model, cli, tmp_path):
    face = model.sample(1, seed=4).images
    plugen.save_png(face[0], tmp_path / "face.png")
    cli("project", tmp_path / "face.png", "--steps", 5, "--device", "cpu", "--out", tmp_path / "cli")
    p = model.project(face, steps=5)
    side = json.loads((tmp_path / "cli" / "face.json").read_text())
    np.testing.assert_allclose(p.latents[0], side["latent"], rtol=1e-5, atol=1e-5)
    assert p.mse[0] == pytest.approx(side["projection_mse"], rel=1e-4)
    assert p.mse[0] < 0.05


def test_bad_inputs_raise_clear_errors_and_the_model_goes_on(model, tmp_path):
    with pytest.raises(ValueError, match=r"expected shape \(n, 100\)"):
        model.render(np.zeros((2, 7)))
    with pytest.raises(ValueError, match="not finite"):
        model.readout(np.full((1, model.latent_dim), np.nan))
    with pytest.raises(ValueError, match="wrinkles"):
        model.sample(2, set={"wrinkles": 1})
    with pytest.raises(ValueError, match="glasses has no calibrated ends"):
        model.sample(2, set={"glasses": "on"})
    with pytest.raises(ValueError, match="edit mode"):
        model.edit(np.zeros((1, model.latent_dim)), {"smile": 1}, mode="sideways")
    with pytest.raises(ValueError, match="-n must be"):
        model.sample(0)
    with pytest.raises(ValueError, match=r"images: expected shape \(n, H, W, 3\)"):
        model.judge(np.zeros((64, 64)))
    with pytest.raises(ValueError, match="too small"):
        model.project(np.zeros((1, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        plugen.Model(tmp_path / "no-such-model")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        model.fill(tmp_path / "missing.csv", by="smile", total=4, out=tmp_path / "f")
    # Still works.
    assert model.sample(1, seed=0).images.shape[0] == 1


def test_progress_is_reported_and_the_gil_is_released(model):
    seen = []
    model.sample(70, seed=0, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (70, 70) and len(seen) >= 2
    # While a long sample runs in a thread, this thread keeps running: no
    # gap between its steps is anywhere near the sample's duration.
    gaps, last = [], time.perf_counter()
    worker = threading.Thread(target=model.sample, args=(512,), kwargs={"seed": 1})
    start = time.perf_counter()
    worker.start()
    while worker.is_alive():
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
        time.sleep(0.001)
    took = time.perf_counter() - start
    assert took > 0.2, f"sample(512) took {took:.3f} s: too short to tell"
    assert max(gaps) < took / 3, f"this thread stalled {max(gaps):.3f} s of {took:.3f} s"


def test_the_generator_alone(tmp_path, cli):
    bare = plugen.Model(no_plugin=True, device="cpu")
    assert bare.attributes == [] and bare.plugin is None
    cli("sample", "--no-plugin", "-n", 2, "--seed", 9, "--device", "cpu", "--out", tmp_path / "cli")
    s = bare.sample(2, seed=9)
    for i, line in enumerate(manifest(tmp_path / "cli")):
        assert plugen.png_bytes(s.images[i]) == (tmp_path / "cli" / line["image"]).read_bytes()
    with pytest.raises(ValueError, match="need a plugin"):
        bare.sample(2, set={"smile": 1})
