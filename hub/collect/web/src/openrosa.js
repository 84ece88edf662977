// The hub's OpenRosa endpoints as the page uses them: session login, form list, form download,
// submission. Every call carries X-OpenRosa-Version: 1.0; all but login carry the bearer token.
export const OPENROSA_VERSION = '1.0';
const XFORMS_LIST_NS = 'http://openrosa.org/xforms/xformsList';
const RESPONSE_NS = 'http://openrosa.org/http/response';
const MAX_MESSAGE = 500;

export class Unauthorized extends Error {}

export class HttpError extends Error {
    constructor(status, message) {
        super(message);
        this.status = status;
    }
}

function headers(token, extra = {}) {
    const h = { 'X-OpenRosa-Version': OPENROSA_VERSION, ...extra };
    if (token) h.Authorization = `Bearer ${token}`;
    return h;
}

// The person-readable message of an error answer: OpenRosaResponse <message>, a problem+json
// "detail", or the status line.
export async function answerMessage(response) {
    let text = '';
    try {
        text = await response.text();
    } catch {
        text = '';
    }
    const type = response.headers.get('Content-Type') || '';
    if (type.includes('json')) {
        try {
            const body = JSON.parse(text);
            if (body && (body.detail || body.title)) return String(body.detail || body.title).slice(0, MAX_MESSAGE);
        } catch {
            /* fall through */
        }
    }
    if (text.includes('OpenRosaResponse')) {
        const doc = new DOMParser().parseFromString(text, 'text/xml');
        const nodes = doc.getElementsByTagNameNS(RESPONSE_NS, 'message');
        const node = nodes.length ? nodes[0] : doc.getElementsByTagName('message')[0];
        if (node && node.textContent.trim()) return node.textContent.trim().slice(0, MAX_MESSAGE);
    }
    return `${response.status} ${response.statusText}`.trim();
}

export async function login(base, username, password) {
    const basic = btoa(unescape(encodeURIComponent(`${username}:${password}`)));
    const response = await fetch(`${base}/session`, {
        method: 'POST',
        headers: headers(null, { Authorization: `Basic ${basic}`, Accept: 'application/json' }),
        credentials: 'omit',
        cache: 'no-store',
    });
    if (response.status === 401 || response.status === 403) throw new Unauthorized(await answerMessage(response));
    if (!response.ok) throw new HttpError(response.status, await answerMessage(response));
    const body = await response.json();
    if (!body || typeof body.token !== 'string') throw new HttpError(response.status, 'The hub sent no token.');
    return {
        token: body.token,
        expires_at: body.expires_at || null,
        username: body.username || username,
        areas: Array.isArray(body.areas) ? body.areas : [],
    };
}

async function authorizedGet(url, token, accept) {
    const response = await fetch(url, { headers: headers(token, { Accept: accept }), credentials: 'omit', cache: 'no-store' });
    if (response.status === 401) throw new Unauthorized(await answerMessage(response));
    if (!response.ok) throw new HttpError(response.status, await answerMessage(response));
    return response.text();
}

function childText(element, name) {
    const found = element.getElementsByTagNameNS(XFORMS_LIST_NS, name);
    const node = found.length ? found[0] : element.getElementsByTagName(name)[0];
    return node ? node.textContent.trim() : '';
}

// The page talks only to the hub that served it (its CSP allows nothing else). A hub behind a
// TLS proxy may print its form URLs with the scheme or host it sees itself (http://, an inner
// name): such a URL is fetched from the page's own origin, at the same path.
export function sameOrigin(url) {
    const found = new URL(url, location.href);
    if (found.origin === location.origin) return found.href;
    return new URL(found.pathname + found.search, location.origin).href;
}

// The OpenRosa form list (xformsList): [{formId, title, version, hash, downloadUrl}].
export async function formList(base, token) {
    const text = await authorizedGet(`${base}/formList`, token, 'text/xml');
    const doc = new DOMParser().parseFromString(text, 'text/xml');
    if (doc.getElementsByTagName('parsererror').length) throw new HttpError(200, 'The form list is not XML.');
    let items = Array.from(doc.getElementsByTagNameNS(XFORMS_LIST_NS, 'xform'));
    if (!items.length) items = Array.from(doc.getElementsByTagName('xform'));
    return items
        .map((x) => ({
            formId: childText(x, 'formID'),
            title: childText(x, 'name') || childText(x, 'formID'),
            version: childText(x, 'version'),
            hash: childText(x, 'hash'),
            downloadUrl: sameOrigin(childText(x, 'downloadUrl')),
        }))
        .filter((f) => f.formId && f.downloadUrl);
}

export function downloadForm(url, token) {
    return authorizedGet(url, token, 'text/xml');
}

// Sends one queued submission. Resolves to {status, message}; rejects only when the network
// failed (nothing is known about whether the hub got it, so it stays queued).
export async function submit(base, token, item) {
    const body = new FormData();
    body.append('xml_submission_file', new Blob([item.xml], { type: 'text/xml' }), 'xml_submission_file.xml');
    const response = await fetch(`${base}/submission`, {
        method: 'POST',
        headers: headers(token),
        body,
        credentials: 'omit',
        cache: 'no-store',
    });
    const message = response.status === 204 ? '' : await answerMessage(response);
    return { status: response.status, message };
}
