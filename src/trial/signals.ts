/**
 * SIGINT/SIGTERM as a stop request. One pair of process handlers, installed when the
 * first trial subscribes and removed when the last one unsubscribes, however many
 * trials a process opens.
 *
 * The first signal only tells the subscribers (each sets its `shouldStop()`): the
 * process keeps running so that the script can stop at its next check, report its final
 * metric and exit by itself. This is what NNI expects of a trial it stops (SIGINT, then
 * SIGKILL 5 s later). A second signal, when the script did not stop after the first,
 * takes the handlers away and re-sends itself, so Node's default applies (the process
 * ends) and a script that never checks `shouldStop()` can still be interrupted.
 */

export const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM"];

type Subscriber = (signal: NodeJS.Signals) => void;

const subscribers = new Set<Subscriber>();
let received: NodeJS.Signals | undefined;

function onSignal(signal: NodeJS.Signals): void {
  if (received !== undefined) {
    uninstall();
    process.kill(process.pid, signal);
    return;
  }
  received = signal;
  for (const subscriber of [...subscribers]) subscriber(signal);
}

function install(): void {
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
}

function uninstall(): void {
  for (const signal of STOP_SIGNALS) process.removeListener(signal, onSignal);
}

/**
 * Calls `subscriber` on the first SIGINT/SIGTERM (at once, when one already came while
 * handlers were installed); the returned function unsubscribes.
 */
export function onStopSignal(subscriber: Subscriber): () => void {
  if (subscribers.size === 0) install();
  subscribers.add(subscriber);
  if (received !== undefined) subscriber(received);
  return () => {
    if (!subscribers.delete(subscriber)) return;
    if (subscribers.size === 0) {
      uninstall();
      received = undefined;
    }
  };
}
