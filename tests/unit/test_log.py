import io
import json
import logging

from gas.log import JsonFormatter, log_context


def _capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("tester"))
    logger = logging.getLogger("tests.log")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_each_line_is_one_json_object_with_job_and_user_context():
    logger, stream = _capture()
    with log_context(job_id="j-1", user_id="u-1", ignored=None):
        logger.info("claimed %s", "it", extra={"queue": "gas-job-requests"})
    logger.info("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "claimed it"
    assert first["level"] == "info"
    assert first["process"] == "tester"
    assert (first["job_id"], first["user_id"], first["queue"]) == ("j-1", "u-1", "gas-job-requests")
    assert "ignored" not in first
    assert "job_id" not in second


def test_an_exception_is_logged_on_the_same_line():
    logger, stream = _capture()
    try:
        raise ValueError("bad VCF")
    except ValueError:
        logger.exception("failed")
    (line,) = stream.getvalue().splitlines()
    assert "ValueError: bad VCF" in json.loads(line)["exc"]
