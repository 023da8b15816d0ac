// An image's tags with a person's controls: confirm one (✓), reject one (✕), or confirm a tag the
// model did not give. A decision belongs to the image's bytes; the tagger applies it to every
// copy within seconds, and the list is read again until it shows.
import { api, decide, href, paths, vocabulary } from './api.js';
import { announce, errorBox, h, score } from './dom.js';

export function tagEditor(key, record, ctx) {
  const list = h('ol', { class: 'scores tags-decided' });
  const status = h('div', { class: 'meta decision-status', role: 'status' });
  const input = h('input', {
    name: 'tag', list: 'vocabulary-tags', autocomplete: 'off', placeholder: 'a tag the model missed',
    'aria-label': 'A tag to confirm',
  });
  const choices = h('datalist', { id: 'vocabulary-tags' });
  vocabulary().then((v) => choices.append(...v.tags.map((t) => h('option', { value: t.name })))).catch(() => {});
  const form = h('form', { class: 'add-tag' }, input, h('button', { type: 'submit' }, 'Confirm'), choices);

  const render = (tags) => list.replaceChildren(...tags.map((t) => h(
    'li', { 'data-tag': t.tag, 'data-source': t.source },
    h('a', { href: href.tag(t.tag) }, t.tag), ' ',
    t.source === 'gps'
      ? h('span', { class: 'place', title: 'from the photo’s GPS position' }, 'place')
      : h('span', { class: 'score' }, score(t.score)),
    t.source === 'caption' ? h('span', { class: 'taught', title: 'a keyword of the photo’s caption' }, 'caption') : null,
    t.source === 'person' ? h('span', { class: 'confirmed', title: 'confirmed by a person' }, '✓ confirmed') : null,
    t.source === 'person' || t.source === 'gps' ? null : button('✓', `Confirm ${t.tag}`, () => act(t.tag, true)),
    button('✕', `Reject ${t.tag}`, () => act(t.tag, false)),
  )));

  async function act(tag, confirm) {
    const verb = confirm ? 'Confirm' : 'Reject';
    status.replaceChildren(`${verb}ing “${tag}”…`);
    try {
      const outcome = await decide(key, tag, confirm);
      const name = outcome.decision.tag;
      status.replaceChildren(`${verb}ed “${name}”: re-tagging ${outcome.retagging} image(s) with these bytes…`);
      const shows = (r) => (confirm
        ? r.tags.some((t) => t.tag === name && t.source === 'person')
        : !r.tags.some((t) => t.tag === name));
      const now = await until(() => api(paths.image(key, 'tags')), shows);
      if (!ctx.alive()) return;
      render(now.tags);
      const done = shows(now) ? `${verb}ed “${name}”.` : `${verb}ed “${name}”; the tags have not caught up yet: reload later.`;
      status.replaceChildren(done);
      announce(done);
      return true;
    } catch (err) {
      if (ctx.alive()) status.replaceChildren(errorBox(err));
      return false;
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const tag = input.value.trim();
    if (tag) act(tag, true).then((ok) => { if (ok) input.value = ''; }); // kept to correct after an error
  });
  render(record.tags);
  return h('section', {}, h('h2', {}, 'Tags'), list, form, status);
}

function button(text, label, onClick) {
  const b = h('button', { type: 'button', class: 'decide', 'aria-label': label, title: label }, text);
  b.addEventListener('click', onClick);
  return b;
}

async function until(read, done, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await read();
    if (done(answer) || Date.now() > deadline) return answer;
    await new Promise((resolve) => { setTimeout(resolve, 500); });
  }
}
