"""Restore: requests the retrieval of an upgraded user's archived results.

For now it runs the shared worker loop and logs each message it receives.
"""

from gas.worker import log_received, serve

if __name__ == "__main__":
    serve("restore", lambda s: s.restore_queue, log_received)
