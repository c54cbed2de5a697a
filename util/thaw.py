"""Thaw: copies retrieved results back once their restore has finished.

For now it runs the shared worker loop and logs each message it receives.
"""

from gas.worker import log_received, serve

if __name__ == "__main__":
    serve("thaw", lambda s: s.thaw_queue, log_received)
