"""Archive: moves free users' results to cold storage after their retention window.

For now it runs the shared worker loop and logs each message it receives.
"""

from gas.worker import log_received, serve

if __name__ == "__main__":
    serve("archive", lambda s: s.archive_queue, log_received)
