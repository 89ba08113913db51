// Event catalogue page: every event name a webhook can listen to, grouped by subject,
// each with its example payload (pretty JSON, collapsible).

import { api } from './api.js';
import { h, fill, pageHead, spinner, codeBlock, pretty, emptyState } from './dom.js';

export async function catalogPage(page) {
  fill(page, pageHead('Event catalogue'), spinner());
  const types = await api('GET', '/event-types');
  const groups = new Map();
  for (const t of [...types].sort((a, b) => a.name.localeCompare(b.name))) {
    const subject = t.name.split('.')[0];
    if (!groups.has(subject)) groups.set(subject, []);
    groups.get(subject).push(t);
  }
  fill(page,
    pageHead('Event catalogue', { sub: `The ${types.length} events a webhook can listen to. Each delivery's body carries the event under "event", with the webhook and delivery beside it.` }),
    types.length ? h('div', { class: 'catalog' }, [...groups.entries()].map(([subject, list]) => h('section', { class: 'panel', 'aria-labelledby': `cat-${subject}` },
      h('h2', { id: `cat-${subject}`, class: 'mono', text: `${subject}.*` }),
      h('ul', { class: 'event-list' }, list.map((t) => h('li', {},
        h('details', { class: 'event-item' },
          h('summary', {}, h('span', { class: 'mono', text: t.name })),
          codeBlock(pretty(t.example ?? {}), `Example ${t.name} event`)))))))) : emptyState('No event types', 'This deployment has an empty catalogue.'));
}
