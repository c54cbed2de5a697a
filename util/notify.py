"""Notify: emails the user when a job ends (the email itself arrives with the job pipeline).

For now it runs the shared worker loop and logs each message it receives.
"""

from gas.worker import log_received, serve

if __name__ == "__main__":
    serve("notify", lambda s: s.job_results_queue, log_received)
