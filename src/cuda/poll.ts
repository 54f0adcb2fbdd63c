/**
 * How long a wait re-checks on every turn of the event loop before it falls back to 1 ms timers:
 * most decode steps finish within it, and a millisecond timer would add up to a millisecond of
 * latency to each of them.
 */
const EAGER_POLL_MS = 2;

/**
 * Resolves once `isDone()` returns true (rejects if it throws), asking again on later turns of
 * the event loop so that other work runs meanwhile. Used instead of a blocking driver wait, and
 * instead of koffi's async calls, which run on threads where no CUDA context is current.
 */
export function pollUntil(isDone: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const attempt = (): void => {
      let done: boolean;
      try {
        done = isDone();
      } catch (error) {
        reject(error);
        return;
      }
      if (done) resolve();
      else if (performance.now() - started < EAGER_POLL_MS) setImmediate(attempt);
      else setTimeout(attempt, 1);
    };
    attempt();
  });
}
