// Sends queued submissions to POST /openrosa/submission, one at a time, oldest first.
//   201/202            accepted (or already received: the hub is idempotent on instanceID) -> "sent"
//   401                the token is no longer valid -> stop, ask to log in again; queue untouched
//   408, 429, 5xx,     the hub could not take it now -> stays queued, retried with backoff
//   network failure
//   409 and other 4xx  will not be accepted as sent -> "needs attention" with the hub's message
// Only one sync runs at a time across all tabs of the page (Web Locks), so an item is never
// in flight twice from this device.
import { submit } from './openrosa';
import * as store from './store';

const BASE_DELAY_MS = 5_000;
const MAX_DELAY_MS = 5 * 60_000;
const LOCK = 'srhub-collect-sync';

export function backoffDelay(attempts) {
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, attempts - 1));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

const retryable = (status) => status === 408 || status === 429 || status >= 500;

async function withLock(work) {
    if (navigator.locks) {
        return navigator.locks.request(LOCK, { ifAvailable: true }, (lock) => (lock ? work() : { skipped: true }));
    }
    return work();
}

// One pass over the queue. `force` ignores backoff times (the network just came back, or the
// person pressed "Send now"). Returns a summary; never throws for per-item failures.
export function syncOnce({ base, getSession, onUnauthorized, force = false }) {
    return withLock(async () => {
        const summary = { sent: 0, attention: 0, retry: 0, unauthorized: false, offline: false, lastError: '' };
        if (!navigator.onLine) {
            summary.offline = true;
            return summary;
        }
        const items = (await store.all('queue')).sort((a, b) => a.queuedAt - b.queuedAt);
        if (!items.length) return summary;
        const session = await getSession();
        if (!session) {
            summary.unauthorized = true;
            onUnauthorized();
            return summary;
        }
        const now = Date.now();
        for (const item of items) {
            if (!force && item.nextAttemptAt && item.nextAttemptAt > now) continue;
            let answer;
            try {
                answer = await submit(base, session.token, item);
            } catch {
                // No answer at all: the network is down. Keep it, stop this pass.
                await store.put('queue', { ...item, attempts: (item.attempts || 0) + 1, nextAttemptAt: Date.now() + backoffDelay((item.attempts || 0) + 1), lastError: 'network' });
                summary.retry += 1;
                summary.offline = true;
                summary.lastError = 'no answer from the hub';
                break;
            }
            const { status, message } = answer;
            if (status === 201 || status === 202 || status === 200) {
                await store.move('queue', 'sent', item.instanceId, { instanceId: item.instanceId, formId: item.formId, sentAt: Date.now(), status });
                summary.sent += 1;
            } else if (status === 401) {
                summary.unauthorized = true;
                onUnauthorized();
                break;
            } else if (retryable(status)) {
                const attempts = (item.attempts || 0) + 1;
                await store.put('queue', { ...item, attempts, nextAttemptAt: Date.now() + backoffDelay(attempts), lastError: `HTTP ${status}` });
                summary.retry += 1;
                summary.lastError = `the hub answered ${status}`;
                break; // the hub is struggling: do not hammer it with the rest of the queue
            } else {
                await store.move('queue', 'attention', item.instanceId, { ...item, status, message, refusedAt: Date.now() });
                summary.attention += 1;
            }
        }
        return summary;
    });
}

// Runs syncOnce on load, whenever the browser says it is online again, and every `intervalMs`.
export function startSyncLoop(options, { intervalMs = 30_000, onDone = () => {} } = {}) {
    const run = async (force) => {
        try {
            const summary = await syncOnce({ ...options, force });
            // Another pass held the lock (another tab, or this one still busy): look again soon.
            if (summary && summary.skipped) setTimeout(() => run(force), 1_000);
            onDone(summary);
        } catch (error) {
            // Storage trouble (quota, private mode): the counts say what is still queued.
            console.warn('collect: sync pass failed', error && error.name);
            onDone(null);
        }
    };
    window.addEventListener('online', () => run(true));
    const timer = setInterval(() => run(false), intervalMs);
    run(false);
    return { runNow: () => run(true), stop: () => clearInterval(timer) };
}
