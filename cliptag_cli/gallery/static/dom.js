// DOM helpers: elements built from data (text is always text, never parsed as HTML), errors shown.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  el.append(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
  return el;
}

export const score = (value) => Number(value).toFixed(3);

export function bytes(n) {
  if (!n) return '';
  const units = ['B', 'KB', 'MB', 'GB'];
  const i = Math.min(units.length - 1, Math.floor(Math.log10(n) / 3));
  return `${(n / 1000 ** i).toFixed(i ? 1 : 0)} ${units[i]}`;
}

// Said to screen readers (the page's polite live region).
export function announce(text) {
  document.getElementById('status').textContent = text;
}

// An API error, with its suggestions as links when it has some (an unknown tag or category).
export function errorBox(err, suggestionHref) {
  const box = h('div', { class: 'error', role: 'alert' }, h('p', {}, err.message || String(err)));
  const suggestions = err.suggestions || [];
  if (suggestions.length && suggestionHref) {
    const links = suggestions.map((name) => h('li', {}, h('a', { href: suggestionHref(name) }, name)));
    box.append(h('p', {}, 'Did you mean:'), h('ul', { class: 'suggestions' }, links));
  }
  return box;
}
