#!/bin/bash
# Boot a GAS host: run as root by the launch template's user data, from the release it
# checked out, as `config/aws/boot.sh <web|annotator|utils> <environment> <region>`.
#
# 1. the runtime requirements into the release's virtualenv (`make setup-runtime`), and the
#    annotation data on annotator hosts (`make data`);
# 2. /etc/gas/gas.env from the SSM parameter /<environment>/settings (no secrets);
# 3. on web hosts, /etc/gas/secrets.env (root only) from the SecureString parameters under
#    /<environment>/secrets/web/, read through the instance role; nothing is echoed;
# 4. /opt/gas/current -> this release, the systemd units of the tier enabled and started.
# Exits non-zero on any failure, so the instance signals failure and is replaced.
set -euo pipefail

tier=${1:?tier}
environment=${2:?environment}
export AWS_DEFAULT_REGION=${3:?region}
release=$(pwd)

case "$tier" in
  web) units=(gas-web) ;;
  annotator) units=(gas-annotator gas-drain) ;;
  utils) units=(gas-notify gas-archive gas-restore gas-thaw) ;;
  *) echo "boot.sh: unknown tier '$tier' (web, annotator or utils)" >&2; exit 2 ;;
esac

id gas >/dev/null 2>&1 || useradd --system --home-dir /var/lib/gas --shell /sbin/nologin gas

make setup-runtime PYTHON=python3.11
if [ "$tier" = annotator ]; then
  make data PYTHON=python3.11
fi

install -d -m 0755 /etc/gas
aws ssm get-parameter --name "/$environment/settings" \
  --query Parameter.Value --output text > /etc/gas/gas.env.new
mv /etc/gas/gas.env.new /etc/gas/gas.env

(
  umask 077
  : > /etc/gas/secrets.env.new
  if [ "$tier" = web ]; then
    aws ssm get-parameters-by-path --path "/$environment/secrets/web" --with-decryption \
      --query 'Parameters[].[Name,Value]' --output text |
      while IFS=$'\t' read -r name value; do
        printf '%s=%s\n' "${name##*/}" "$value"
      done > /etc/gas/secrets.env.new
  fi
  mv /etc/gas/secrets.env.new /etc/gas/secrets.env
)

# What the drain unit needs to complete the scale-in lifecycle hook.
printf 'GAS_DRAIN_GROUP=%s\nGAS_DRAIN_HOOK=drain\nAWS_DEFAULT_REGION=%s\n' \
  "$environment-annotator" "$AWS_DEFAULT_REGION" > /etc/gas/drain.env

ln -sfn "$release" /opt/gas/current
install -m 0644 config/systemd/*.service /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now "${units[@]}"

if [ "$tier" = web ]; then  # serving before the instance reports itself ready
  for _ in $(seq 120); do
    curl -fsS -o /dev/null http://127.0.0.1:8080/healthz && exit 0
    sleep 5
  done
  echo "boot.sh: the web tier did not answer /healthz within 10 minutes" >&2
  exit 1
fi
