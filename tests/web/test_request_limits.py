"""Request bodies are bounded per route, and refused from their declared length before a
byte is read: small by default, the user's plan on the API's upload route."""

from __future__ import annotations

import io

import pytest

from tests.web.test_routes import _token


class CountingBody(io.RawIOBase):
    """A request body of `size` bytes that counts what the server reads of it."""

    def __init__(self, size: int) -> None:
        self.size, self.position, self.read_bytes = size, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = self.size + offset if whence == io.SEEK_END else offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self.size - self.position))
        buffer[:n] = b"#" * n
        self.position += n
        self.read_bytes += n
        return n


def post_body(client, path: str, size: int, **headers: str):
    body = CountingBody(size)
    response = client.post(
        path,
        input_stream=body,
        content_length=size,
        content_type="multipart/form-data; boundary=x",
        headers=headers,
    )
    return response, body


def test_a_webhook_over_the_default_limit_is_refused_unread(app, web_settings):
    response, body = post_body(
        app.test_client(), "/stripe/webhook", web_settings.max_request_bytes + 1
    )
    assert response.status_code == 413
    assert body.read_bytes == 0


@pytest.mark.parametrize("path", ["/profile", "/profile/tokens", "/logout", "/subscribe"])
def test_no_form_route_takes_a_large_body(login, web_settings, path):
    ada = login()
    response, body = post_body(ada.client, path, web_settings.max_request_bytes + 1)
    assert response.status_code == 413
    assert body.read_bytes == 0


def test_an_api_upload_over_the_plan_is_refused_unread_with_the_plans_message(login):
    ada = login()
    _, token = _token(ada)
    response, body = post_body(
        ada.client, "/api/v1/jobs", 300 * 1024, Authorization=f"Bearer {token}"
    )
    assert response.status_code == 413
    assert response.json["error"] == (
        "Your upload is 300 KiB; the free plan accepts files up to 150 KiB. "
        "Subscribe to premium for larger files."
    )
    assert body.read_bytes == 0


def test_an_api_upload_without_a_token_is_refused_unread(app):
    response, body = post_body(app.test_client(), "/api/v1/jobs", 10 * 1024 * 1024)
    assert response.status_code == 401
    assert body.read_bytes == 0
