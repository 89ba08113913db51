// "How to verify" page: the JWKS URL of this deployment, the current signing key id,
// and README's receiver snippets (JWT and Standard Webhooks; Python and Node) adapted
// to this deployment's URL, each with a Copy button.

import { api, apiBase } from './api.js';
import { h, fill, fields, pageHead, spinner, codeBlock, copyButton } from './dom.js';

const pyJwt = (base) => `import hashlib
import json

import jwt

HOOKLINE_URL = "${base}"
MY_WEBHOOK_ID = "wh_..."  # your webhook's id

jwks = jwt.PyJWKClient(f"{HOOKLINE_URL}/jwks/webhooks")

def verify(body: bytes, headers: dict) -> dict:
    token = headers["x-webhook-signature"]
    key = jwks.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["RS256"], options={"require": ["exp", "iat"]})
    if claims["payload-checksum"] != hashlib.sha256(body).hexdigest():
        raise ValueError("the body is not the one that was signed")
    payload = json.loads(body)
    if payload["webhook"]["id"] != MY_WEBHOOK_ID:
        raise ValueError("this delivery was meant for another endpoint")
    return payload
`;

const nodeJwt = (base) => `import { createHash } from "node:crypto";
import { createRemoteJWKSet, jwtVerify } from "jose";

const HOOKLINE_URL = "${base}";
const MY_WEBHOOK_ID = "wh_..."; // your webhook's id

const jwks = createRemoteJWKSet(new URL(\`\${HOOKLINE_URL}/jwks/webhooks\`));

async function verify(body, headers) {
  const token = headers["x-webhook-signature"];
  const { payload: claims } = await jwtVerify(token, jwks, { algorithms: ["RS256"], requiredClaims: ["exp", "iat"] });
  if (claims["payload-checksum"] !== createHash("sha256").update(body).digest("hex")) {
    throw new Error("the body is not the one that was signed");
  }
  const payload = JSON.parse(body);
  if (payload.webhook.id !== MY_WEBHOOK_ID) throw new Error("this delivery was meant for another endpoint");
  return payload;
}
`;

const pyStd = `from standardwebhooks.webhooks import Webhook

WEBHOOK_SECRET = "whsec_..."  # shown once when the scheme was turned on or the secret rotated
MY_WEBHOOK_ID = "wh_..."      # your webhook's id

def verify(body: bytes, headers: dict) -> dict:
    payload = Webhook(WEBHOOK_SECRET).verify(body, headers)  # raises if the signature or timestamp is wrong
    if payload["webhook"]["id"] != MY_WEBHOOK_ID:
        raise ValueError("this delivery was meant for another endpoint")
    return payload
`;

const nodeStd = `import { Webhook } from "standardwebhooks";

const WEBHOOK_SECRET = "whsec_..."; // shown once when the scheme was turned on or the secret rotated
const MY_WEBHOOK_ID = "wh_...";     // your webhook's id

async function verify(body, headers) {
  const payload = new Webhook(WEBHOOK_SECRET).verify(body, headers); // throws if the signature or timestamp is wrong
  if (payload.webhook.id !== MY_WEBHOOK_ID) throw new Error("this delivery was meant for another endpoint");
  return payload;
}
`;

function copyable(text, label) {
  return h('span', { class: 'copyable' }, h('code', { class: 'mono wrap', text }), copyButton(text, label));
}

export async function verifyPage(page, ctx) {
  fill(page, pageHead('How to verify'), spinner());
  const me = await api('GET', '/me');
  const base = `${window.location.origin}${apiBase}`;
  const signing = (me && me.signing) || {};
  const jwksUrl = signing.jwks_url ? `${base}${signing.jwks_url}` : `${base}/jwks/webhooks`;
  fill(page,
    pageHead('How to verify', { sub: 'Check that each delivery really comes from us and was not changed on the way, before acting on it.' }),
    h('section', { class: 'panel', 'aria-labelledby': 'keys-h' },
      h('h2', { id: 'keys-h', text: 'Signing keys' }),
      fields([
        ['JWKS URL', copyable(jwksUrl, 'JWKS URL')],
        ['Current key id (kid)', signing.current_key_id ? copyable(signing.current_key_id, 'key id') : h('span', { class: 'muted', text: 'Unknown' })],
      ])),
    h('section', { class: 'panel', 'aria-labelledby': 'jwt-h' },
      h('h2', { id: 'jwt-h', text: 'JWT signature (X-Webhook-Signature)' }),
      h('ol', { class: 'steps' },
        h('li', { text: 'Fetch the JWKS above (cache it; fetch it again when a kid is unknown).' }),
        h('li', { text: 'Verify the JWT with the key whose kid matches, algorithm RS256, and check exp.' }),
        h('li', { text: 'Compute the SHA-256 of the exact request body bytes, hex-encoded, and compare it with the payload-checksum claim.' }),
        h('li', { text: 'Check that webhook.id in the body is your own webhook.' })),
      codeBlock(pyJwt(base), 'Python (PyJWT: pip install "PyJWT[crypto]")'),
      codeBlock(nodeJwt(base), 'Node (jose: npm install jose)')),
    h('section', { class: 'panel', 'aria-labelledby': 'std-h' },
      h('h2', { id: 'std-h', text: 'Standard Webhooks signature' }),
      h('p', { text: 'Webhooks with the Standard Webhooks scheme carry webhook-id, webhook-timestamp and webhook-signature (HMAC-SHA256 under the webhook\'s secret). Verify them with the standardwebhooks (or svix) library; it refuses timestamps more than 5 minutes from your clock.' }),
      codeBlock(pyStd, 'Python (pip install standardwebhooks)'),
      codeBlock(nodeStd, 'Node (npm install standardwebhooks)')));
}
