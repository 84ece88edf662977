// Writes the OpenCRVS webhook signature test vectors (opencrvs_signature_vectors.json).
//
// Computed with Node's own crypto and encodeURIComponent, i.e. the primitives OpenCRVS's
// webhooks service uses: hex HMAC-<alg>(secret, "<alg>:" + encodeURIComponent(rawBody)),
// sent as "X-Hub-Signature: <alg>=<hex>". Regenerate with:
//   node tests/unit/data/opencrvs_signature_vectors.mjs > tests/unit/data/opencrvs_signature_vectors.json
import { createHmac } from 'node:crypto'

const delivery = JSON.stringify({
  timestamp: '2025-01-10T08:15:00.000Z',
  id: '9f4ad2f0-2b8e-4c53-8f55-3f0c2b1d7e11',
  event: {
    hub: { topic: 'BIRTH_REGISTERED' },
    context: [{
      resourceType: 'Bundle',
      type: 'document',
      entry: [{ resource: { resourceType: 'Patient', name: [{ given: ['Chloé', 'Nǎomí'], family: "Ñúñez-O'Brien" }] } }]
    }]
  }
})

const bodies = [
  delivery,
  '',
  'plain ascii with spaces',
  "!'()*~-_.",
  '{\n  "pretty": "printed",\n\t"tab": true\r\n}',
  '#$&+,/:;=?@[]%"\\ <>^`{|}',
  '王秀英 محمد देवनागरी Ελληνικά',
  'emoji 👩‍👧 😀 𝄞',
  'nul \u0000 bom \ufeff line-sep \u2028 del \u007f nbsp \u00a0',
  JSON.stringify({ name: 'José Ngozi Müller', note: "it's (mostly) *fine* ~ ok!" })
]
const secrets = ['1c2b9e6f-4d1a-4b7e-9c2d-0a1b2c3d4e5f', 'clé-secrète ✓']
const vectors = []
for (const body of bodies) {
  for (const secret of secrets) {
    for (const alg of ['sha256', 'sha1']) {
      const hmac = createHmac(alg, secret)
      hmac.update(`${alg}:${encodeURIComponent(body)}`)
      vectors.push({ alg, secret, body, encoded: encodeURIComponent(body), header: `${alg}=${hmac.digest('hex')}` })
    }
  }
}
process.stdout.write(JSON.stringify({ generator: 'node ' + process.version, vectors }, null, 1) + '\n')
