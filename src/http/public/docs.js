// Renders /openapi.json as a page: every operation with its parameters, request body, answers,
// schemas and named examples. Text only goes in through textContent, never as HTML.
'use strict';

/** Appends the children that there are: a part an operation lacks comes as null. */
const append = (node, ...children) => {
  for (const child of children) if (child) node.append(child);
  return node;
};
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value);
  }
  return append(node, ...children);
};
const json = (value) => el('pre', { text: JSON.stringify(value, null, 2) });
const anchor = (method, path) => `${method}-${path}`.replace(/[^\w-]+/g, '-');
const refName = (ref) => ref.replace('#/components/schemas/', '');

/** A schema, with the names of the shared schemas it refers to as links to them. */
function schemaBlock(schema) {
  const refs = [...JSON.stringify(schema).matchAll(/"\$ref":"([^"]+)"/g)].map((match) => refName(match[1]));
  const links = [...new Set(refs)].map((name) => el('a', { href: `#schema-${name}`, text: name }));
  const block = el('div', {}, json(schema));
  if (links.length > 0) block.prepend(el('p', { class: 'hint' }, 'refers to: ', ...links.flatMap((link, i) => (i === 0 ? [link] : [', ', link]))));
  return block;
}

function examplesBlock(examples) {
  if (!examples) return null;
  const block = el('div');
  for (const [name, example] of Object.entries(examples)) block.append(el('h4', { text: `example: ${name}` }), json(example.value));
  return block;
}

function contentBlock(content) {
  const block = el('div');
  for (const [type, media] of Object.entries(content ?? {})) {
    append(block, el('p', {}, el('code', { text: type })), schemaBlock(media.schema), examplesBlock(media.examples));
  }
  return block;
}

function parametersBlock(parameters) {
  if (!parameters?.length) return null;
  const rows = parameters.map((p) =>
    el(
      'tr',
      {},
      el('td', {}, el('code', { text: p.name })),
      el('td', { text: p.in }),
      el('td', { text: p.required ? 'required' : 'optional' }),
      el('td', {}, el('code', { text: JSON.stringify(p.schema) })),
      el('td', { text: [p.description, p.examples && `examples: ${Object.entries(p.examples).map(([name, e]) => `${name} = ${JSON.stringify(e.value)}`).join('; ')}`].filter(Boolean).join('. ') }),
    ),
  );
  return el('div', {}, el('h3', { text: 'Parameters' }), el('table', {}, el('thead', {}, el('tr', {}, ...['name', 'in', '', 'schema', ''].map((text) => el('th', { text })))), el('tbody', {}, ...rows)));
}

function operationBlock(path, method, op) {
  const section = el('section', { class: 'operation', id: anchor(method, path) });
  append(
    section,
    el('h2', {}, el('span', { class: `method method-${method}`, text: method }), el('code', { text: path }), ` ${op.summary ?? ''}`),
    op.description ? el('p', { class: 'description', text: op.description }) : null,
    op.security ? el('p', { class: 'hint', text: 'Needs Authorization: Bearer <ADMIN_TOKEN>.' }) : null,
    parametersBlock(op.parameters),
    op.requestBody ? el('div', {}, el('h3', { text: 'Request body' }), contentBlock(op.requestBody.content)) : null,
    el('h3', { text: 'Answers' }),
  );
  for (const [status, response] of Object.entries(op.responses ?? {})) {
    append(section, el('h4', {}, el('span', { class: `status status-${status[0]}`, text: status }), ` ${response.description ?? ''}`), contentBlock(response.content));
  }
  return section;
}

async function render() {
  const status = document.getElementById('status');
  let doc;
  try {
    const res = await fetch('/openapi.json');
    if (!res.ok) throw new Error(`GET /openapi.json answered ${res.status}`);
    doc = await res.json();
  } catch (error) {
    status.textContent = `cannot load /openapi.json: ${error.message}`;
    return;
  }
  document.getElementById('title').textContent = `${doc.info.title} ${doc.info.version}`;
  document.getElementById('description').textContent = doc.info.description ?? '';
  const toc = document.getElementById('toc');
  const operations = document.getElementById('operations');
  status.remove();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      toc.append(el('li', {}, el('a', { href: `#${anchor(method, path)}` }, el('span', { class: `method method-${method}`, text: method }), el('code', { text: path }))));
      operations.append(operationBlock(path, method, op));
    }
  }
  const schemas = document.getElementById('schemas');
  for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
    schemas.append(el('section', { class: 'schema', id: `schema-${name}` }, el('h3', {}, el('code', { text: name })), schemaBlock(schema)));
  }
  schemas.hidden = false;
}

render();
