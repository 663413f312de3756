"""dreamreel serve is safe by default: each item of the issue's security list is a test here. No model
is needed for most (the worker's loader is never called until a job runs)."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from dreamreel.serve.app import Settings, create_app


def client_for(out: Path, **settings) -> TestClient:
    def no_model():
        raise AssertionError("these tests load no model")

    app = create_app(Settings(out=out, model="tiny", load=no_model, **settings))
    return TestClient(app, base_url="http://127.0.0.1:7860")  # not started: no worker, no model


def test_binds_loopback_by_default_and_listen_needs_a_password(run_cli, monkeypatch):
    calls = []
    monkeypatch.setattr("dreamreel.serve.app.run_server", lambda settings, port: calls.append({"host": settings.host}))
    monkeypatch.delenv("DREAMREEL_PASSWORD", raising=False)
    code, _, err = run_cli(["serve", "--model", "tiny", "--listen"])
    assert code == 2 and calls == []
    assert err.count("\n") == 1 and "--listen" in err and "--password" in err
    code, _, err = run_cli(["serve", "--model", "tiny", "--host", "0.0.0.0"])  # the network by another name
    assert code == 2 and calls == [] and "--password" in err
    code, _, err = run_cli(["serve", "--model", "tiny", "--port", 7861])
    assert code == 0 and calls[-1]["host"] == "127.0.0.1", err
    code, _, _ = run_cli(["serve", "--model", "tiny", "--listen", "--password", "s3cret"])
    assert code == 0 and calls[-1]["host"] == "0.0.0.0"


def test_password_guards_every_request(tmp_path):
    client = client_for(tmp_path, password="s3cret")
    for path in ("/", "/api/jobs", "/api/gallery", "/sdapi/v1/sd-models", "/files/x.png", "/api/events"):
        assert client.get(path).status_code == 401, path
    assert client.post("/api/jobs", json={"job": "txt2img"}).status_code == 401
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 401 and 'name="password"' in page.text  # the page has a login
    assert client.get("/api/forms", auth=("anyone", "wrong")).status_code == 401
    assert client.get("/api/forms", auth=("anyone", "s3cret")).status_code == 200  # A1111 clients: Basic
    assert client.get("/api/forms", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.post("/login", data={"password": "nope"}).status_code == 401
    login = client.post("/login", data={"password": "s3cret"}, follow_redirects=False)
    assert login.status_code == 303
    assert client.get("/api/forms").status_code == 200  # the login cookie


def test_host_allow_list_refuses_rebound_names(tmp_path):
    client = client_for(tmp_path)
    assert client.get("/api/forms").status_code == 200
    assert client.get("/api/forms", headers={"Host": "localhost:7860"}).status_code == 200
    assert client.get("/api/forms", headers={"Host": "evil.example:7860"}).status_code == 400
    allowed = client_for(tmp_path, allow_hosts=("studio.lan",))
    assert allowed.get("/api/forms", headers={"Host": "studio.lan:7860"}).status_code == 200


def test_origin_check_on_state_changing_requests(tmp_path):
    client = client_for(tmp_path)
    body = {"job": "txt2img", "fields": {"prompt": "x", "width": "33"}}
    cross = client.post("/api/jobs", json=body, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    rebinding = client.post("/api/jobs", json=body, headers={"Origin": "http://127.0.0.1:9999"})
    assert rebinding.status_code == 403
    assert client.post("/sdapi/v1/interrupt", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    same = client.post("/api/jobs", json=body, headers={"Origin": "http://127.0.0.1:7860"})
    assert same.status_code == 400 and same.json()["field"] == "width"  # reached the checks
    assert client.get("/api/forms", headers={"Origin": "http://evil.example"}).status_code == 200  # reads are not state changes


def test_files_are_confined_to_the_output_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "ok.png").write_bytes(b"picture")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", out / "link.png")
    os.symlink(tmp_path, out / "linkdir")
    (out / ".dreamreel").mkdir()
    (out / ".dreamreel" / "q.json").write_text("{}")
    client = client_for(out)
    assert client.get("/files/ok.png").content == b"picture"
    for path in ("/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/..%2fsecret.txt", "/files/link.png",
                 "/files/linkdir/secret.txt", "/files//etc/hostname", "/files/.dreamreel/q.json",
                 "/api/info/../secret.txt"):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 404 and b"secret" not in response.content, path
    from dreamreel.serve.app import confined  # what the routes call, without the client's URL normalising

    assert confined(out, "ok.png") == (out / "ok.png").resolve()
    for relative in ("../secret.txt", "link.png", "linkdir/secret.txt", str(tmp_path / "secret.txt"), ".dreamreel/q.json"):
        assert confined(out, relative) is None, relative


def test_uploads_are_limited_and_checked_like_the_cli(tmp_path, sample_picture):
    client = client_for(tmp_path, max_upload_mb=1)
    good = client.post("/api/upload", files={"file": ("sketch.png", sample_picture.read_bytes(), "image/png")})
    assert good.status_code == 200 and (tmp_path / good.json()["path"]).read_bytes() == sample_picture.read_bytes()
    big = client.post("/api/upload", files={"file": ("big.png", b"\0" * (2 << 20), "image/png")})
    assert big.status_code == 413
    junk = client.post("/api/upload", files={"file": ("x.png", b"not a picture", "image/png")})
    assert junk.status_code == 400 and "neither a picture nor a video" in junk.json()["error"]
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == [Path(good.json()["path"]).name]


def test_schedules_are_never_evaluated_as_code(tmp_path):
    client = client_for(tmp_path)
    canary = tmp_path / "canary"
    attack = f"0:(__import__('pathlib').Path('{canary}').touch())"
    response = client.post("/api/jobs", json={"job": "zoom", "fields": {"prompt": "x", "zoom": attack}})
    assert response.status_code == 400 and response.json()["field"] == "zoom"
    assert not canary.exists()
    png = client.post("/sdapi/v1/png-info", json={"image": base64.b64encode(b"junk").decode()})
    assert png.status_code == 400


def test_a_model_that_does_not_load_fails_jobs_in_one_line(tmp_path):
    def broken():
        raise RuntimeError("weights are damaged\nsecond line")

    app = create_app(Settings(out=tmp_path, model="tiny", load=broken))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        while not app.state.queue.model_error:
            time.sleep(0.01)
        response = client.post("/api/jobs", json={"job": "txt2img", "fields": {"prompt": "x", "width": "32"}})
        assert response.status_code == 400 and response.json()["error"].endswith("weights are damaged")
        assert client.get("/api/status").json()["error"] == "weights are damaged"
