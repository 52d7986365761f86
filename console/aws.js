// In AWS: staff sign in with the Cognito user pool's hosted UI (authorization code + PKCE), the identity
// pool exchanges the ID token for temporary IAM credentials of the staff role, and every API request is
// signed with SigV4 (service execute-api) for the API's own host: CloudFront forwards it to API Gateway
// under the same path, with the host header of the origin, so the signature holds. On the twin none of
// this runs: `merchandiser console` signs on the server side.
const encoder = new TextEncoder();
const TOKENS = "merchandiser.tokens";
const CREDENTIALS = "merchandiser.credentials";
const VERIFIER = "merchandiser.pkce";

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(text) {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

async function hmac(key, text) {
  const imported = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", imported, encoder.encode(text)));
}

// RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves !'()* alone).
function rfc3986(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function amzDate(now) {
  return now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

// The SigV4 headers of one request. `url` is absolute or a path; `host` is what API Gateway will see.
export async function signRequest({ method, url, host, body, headers, credentials, region, now = new Date() }) {
  const parsed = new URL(url, "https://placeholder.invalid");
  const stamp = amzDate(now);
  const day = stamp.slice(0, 8);
  const signed = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v).trim()]));
  signed.host = host;
  signed["x-amz-date"] = stamp;
  if (credentials.sessionToken) signed["x-amz-security-token"] = credentials.sessionToken;
  const names = Object.keys(signed).sort();
  // each segment as the browser sends it, encoded once more (SigV4 for services other than S3)
  const path = parsed.pathname.split("/").map(rfc3986).join("/") || "/";
  // the query as sent, each part decoded and encoded again the RFC 3986 way ("+" is not a space here)
  const query = parsed.search.slice(1).split("&").filter(Boolean)
    .map((pair) => (pair.includes("=") ? [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)] : [pair, ""]))
    .map(([key, value]) => [rfc3986(decodeURIComponent(key)), rfc3986(decodeURIComponent(value))])
    .sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : x > y ? 1 : 0) : a < b ? -1 : 1))
    .map(([key, value]) => `${key}=${value}`)
    .join("&");
  const canonical = [
    method.toUpperCase(), path, query,
    names.map((name) => `${name}:${signed[name]}\n`).join(""),
    names.join(";"),
    await sha256Hex(body || ""),
  ].join("\n");
  const scope = `${day}/${region}/execute-api/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", stamp, scope, await sha256Hex(canonical)].join("\n");
  let key = await hmac(encoder.encode(`AWS4${credentials.secretAccessKey}`), day);
  for (const part of [region, "execute-api", "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  const result = { ...headers, "X-Amz-Date": stamp };
  if (credentials.sessionToken) result["X-Amz-Security-Token"] = credentials.sessionToken;
  result.Authorization =
    `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`;
  return result;
}

// --- Cognito ---------------------------------------------------------------------------------------------
function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function redirectUri() {
  return `${location.origin}/`;
}

export async function signIn(cfg) {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  sessionStorage.setItem(VERIFIER, verifier);
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(verifier))));
  const query = new URLSearchParams({
    response_type: "code", client_id: cfg.userPoolClientId, redirect_uri: redirectUri(),
    scope: "openid email", code_challenge_method: "S256", code_challenge: challenge, state: location.hash,
  });
  location.assign(`${cfg.cognitoDomain}/oauth2/authorize?${query}`);
}

export function signOut(cfg) {
  sessionStorage.removeItem(TOKENS);
  sessionStorage.removeItem(CREDENTIALS);
  const query = new URLSearchParams({ client_id: cfg.userPoolClientId, logout_uri: redirectUri() });
  location.assign(`${cfg.cognitoDomain}/logout?${query}`);
}

async function cognitoIdentity(cfg, target, payload) {
  const response = await fetch(`https://cognito-identity.${cfg.region}.amazonaws.com/`, {
    method: "POST",
    headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `AWSCognitoIdentityService.${target}` },
    body: JSON.stringify(payload),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`Cognito identity pool ${target}: ${answer.message || response.status}`);
  return answer;
}

// Called once on load: finishes a sign-in that came back with ?code=, then says who is signed in (or null).
export async function session(cfg) {
  const params = new URLSearchParams(location.search);
  if (params.has("code")) {
    const response = await fetch(`${cfg.cognitoDomain}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code", client_id: cfg.userPoolClientId, code: params.get("code"),
        redirect_uri: redirectUri(), code_verifier: sessionStorage.getItem(VERIFIER) || "",
      }),
    });
    if (!response.ok) throw new Error(`sign-in could not be completed (${response.status})`);
    sessionStorage.setItem(TOKENS, JSON.stringify(await response.json()));
    history.replaceState(null, "", `/${params.get("state") || ""}`);
  }
  const tokens = JSON.parse(sessionStorage.getItem(TOKENS) || "null");
  if (!tokens) return null;
  const claims = JSON.parse(atob(tokens.id_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  if (claims.exp * 1000 < Date.now()) {
    sessionStorage.removeItem(TOKENS);
    return null;
  }
  return { email: claims.email || claims["cognito:username"], idToken: tokens.id_token };
}

async function credentials(cfg) {
  const cached = JSON.parse(sessionStorage.getItem(CREDENTIALS) || "null");
  if (cached && cached.expiration - 60_000 > Date.now()) return cached;
  const who = await session(cfg);
  if (!who) throw new Error("not signed in");
  const logins = { [`cognito-idp.${cfg.region}.amazonaws.com/${cfg.userPoolId}`]: who.idToken };
  const { IdentityId } = await cognitoIdentity(cfg, "GetId", { IdentityPoolId: cfg.identityPoolId, Logins: logins });
  const { Credentials } = await cognitoIdentity(cfg, "GetCredentialsForIdentity", { IdentityId, Logins: logins });
  const fresh = {
    accessKeyId: Credentials.AccessKeyId, secretAccessKey: Credentials.SecretKey,
    sessionToken: Credentials.SessionToken, expiration: Credentials.Expiration * 1000,
  };
  sessionStorage.setItem(CREDENTIALS, JSON.stringify(fresh));
  return fresh;
}

export async function signedHeaders(cfg, method, url, body, headers) {
  return signRequest({
    method, url, host: cfg.apiHost, body, headers, credentials: await credentials(cfg), region: cfg.region,
  });
}
