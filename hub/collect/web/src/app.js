// The offline intake page: log in once, keep the chosen form on the device, fill households
// with the network off, queue them in IndexedDB and send them through the hub's OpenRosa
// endpoint when it comes back. No answer, name or identifier is ever written to the console.
import { Form } from 'enketo-core';
import events from 'enketo-core/src/js/event';
import { transform } from 'enketo-transformer/web';

import * as openrosa from './openrosa';
import * as store from './store';
import { startSyncLoop } from './sync';

const shell = document.getElementById('collect');
const BASE = shell.dataset.openrosa; // e.g. "/openrosa"
const SYNC_INTERVAL_MS = Number(shell.dataset.syncInterval || 30_000);
const $ = (id) => document.getElementById(id);

const state = { form: null, record: null, sync: null, needsLogin: false };

// --- status ------------------------------------------------------------------------------

function say(id, text, kind = 'info') {
    const el = $(id);
    el.textContent = text;
    el.dataset.kind = kind;
    el.hidden = !text;
}

async function refreshCounts() {
    const [queued, sent, attention] = await Promise.all([store.count('queue'), store.count('sent'), store.count('attention')]);
    $('count-queued').textContent = String(queued);
    $('count-sent').textContent = String(sent);
    $('count-attention').textContent = String(attention);
    await renderAttention();
}

async function renderAttention() {
    const list = $('attention-list');
    const items = (await store.all('attention')).sort((a, b) => a.refusedAt - b.refusedAt);
    list.replaceChildren(
        ...items.map((item) => {
            const li = document.createElement('li');
            li.dataset.instanceId = item.instanceId;
            const what = document.createElement('span');
            what.className = 'what';
            what.textContent = `${item.formTitle || item.formId}, queued ${new Date(item.queuedAt).toLocaleString()}`;
            const why = document.createElement('span');
            why.className = 'message';
            why.textContent = `${item.status}: ${item.message}`;
            const retry = document.createElement('button');
            retry.type = 'button';
            retry.className = 'retry';
            retry.textContent = 'Send again';
            retry.addEventListener('click', async () => {
                const { status, message, refusedAt, ...queued } = item;
                await store.move('attention', 'queue', item.instanceId, { ...queued, attempts: 0, nextAttemptAt: 0 });
                await refreshCounts();
                state.sync?.runNow();
            });
            const drop = document.createElement('button');
            drop.type = 'button';
            drop.className = 'discard';
            drop.textContent = 'Discard';
            drop.addEventListener('click', async () => {
                if (!window.confirm('Discard this household? It will not be sent.')) return;
                await store.remove('attention', item.instanceId);
                await refreshCounts();
            });
            li.append(what, why, retry, drop);
            return li;
        }),
    );
    $('attention').hidden = items.length === 0;
}

function showNetwork() {
    const online = navigator.onLine;
    $('net-status').textContent = online ? 'Online' : 'Offline: households are kept on this device';
    $('net-status').dataset.online = String(online);
}

// --- session -----------------------------------------------------------------------------

async function currentSession() {
    const session = await store.get('session', 'current');
    if (!session) return null;
    if (session.expires_at && Date.parse(session.expires_at) <= Date.now()) return null;
    return session;
}

function askLogin(reason) {
    state.needsLogin = true;
    $('login').hidden = false;
    say('login-reason', reason, 'warn');
}

async function onLogin(event) {
    event.preventDefault();
    const username = $('login-username').value.trim();
    const password = $('login-password').value;
    say('login-error', '');
    if (!navigator.onLine) {
        say('login-error', 'Logging in needs the network. Households already queued stay on this device.', 'error');
        return;
    }
    try {
        const session = await openrosa.login(BASE, username, password);
        await store.put('session', session, 'current');
        $('login-password').value = '';
        $('login').hidden = true;
        state.needsLogin = false;
        showUser(session);
        await loadForms(session);
        state.sync?.runNow();
    } catch (error) {
        const text = error instanceof openrosa.Unauthorized ? 'Wrong username or password, or this account may not collect.' : `Could not log in: ${error.message}`;
        say('login-error', text, 'error');
    }
}

async function onLogout() {
    const queued = await store.count('queue');
    if (queued && !window.confirm(`${queued} household(s) are not sent yet. They stay on this device. Log out?`)) return;
    await store.remove('session', 'current');
    showUser(null);
    askLogin('Logged out.');
}

function showUser(session) {
    $('user').hidden = !session;
    $('user-name').textContent = session ? session.username : '';
    $('user-areas').textContent = session && session.areas.length ? session.areas.join(', ') : '';
}

// --- forms -------------------------------------------------------------------------------

// Downloads and transforms the forms whose hash changed; keeps the others as cached.
async function loadForms(session) {
    if (typeof XSLTProcessor === 'undefined') {
        // enketo-transformer's web build uses the browser's XSLT engine to prepare forms.
        say('form-status', 'This browser cannot prepare new forms (no XSLT); forms already on this device still work.', 'error');
        return showForms();
    }
    let list;
    try {
        list = await openrosa.formList(BASE, session.token);
    } catch (error) {
        if (error instanceof openrosa.Unauthorized) askLogin('Your session has ended: log in again to get forms and send households.');
        else say('form-status', `Could not get the form list (${error.message}); using the forms on this device.`, 'warn');
        return showForms();
    }
    await store.put('meta', list, 'formList');
    for (const entry of list) {
        const cached = await store.get('forms', entry.formId);
        if (cached && cached.hash === entry.hash && cached.version === entry.version) continue;
        try {
            const xform = await openrosa.downloadForm(entry.downloadUrl, session.token);
            const result = await transform({ xform });
            await store.put('forms', { formId: entry.formId, title: entry.title, version: entry.version, hash: entry.hash, form: result.form, model: result.model, savedAt: Date.now() });
        } catch (error) {
            say('form-status', `Could not prepare form "${entry.title}": ${error.message}`, 'error');
        }
    }
    return showForms();
}

