"""Annotator: runs each requested job (the annotation itself arrives with the job pipeline).

For now it runs the shared worker loop and logs each message it receives.
"""

from gas.worker import log_received, serve

if __name__ == "__main__":
    serve("annotator", lambda s: s.job_requests_queue, log_received)
