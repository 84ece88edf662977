// The page's durable state, in IndexedDB (never localStorage: the queue must survive reloads,
// and the token must not sit where every script on the origin reads it synchronously).
//   session    one record "current": {token, expires_at, username, areas}
//   forms      transformed forms by formId: {formId, version, title, hash, form, model}
//   queue      submissions waiting to be sent, by instanceId
//   attention  submissions the server refused (4xx), with its message, by instanceId
//   sent       instanceIds the server accepted (no answers kept), by instanceId
//   meta       small settings: "currentForm", "formList"
const DB_NAME = 'srhub-collect';
const DB_VERSION = 1;
const STORES = ['session', 'forms', 'queue', 'attention', 'sent', 'meta'];
const KEYS = { forms: 'formId', queue: 'instanceId', attention: 'instanceId', sent: 'instanceId' };

let opened = null;

function request(req) {
    return new Promise((resolve, reject) => {
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
    });
}

export function openDb() {
    if (!opened) {
        opened = new Promise((resolve, reject) => {
            const req = indexedDB.open(DB_NAME, DB_VERSION);
            req.onupgradeneeded = () => {
                const db = req.result;
                for (const name of STORES) {
                    if (!db.objectStoreNames.contains(name)) {
                        db.createObjectStore(name, KEYS[name] ? { keyPath: KEYS[name] } : undefined);
                    }
                }
            };
            req.onsuccess = () => resolve(req.result);
            req.onerror = () => reject(req.error);
        });
    }
    return opened;
}

// Runs `work(stores)` in one transaction over `names`; resolves when it has committed, so a
// submission moved from the queue to "sent" is never in both or in neither.
export async function transaction(names, mode, work) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
        const tx = db.transaction(names, mode);
        const stores = Object.fromEntries(names.map((n) => [n, tx.objectStore(n)]));
        let result;
        Promise.resolve(work(stores)).then((value) => {
            result = value;
        }, reject);
        tx.oncomplete = () => resolve(result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
    });
}

export const get = (store, key) => transaction([store], 'readonly', (s) => request(s[store].get(key)));
export const all = (store) => transaction([store], 'readonly', (s) => request(s[store].getAll()));
export const count = (store) => transaction([store], 'readonly', (s) => request(s[store].count()));
export const put = (store, value, key) =>
    transaction([store], 'readwrite', (s) => request(s[store].put(value, key)));
export const remove = (store, key) => transaction([store], 'readwrite', (s) => request(s[store].delete(key)));

// Moves one record between stores atomically (queue -> sent, queue -> attention, back).
export const move = (from, to, key, record) =>
    transaction([from, to], 'readwrite', (s) => {
        s[from].delete(key);
        s[to].put(record);
    });
