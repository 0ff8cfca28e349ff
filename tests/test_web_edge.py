"""The compose edge's asset cache, run for real: Debian's nginx with the compose
file's own configuration, in front of the session's gateway.

Only what compose-only networking needs is rewritten (the replicas' names and
Docker's resolver, the listening port, /tmp); every caching directive is the
file's own, so a broken cache there fails here.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from infra.devstack.managed import accepts_tcp, free_port, spawn, wait_ready
from infra.devstack.stack import REPO_ROOT

NGINX_CONF = REPO_ROOT / "infra" / "compose" / "nginx.conf"
GZIP = {"accept-encoding": "gzip, deflate, br"}


def local_config(gateway_port: int, port: int, workdir: Path) -> str:
    text = NGINX_CONF.read_text()
    replicas = re.compile(r"^\s*server gateway-\d:8000 .*;\n", re.MULTILINE)
    assert len(replicas.findall(text)) == 2, "the compose file's replicas moved"
    text = replicas.sub("", text, count=1)
    text = replicas.sub(f"        server 127.0.0.1:{gateway_port};\n", text)
    text = re.sub(r"^\s*resolver .*;\n", "", text, flags=re.MULTILINE)
    text = text.replace("listen 8000;", f"listen 127.0.0.1:{port};")
    return text.replace("/tmp/", f"{workdir}/")


@pytest.fixture(scope="module")
def edge(gateway_url: str, workdir: Path) -> Iterator[str]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed: run infra/bootstrap.sh (make install)")
    # Under the session's directory, which nginx's workers (user nobody) can enter.
    workdir = workdir / "edge"
    workdir.mkdir()
    port = free_port()
    gateway_port = urlsplit(gateway_url).port
    assert gateway_port is not None
    conf = workdir / "nginx.conf"
    conf.write_text(local_config(gateway_port, port, workdir))
    argv = [nginx, "-c", str(conf), "-p", str(workdir), "-g", "daemon off;"]
    process = spawn("nginx-edge", argv, workdir / "nginx.log")
    try:
        wait_ready(process, lambda: accepts_tcp(port), 10, f"listen on {port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def an_asset(http: httpx.Client) -> str:
    found = re.search(r'src="(/assets/app\.[0-9a-f]+\.js)"', http.get("/").text)
    assert found is not None
    return found.group(1)


def test_an_asset_is_a_miss_then_a_hit_for_each_encoding(edge: str) -> None:
    with httpx.Client(base_url=edge, timeout=10) as http:
        url = an_asset(http)
        first = http.get(url, headers=GZIP)
        assert first.status_code == 200
        assert first.headers["x-cache-status"] == "MISS"
        assert first.headers["content-encoding"] == "gzip"
        assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
        again = http.get(url, headers={"accept-encoding": "gzip"})  # another spelling, same copy
        assert again.headers["x-cache-status"] == "HIT"
        assert again.headers["content-encoding"] == "gzip"
        plain = http.get(url, headers={"accept-encoding": "identity"})
        assert plain.headers["x-cache-status"] == "MISS"
        assert "content-encoding" not in plain.headers
        assert (
            http.get(url, headers={"accept-encoding": "identity"}).headers["x-cache-status"]
            == "HIT"
        )
        assert plain.content == again.content  # httpx decoded the gzipped one


def test_a_missing_asset_is_never_cached_and_the_page_is_not_cached_at_the_edge(
    edge: str,
) -> None:
    with httpx.Client(base_url=edge, timeout=10) as http:
        for _ in range(2):
            missing = http.get("/assets/app.000000000000.js")
            assert missing.status_code == 404
            assert missing.headers["x-cache-status"] == "MISS"
        page = http.get("/")
        assert page.headers["cache-control"] == "no-cache"
        assert "x-cache-status" not in page.headers
        revalidated = http.get("/", headers={"if-none-match": page.headers["etag"]})
        assert revalidated.status_code == 304


def test_the_replicas_metrics_are_not_served_through_the_edge(edge: str, gateway_url: str) -> None:
    """Prometheus scrapes each replica directly; through the edge, anyone could read them."""
    assert httpx.get(f"{gateway_url}/metrics", timeout=10).status_code == 200
    # Whole URLs: a client given "//metrics" as a path would read "metrics" as a host.
    for path in ("/metrics", "/metrics/", "//metrics", "/metrics?x=1", "/%6detrics"):
        assert httpx.get(edge + path, timeout=10).status_code == 404, path
