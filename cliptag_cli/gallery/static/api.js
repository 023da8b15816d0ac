// The gallery server's routes: /api/... is the cliptag API (signed by the server), /img/... the pictures.

export const enc = encodeURIComponent;

export class ApiError extends Error {
  constructor(status, body) {
    // The API's errors are {"error": ...}; API Gateway's own are {"message": ...}.
    super(body.error || body.message || `the server answered HTTP ${status}`);
    this.status = status;
    this.suggestions = Array.isArray(body.suggestions) ? body.suggestions : [];
  }
}

export async function api(path, params = {}) {
  const url = new URL(`/api${path}`, location.origin);
  for (const [name, value] of Object.entries(params)) {
    for (const one of Array.isArray(value) ? value : [value]) { // a list: the parameter repeated
      if (one !== undefined && one !== null && one !== '') url.searchParams.append(name, one);
    }
  }
  let response;
  try {
    response = await fetch(url, { headers: { Accept: 'application/json' } });
  } catch (err) {
    throw new ApiError(0, { error: `the gallery server did not answer (${err.message}): is cliptag gallery running?` });
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// Confirm (PUT) or reject (DELETE) a tag of an image: the server passes it on signed.
export async function decide(key, tag, confirm) {
  let response;
  try {
    response = await fetch(`/api/images/${enc(key)}/tags/${enc(tag)}`, {
      method: confirm ? 'PUT' : 'DELETE', headers: { Accept: 'application/json' },
    });
  } catch (err) {
    throw new ApiError(0, { error: `the gallery server did not answer (${err.message}): is cliptag gallery running?` });
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// Teach a tag from example photos (the gallery server fits it; "apply" keeps it and re-tags).
export async function teachTag(body) {
  let response;
  try {
    response = await fetch('/teach', {
      method: 'POST', headers: { Accept: 'application/json', 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, { error: `the gallery server did not answer (${err.message}): is cliptag gallery running?` });
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

export const paths = {
  tag: (name) => `/tags/${enc(name)}/images`,
  category: (name) => `/categories/${enc(name)}/images`,
  image: (key, what) => `/images/${enc(key)}/${what}`,
};

// Pictures: "grid" (320 px), "large" (1280 px), "original" (the object's own bytes).
export const picture = (rendition, key) => `/img/${rendition}/${enc(key)}`;

export const href = {
  tag: (name) => `#/tag/${enc(name)}`,
  category: (name) => `#/category/${enc(name)}`,
  image: (key) => `#/image/${enc(key)}`,
  search: (q) => `#/search?q=${enc(q)}`,
  refined: (params) => `#/search?${params}`, // URLSearchParams: q, like, tag, not_tag, minus
  teach: () => '#/teach',
};

let vocabularyRequest = null;

// The vocabulary (GET /tags, ~100 KB for 1,620 tags), fetched once per visit.
export function vocabulary() {
  vocabularyRequest ??= api('/tags').catch((err) => {
    vocabularyRequest = null;
    throw err;
  });
  return vocabularyRequest;
}
