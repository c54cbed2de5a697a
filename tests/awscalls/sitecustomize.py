"""Record every AWS call a process of the test suite makes (for tests/aws/test_iam.py).

Each call is noted with the product package (web, ann, util) nearest it on the stack, so
calls the pytest process makes through the app (Flask's test client) count as the web's.

The suite puts this directory on PYTHONPATH and names a directory in GASTEST_AWS_CALLS
(see tests/awscalls/__init__.py); every Python process it starts then imports this module
at start-up. When (and only when) the process imports botocore's client, its API calls
and presigned URLs are appended, one JSON object per line, to `<dir>/<pid>.jsonl`, with
the process's command and GAS_* settings first. Product code is untouched: this is how
the suite watches the real processes (gunicorn, the annotator, run.py, the daemons).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import sys
from typing import Any

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PRODUCT = ("web", "ann", "util")
_KEPT = (
    "Bucket",
    "TableName",
    "IndexName",
    "QueueUrl",
    "QueueName",
    "TopicArn",
    "Source",
    "Namespace",
    "ClientMethod",
)
_files: dict[int, Any] = {}


def _caller() -> str | None:
    """The product package (web, ann, util) nearest the call on the stack, if any."""
    frame = sys._getframe(2)
    while frame is not None:
        relative = os.path.relpath(frame.f_code.co_filename, _ROOT)
        top = relative.split(os.sep, 1)[0]
        if top in _PRODUCT:
            return top
        frame = frame.f_back
    return None


def _write(record: dict[str, Any]) -> None:
    directory = os.environ.get("GASTEST_AWS_CALLS")
    if not directory:
        return
    record["caller"] = _caller()
    pid = os.getpid()
    if pid not in _files:  # the first call of this process (or of a fork)
        _files[pid] = open(os.path.join(directory, f"{pid}.jsonl"), "a", buffering=1)  # noqa: SIM115
        gas = {k: v for k, v in os.environ.items() if k.startswith("GAS_")}
        _files[pid].write(json.dumps({"argv": sys.argv, "settings": gas}) + "\n")
    _files[pid].write(json.dumps(record) + "\n")


def _summary(params: dict[str, Any]) -> dict[str, Any]:
    kept = {k: params[k] for k in _KEPT if isinstance(params.get(k), str)}
    if "VersionId" in params:
        kept["VersionId"] = True
    source = params.get("CopySource")
    if isinstance(source, dict):
        kept["CopySource"] = {"Bucket": source["Bucket"], "VersionId": "VersionId" in source}
    elif isinstance(source, str):
        kept["CopySource"] = {
            "Bucket": source.lstrip("/").split("/")[0],
            "VersionId": "versionId=" in source,
        }
    if isinstance(params.get("RequestItems"), dict):
        kept["RequestItems"] = sorted(params["RequestItems"])
    if "TransactItems" in params:
        kept["TransactItems"] = [
            [kind, body["TableName"]]
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    return kept


def _patch(client_module: Any) -> None:
    import botocore.signers as signers

    make_api_call = client_module.BaseClient._make_api_call

    def recorded_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        _write({"service": service, "operation": operation_name, "params": _summary(api_params)})
        return make_api_call(self, operation_name, api_params)

    client_module.BaseClient._make_api_call = recorded_call

    presign_url, presign_post = signers.generate_presigned_url, signers.generate_presigned_post

    def recorded_url(self: Any, ClientMethod: str, Params: Any = None, **kwargs: Any) -> Any:
        operation = self._PY_TO_OP_NAME[ClientMethod]
        _write(
            {
                "service": self.meta.service_model.service_name,
                "operation": operation,
                "params": _summary(Params or {}),
                "presigned": True,
            }
        )
        return presign_url(self, ClientMethod, Params, **kwargs)

    def recorded_post(self: Any, Bucket: str, Key: str, *args: Any, **kwargs: Any) -> Any:
        _write(
            {
                "service": "s3",
                "operation": "PutObject",
                "params": {"Bucket": Bucket, "Tagging": "tagging" in (kwargs.get("Fields") or {})},
                "presigned": True,
            }
        )
        return presign_post(self, Bucket, Key, *args, **kwargs)

    signers.generate_presigned_url = recorded_url
    signers.generate_presigned_post = recorded_post


class _PatchBotocoreClient(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "botocore.client":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def patch_this_process() -> None:
    """Record this process's calls too (botocore may be imported already)."""
    if "botocore.client" in sys.modules:
        _patch(sys.modules["botocore.client"])
    else:
        sys.meta_path.insert(0, _PatchBotocoreClient())


if __name__ == "sitecustomize" and os.environ.get("GASTEST_AWS_CALLS"):  # a child's start-up
    sys.meta_path.insert(0, _PatchBotocoreClient())
