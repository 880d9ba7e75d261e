// Cross-referencing runs a step at a time on the server, which saves each step: while names
// are left to compare, ask for the next one (the page's "go on" link does the same without
// script). No network access of its own beyond reloading the page, no inline script.
(() => {
  'use strict';
  const progress = document.getElementById('xref-progress');
  const next = document.getElementById('xref-next');
  if (!progress || !next || progress.dataset.left === '0') return;
  setTimeout(() => window.location.assign(next.href), 300);
})();
