"""The learner's main thread stops on a signal that the kernel delivered to another thread.
Python runs handlers only in the main thread; an untimed wait there is not interrupted when a
CUDA or gRPC thread takes the signal (seen on an H200 machine: the CUDA learner ignored SIGTERM)."""
import signal
import threading
import unittest

import helpers  # noqa: F401 - puts the learner on sys.path

from learner.__main__ import wait_for


class SignalTest(unittest.TestCase):
    def test_a_signal_taken_by_another_thread_still_ends_the_wait(self):
        stop, watchdog = threading.Event(), threading.Event()
        old = signal.signal(signal.SIGUSR1, lambda *_: stop.set())
        try:
            def helper_run():
                # The signal goes to this thread, not to the main thread, which by then (most
                # likely: the pause only orders the two) is blocked in the wait below.
                threading.Event().wait(0.3)
                signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)

            helper = threading.Thread(target=helper_run)

            def rescue():  # ends a wait that would otherwise hang forever
                if not stop.wait(10):
                    watchdog.set()
                    stop.set()

            threading.Thread(target=rescue, daemon=True).start()
            helper.start()
            wait_for(stop, poll_s=0.05)
            helper.join()
        finally:
            signal.signal(signal.SIGUSR1, old)
        self.assertFalse(watchdog.is_set(), "the handler never ran: the wait ended only by the watchdog")


if __name__ == "__main__":
    unittest.main()
