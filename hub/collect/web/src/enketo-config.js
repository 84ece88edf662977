// enketo-core's settings for the offline intake page (bundled in place of enketo-core's own
// `enketo/config`, see build.mjs). What differs from enketo-core's defaults, and why:
//   maps   one blank layer drawn from a data: URL. enketo-core's defaults fetch OpenStreetMap
//          tiles and a Google Maps script for its satellite layer: the page's CSP refuses both
//          (only the hub's own origin is allowed), nothing would load offline, and a field
//          worker's location must not be sent to a map provider. The geopoint widget keeps its
//          latitude / longitude / altitude / accuracy inputs and "detect current location".
//   googleApiKey  none: no Google service is ever called.
// The other keys are enketo-core's documented options, set to its default behaviour.
const BLANK_TILE = 'data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7';

export default {
    experimentalOptimizations: { computeAsync: false },
    excludeNonRelevant: false,
    maps: [{ name: 'offline', tiles: [BLANK_TILE], maxzoom: 24, attribution: '' }],
    googleApiKey: '',
    repeatOrdinals: false,
    validateContinuously: false,
    validatePage: true,
    swipePage: true,
    textMaxChars: 2000,
};
