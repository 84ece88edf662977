// Builds the offline intake page's assets into ../static (committed, shipped in the wheel):
//   collect.js   the page: enketo-core + enketo-transformer/web + our queue and sync (one IIFE)
//   sw.js        the service worker (kept out of the bundle: it must be its own script)
//   collect.css  enketo's "formhub" theme compiled from its SCSS, plus the page's own rules
//   build.json   a content hash the hub puts in asset URLs and the service worker's cache name
// Run through `make assets`; nothing calls it at test time.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import * as esbuild from 'esbuild';
import * as sass from 'sass';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(here, '..', 'static');
const modules = join(here, 'node_modules');
mkdirSync(out, { recursive: true });
const started = Date.now();

const common = {
    bundle: true,
    format: 'iife',
    minify: true,
    platform: 'browser',
    target: ['es2020'],
    legalComments: 'eof',
    logLevel: 'warning',
    // enketo-transformer's Node path can load the native libxslt; the web entry never does.
    external: ['libxslt'],
    loader: { '.svg': 'text' },
    // enketo-core reads its settings from `enketo/config`; ours keeps maps on the hub's origin.
    alias: { 'enketo/config': join(here, 'src', 'enketo-config.js') },
};
await esbuild.build({ ...common, entryPoints: [join(here, 'src', 'app.js')], outfile: join(out, 'collect.js') });
await esbuild.build({ ...common, entryPoints: [join(here, 'src', 'sw.js')], outfile: join(out, 'sw.js') });

// enketo-core ships SCSS only. One widget imports a dependency's CSS by the absolute path it
// has in enketo's monorepo (/packages/enketo-core/node_modules/...): map it to ours.
const monorepoPrefix = '/packages/enketo-core/node_modules/';
const theme = sass.compile(join(modules, 'enketo-core', 'src', 'sass', 'formhub', 'formhub.scss'), {
    style: 'compressed',
    quietDeps: true,
    silenceDeprecations: ['import', 'global-builtin', 'color-functions', 'slash-div'],
    importers: [
        {
            findFileUrl(url) {
                if (!url.startsWith(monorepoPrefix)) return null;
                return pathToFileURL(join(modules, url.slice(monorepoPrefix.length)));
            },
        },
    ],
});
const page = readFileSync(join(here, 'src', 'page.css'), 'utf8');
writeFileSync(join(out, 'collect.css'), `${theme.css}\n${page}`);

const hash = createHash('sha256');
for (const name of ['collect.js', 'sw.js', 'collect.css']) hash.update(readFileSync(join(out, name)));
const version = hash.digest('hex').slice(0, 16);
writeFileSync(join(out, 'build.json'), `${JSON.stringify({ version }, null, 2)}\n`);

const size = (name) => `${name} ${(readFileSync(join(out, name)).length / 1024).toFixed(0)} KiB`;
console.log(
    `built ${version} in ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
        ['collect.js', 'sw.js', 'collect.css'].map(size).join(', '),
);
