// The console's link graph, drawn from the data the server embedded in the
// page (already gated, already marked: the banners are the server's). Click
// a selector to expand it in place (the server answers again, with the
// banner at the high-water mark of everything shown); shift-click to make
// it the new centre. No network access of its own, no inline script.
(() => {
  'use strict';
  const holder = document.getElementById('graph-data');
  const svg = document.getElementById('graph-canvas');
  if (!holder || !svg) return;
  let data;
  try {
    data = JSON.parse(holder.textContent);
  } catch (_) {
    return;
  }
  const nodes = data.nodes.map((n, i) => ({ ...n, i, x: 0, y: 0, vx: 0, vy: 0 }));
  if (nodes.length === 0) return;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const edges = data.edges
    .filter((e) => byId.has(e.a) && byId.has(e.b))
    .map((e) => ({ a: byId.get(e.a), b: byId.get(e.b), items: e.items }));

  const W = 900;
  const H = 520;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  // Deterministic start: a circle around the centre, the root in the middle.
  nodes.forEach((n, k) => {
    const a = (2 * Math.PI * k) / nodes.length;
    n.x = W / 2 + (W / 3) * Math.cos(a);
    n.y = H / 2 + (H / 3) * Math.sin(a);
  });
  const root = byId.get(data.root);
  if (root) {
    root.x = W / 2;
    root.y = H / 2;
  }
  // A small force layout: pairwise repulsion, springs on links, a pull to
  // the centre; a fixed number of steps so the picture is the same each time.
  for (let step = 0; step < 300; step++) {
    const cool = 1 - step / 300;
    for (const a of nodes) {
      for (const b of nodes) {
        if (a === b) continue;
        let dx = a.x - b.x;
        let dy = a.y - b.y;
        let d2 = dx * dx + dy * dy;
        if (d2 < 1) {
          dx = (a.i - b.i) || 1;
          dy = 1;
          d2 = dx * dx + dy * dy;
        }
        const f = 4000 / d2;
        a.vx += (dx / Math.sqrt(d2)) * f;
        a.vy += (dy / Math.sqrt(d2)) * f;
      }
    }
    for (const e of edges) {
      const dx = e.b.x - e.a.x;
      const dy = e.b.y - e.a.y;
      const d = Math.sqrt(dx * dx + dy * dy) || 1;
      const f = (d - 200) * 0.02;
      e.a.vx += (dx / d) * f;
      e.a.vy += (dy / d) * f;
      e.b.vx -= (dx / d) * f;
      e.b.vy -= (dy / d) * f;
    }
    for (const n of nodes) {
      n.vx += (W / 2 - n.x) * 0.005;
      n.vy += (H / 2 - n.y) * 0.005;
      if (n === root) {
        n.vx = 0;
        n.vy = 0;
        continue;
      }
      n.x = Math.min(W - 20, Math.max(20, n.x + Math.max(-20, Math.min(20, n.vx)) * cool));
      n.y = Math.min(H - 20, Math.max(20, n.y + Math.max(-20, Math.min(20, n.vy)) * cool));
      n.vx *= 0.5;
      n.vy *= 0.5;
    }
  }

  const NS = 'http://www.w3.org/2000/svg';
  const el = (name, attrs) => {
    const x = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) x.setAttribute(k, String(v));
    return x;
  };
  for (const e of edges) {
    const line = el('line', {
      x1: e.a.x, y1: e.a.y, x2: e.b.x, y2: e.b.y,
      class: 'edge', 'stroke-width': Math.min(6, 1 + Math.log2(e.items)),
    });
    const t = el('title', {});
    t.textContent = `${e.a.id} — ${e.b.id}: ${e.items} item(s)`;
    line.appendChild(t);
    svg.appendChild(line);
  }
  const link = (params) => {
    const u = new URL('/graph', window.location.origin);
    for (const [k, v] of Object.entries(params)) if (v) u.searchParams.set(k, v);
    return u.toString();
  };
  for (const n of nodes) {
    const kind = n.id.split(':')[0];
    const g = el('g', { class: `node kind-${kind}${n.expanded ? ' expanded' : ''}`, 'data-selector': n.id });
    g.appendChild(el('circle', { cx: n.x, cy: n.y, r: n === root ? 11 : 8 }));
    const label = el('text', { x: n.x + 12, y: n.y + 4 });
    label.textContent = n.id;
    g.appendChild(label);
    const t = el('title', {});
    t.textContent = `${n.id}\nclick: expand here · shift-click: centre on it`;
    g.appendChild(t);
    g.addEventListener('click', (ev) => {
      if (ev.shiftKey) {
        window.location.assign(link({ selector: n.id, justification: data.justification }));
        return;
      }
      if (n === root || n.expanded) return;
      const expand = [...data.expanded, n.id].join('|');
      window.location.assign(link({
        selector: data.root, hops: data.hops, expand, justification: data.justification,
      }));
    });
    svg.appendChild(g);
  }
})();