async function showForms() {
    const forms = (await store.all('forms')).sort((a, b) => a.title.localeCompare(b.title));
    const select = $('form-select');
    select.replaceChildren(
        ...forms.map((f) => {
            const option = document.createElement('option');
            option.value = f.formId;
            option.textContent = `${f.title} (version ${f.version})`;
            return option;
        }),
    );
    $('forms').hidden = forms.length === 0;
    if (!forms.length) {
        say('form-status', navigator.onLine ? 'No form is available to you yet.' : 'No form is stored on this device yet: connect once to get one.', 'warn');
        return;
    }
    const preferred = (await store.get('meta', 'currentForm')) || forms[0].formId;
    const chosen = forms.find((f) => f.formId === preferred) || forms[0];
    select.value = chosen.formId;
    if (!state.record || state.record.formId !== chosen.formId || state.record.hash !== chosen.hash) render(chosen);
}

function render(record) {
    const container = $('form-container');
    if (state.form) {
        state.form.resetView();
        state.form = null;
    }
    container.innerHTML = record.form; // produced by enketo-transformer from the hub's XForm
    const element = container.querySelector('form.or');
    state.form = new Form(element, { modelStr: record.model }, {});
    const errors = state.form.init();
    state.record = record;
    $('submit-household').disabled = false;
    say('form-status', errors.length ? `This form has ${errors.length} problem(s); some questions may not work.` : '', errors.length ? 'warn' : 'info');
}

// Starts a blank copy of the same form for the next household (a fresh instanceID).
function resetForm() {
    const element = state.form.resetView();
    state.form = new Form(element, { modelStr: state.record.model }, {});
    state.form.init();
    window.scrollTo(0, 0);
}

async function onSubmit() {
    if (!state.form) return;
    const button = $('submit-household');
    button.disabled = true;
    try {
        state.form.view.html.dispatchEvent(events.BeforeSave());
        const valid = await state.form.validate();
        if (!valid) {
            say('form-message', 'Some answers need attention (marked in red).', 'error');
            return;
        }
        const instanceId = state.form.instanceID;
        if (!instanceId) {
            say('form-message', 'This form has no instanceID; it cannot be sent safely.', 'error');
            return;
        }
        const xml = state.form.getDataStr();
        await store.put('queue', {
            instanceId,
            formId: state.record.formId,
            formTitle: state.record.title,
            formVersion: state.record.version,
            xml,
            queuedAt: Date.now(),
            attempts: 0,
            nextAttemptAt: 0,
        });
        resetForm();
        await refreshCounts();
        say('form-message', navigator.onLine ? 'Household saved; sending.' : 'Household saved on this device; it will be sent when the network is back.', 'ok');
        state.sync?.runNow();
    } finally {
        button.disabled = false;
    }
}

// --- start -------------------------------------------------------------------------------

async function registerServiceWorker() {
    if (!('serviceWorker' in navigator)) {
        say('sw-status', 'This browser cannot keep the page offline.', 'warn');
        return;
    }
    try {
        await navigator.serviceWorker.register(shell.dataset.serviceWorker, { scope: shell.dataset.scope });
        await navigator.serviceWorker.ready;
        shell.dataset.offlineReady = 'true';
    } catch (error) {
        say('sw-status', 'The page could not be made available offline.', 'warn');
        console.warn('collect: service worker registration failed', error && error.name);
    }
}

async function start() {
    showNetwork();
    window.addEventListener('online', showNetwork);
    window.addEventListener('offline', showNetwork);
    $('login-form').addEventListener('submit', onLogin);
    $('logout').addEventListener('click', onLogout);
    $('submit-household').addEventListener('click', onSubmit);
    $('form-container').addEventListener('submit', (event) => event.preventDefault());
    $('sync-now').addEventListener('click', () => state.sync?.runNow());
    $('form-select').addEventListener('change', async (event) => {
        await store.put('meta', event.target.value, 'currentForm');
        const record = await store.get('forms', event.target.value);
        if (record) render(record);
    });
    registerServiceWorker();

    const stored = await store.get('session', 'current');
    const session = await currentSession();
    showUser(stored || null);
    if (!stored) askLogin('Log in with your field account.');
    else if (!session) askLogin('Your session has ended: log in again to send households.');
    if (session && navigator.onLine) await loadForms(session);
    else await showForms();
    await refreshCounts();

    state.sync = startSyncLoop(
        {
            base: BASE,
            getSession: currentSession,
            onUnauthorized: () => askLogin('Your session has ended: log in again. Queued households stay on this device.'),
        },
        {
            intervalMs: SYNC_INTERVAL_MS,
            onDone: async (summary) => {
                await refreshCounts();
                if (summary && summary.attention) say('form-message', 'The hub refused a household: see "Needs attention".', 'error');
                if (summary && summary.retry) say('sync-status', `Not sent yet (${summary.lastError}); the page will try again by itself.`, 'warn');
                else if (summary && summary.sent) say('sync-status', `Sent ${summary.sent} household(s).`, 'ok');
                shell.dataset.lastSync = String(Date.now());
            },
        },
    );
    shell.dataset.ready = 'true';
}

start().catch((error) => {
    say('form-status', `The page could not start: ${error.message}`, 'error');
    console.error('collect: start failed', error && error.name);
});
