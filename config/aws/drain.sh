#!/bin/bash
# gas-drain: on an annotator host, wait for the Auto Scaling group to start terminating
# this instance, then drain the annotator and let the group go on.
#
# The group's `drain` lifecycle hook holds a terminating instance in Terminating:Wait, and
# the instance metadata says so (autoscaling/target-lifecycle-state = Terminated). Stopping
# gas-annotator sends it SIGTERM (KillMode=mixed): it takes no new job, lets running jobs
# finish for GAS_SHUTDOWN_GRACE_S, and hands the rest back to the queue. Then the hook is
# completed. If this host dies first, the hook times out and the job is taken over when its
# heartbeat goes stale: nothing is lost either way.
set -euo pipefail
: "${GAS_DRAIN_GROUP:?}" "${GAS_DRAIN_HOOK:?}"
imds=http://169.254.169.254/latest

metadata() {
  local token
  token=$(curl -fsS -X PUT "$imds/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
  curl -fsS -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/$1"
}

instance=$(metadata instance-id)
until [ "$(metadata autoscaling/target-lifecycle-state 2>/dev/null || true)" = Terminated ]; do
  sleep 5
done
echo "scale-in: draining the annotator"
systemctl stop gas-annotator
aws autoscaling complete-lifecycle-action --auto-scaling-group-name "$GAS_DRAIN_GROUP" \
  --lifecycle-hook-name "$GAS_DRAIN_HOOK" --instance-id "$instance" \
  --lifecycle-action-result CONTINUE
echo "scale-in: drained; the group may terminate this instance"
