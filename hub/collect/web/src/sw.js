// The intake page's service worker: keeps the page shell, its script and its styles so the page
// opens with no network. Forms and queued households live in IndexedDB (the page's job); the
// OpenRosa calls themselves are never cached or answered from here.
const VERSION = new URL(self.location.href).searchParams.get('v') || 'dev';
const CACHE = `srhub-collect-${VERSION}`;
const SCOPE = new URL(self.registration.scope);
const SHELL = SCOPE.href; // ".../collect/"
const ASSETS = [SHELL, `${SCOPE.href}static/collect.js?v=${VERSION}`, `${SCOPE.href}static/collect.css?v=${VERSION}`];

self.addEventListener('install', (event) => {
    event.waitUntil(
        caches
            .open(CACHE)
            .then((cache) => cache.addAll(ASSETS.map((url) => new Request(url, { cache: 'reload' }))))
            .then(() => self.skipWaiting()),
    );
});

self.addEventListener('activate', (event) => {
    event.waitUntil(
        caches
            .keys()
            .then((keys) => Promise.all(keys.filter((k) => k.startsWith('srhub-collect-') && k !== CACHE).map((k) => caches.delete(k))))
            .then(() => self.clients.claim()),
    );
});

const SHELL_TIMEOUT_MS = 4_000; // a weak signal must not keep the team from the page

// The shell: the network when it answers soon enough (a new deploy is picked up), else the
// kept copy.
async function shell(request) {
    const cache = await caches.open(CACHE);
    let response = null;
    try {
        response = await Promise.race([
            fetch(request),
            new Promise((_, reject) => setTimeout(() => reject(new Error('slow network')), SHELL_TIMEOUT_MS)),
        ]);
    } catch {
        response = null; // offline or too slow
    }
    if (response && response.ok) {
        await cache.put(SHELL, response.clone());
        return response;
    }
    const kept = await cache.match(SHELL);
    return kept || response || Response.error();
}

// Versioned assets never change under one URL: the kept copy first.
async function asset(request) {
    const cache = await caches.open(CACHE);
    const kept = await cache.match(request);
    if (kept) return kept;
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
}

self.addEventListener('fetch', (event) => {
    const { request } = event;
    if (request.method !== 'GET') return;
    const url = new URL(request.url);
    if (url.origin !== SCOPE.origin || !url.pathname.startsWith(SCOPE.pathname)) return;
    if (request.mode === 'navigate' || url.href === SHELL) {
        event.respondWith(shell(request));
    } else if (url.pathname.startsWith(`${SCOPE.pathname}static/`)) {
        event.respondWith(asset(request));
    }
});
