import dataclasses
import re

import pytest

from gas.settings import (
    ROOT,
    Settings,
    SettingsError,
    env_name,
    example_env,
    load_settings,
    settings_from,
)
from tests.conftest import local_values


def test_local_defaults_point_every_client_at_the_emulator():
    settings = load_settings({})
    assert settings.env == "local"
    assert settings.aws_endpoint_url == "http://127.0.0.1:4566"
    assert settings.job_requests_queue == "gas-job-requests"
    assert settings.queue_max_receive_count == 5
    assert settings.worker_wait_s == 20


def test_the_environment_wins_over_the_defaults_file():
    settings = load_settings({"GAS_INPUTS_BUCKET": "my-inputs", "GAS_WORKER_WAIT_S": "5"})
    assert settings.inputs_bucket == "my-inputs"
    assert settings.worker_wait_s == 5


def test_aws_has_no_endpoint_override_and_needs_its_own_addresses():
    settings = load_settings(
        {"GAS_ENV": "aws", "GAS_WEB_URL": "https://gas.example.org", "GAS_SES_SENDER": "g@x.org"}
    )
    assert settings.aws_endpoint_url == ""
    with pytest.raises(SettingsError, match="GAS_WEB_URL is required"):
        load_settings({"GAS_ENV": "aws", "GAS_SES_SENDER": "g@x.org"})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"GAS_WORKER_WAIT_S": "soon"}, "GAS_WORKER_WAIT_S must be an integer; got 'soon'"),
        ({"GAS_WORKER_WAIT_S": "30"}, "GAS_WORKER_WAIT_S must be 0-20"),
        ({"GAS_WORKER_BATCH_SIZE": "11"}, "GAS_WORKER_BATCH_SIZE must be 1-10"),
        ({"GAS_LOG_LEVEL": "LOUD"}, "GAS_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"),
        ({"GAS_AWS_ENDPOINT_URL": ""}, "GAS_AWS_ENDPOINT_URL is required when GAS_ENV=local"),
        ({"GAS_AWS_ENDPOINT_URL": "localhost:4566"}, "GAS_AWS_ENDPOINT_URL must be an http"),
        ({"GAS_WEB_BIND": "8080"}, "GAS_WEB_BIND must be host:port"),
        ({"GAS_SES_SENDER": "nobody"}, "GAS_SES_SENDER must be an email address"),
    ],
)
def test_a_malformed_setting_is_refused_naming_the_variable(values, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        settings_from(local_values(**values))


def test_an_unknown_environment_is_refused():
    with pytest.raises(SettingsError, match="GAS_ENV must be one of local, aws"):
        load_settings({"GAS_ENV": "prod"})


def test_env_example_documents_every_setting():
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^# (GAS_[A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert documented == {env_name(f.name) for f in dataclasses.fields(Settings)}
    assert example == example_env(), "regenerate: python -m gas env-example > .env.example"


AWS = {"GAS_ENV": "aws", "GAS_WEB_URL": "https://gas.example.org", "GAS_SES_SENDER": "g@x.org"}
DEVELOPMENT_WIRING = {
    "the stand-ins": ({"GAS_STANDINS_URL": "http://127.0.0.1:4567"}, "GAS_STANDINS_URL"),
    "the Stripe stand-in": ({"GAS_STRIPE_API_BASE": "http://127.0.0.1:4567"},
                            "GAS_STRIPE_API_BASE"),
    "the Globus stand-in": ({"GAS_GLOBUS_AUTH_URL": "http://127.0.0.1:4567"},
                            "GAS_GLOBUS_AUTH_URL"),
    "the committed client id": ({"GAS_GLOBUS_CLIENT_ID": "gas-local-client"},
                                "GAS_GLOBUS_CLIENT_ID"),
    "the committed client secret": ({"GAS_GLOBUS_CLIENT_SECRET": "gas-local-client-secret"},
                                    "GAS_GLOBUS_CLIENT_SECRET"),
    "the committed Stripe key": ({"GAS_STRIPE_API_KEY": "sk_test_gas_local_standin"},
                                 "GAS_STRIPE_API_KEY"),
    "the committed webhook secret": ({"GAS_STRIPE_WEBHOOK_SECRET": "whsec_gas_local_standin"},
                                     "GAS_STRIPE_WEBHOOK_SECRET"),
    "a plain-HTTP origin": ({"GAS_WEB_URL": "http://gas.example.org"}, "GAS_WEB_URL"),
    "a short secret key": ({"GAS_SECRET_KEY": "x" * 31}, "GAS_SECRET_KEY"),
}  # fmt: skip


@pytest.mark.parametrize(("change", "named"), DEVELOPMENT_WIRING.values(),
                         ids=DEVELOPMENT_WIRING.keys())  # fmt: skip
def test_production_refuses_development_wiring_naming_the_setting(change, named):
    with pytest.raises(SettingsError) as refused:
        load_settings({**AWS, **change})
    assert str(refused.value).startswith(named) and "\n" not in str(refused.value)


def test_production_accepts_real_values():
    real = {"GAS_GLOBUS_CLIENT_ID": "0a1b2c", "GAS_GLOBUS_CLIENT_SECRET": "s" * 40,
            "GAS_STRIPE_API_KEY": "sk_live_x", "GAS_SECRET_KEY": "k" * 32}  # fmt: skip
    assert load_settings({**AWS, **real}).env == "aws"
